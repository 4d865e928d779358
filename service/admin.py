"""Authorization of the admin calls (reload, candidate, promote, rollback): one bearer-token
check that both adapters apply before anything else."""

from __future__ import annotations

import hmac

from service.errors import PermissionDenied, Unauthenticated


def check_admin(admin_token: str | None, authorization: str) -> None:
    """Refuse an admin call unless ``authorization`` is ``Bearer <admin_token>``.

    Raises
    ------
    PermissionDenied
        No ``admin_token`` configured: the admin calls are disabled.
    Unauthenticated
        Missing or wrong token (compared in constant time).
    """
    if not admin_token:
        raise PermissionDenied("authorization", "admin_token not configured", "unauthorized")
    token = authorization[7:] if authorization.lower().startswith("bearer ") else ""
    if not token or not hmac.compare_digest(token.encode(), admin_token.encode()):
        raise Unauthenticated("authorization", "missing or wrong bearer token", "unauthorized")
