"""Per-cell authorization: which client (mTLS certificate identity) may speak for which
cells.

``authz_cells_file`` names a YAML or JSON file::

    # client identity (certificate subject CN or a subject alternative name) -> cells
    identities:
      gnb-a.ran.example: [1, 2]
      "spiffe://ran.example/gnb-b": ["100-199", 250]

A cell entry is an id (integer ≥ 0) or an inclusive range ``"lo-hi"``. A client may speak
for the union of the cells of every one of its identities listed in the file; a verified
client none of whose identities is listed may speak for none. The file is read once at
start (a change needs a restart; the Helm chart rolls the pods when its ConfigMap changes).

Decide, DecideStream messages, ReportOutcome and release for a cell outside that set are
refused before anything is queued or looked up: gRPC PERMISSION_DENIED / HTTP 403 naming
``cell_id``, counted in ``ran_distill_denied_requests_total{protocol, reason}``. The
mapping needs verified client certificates, so configuring it without
``tls_require_client_cert`` is a configuration error (``service.config``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml
from prometheus_client import CollectorRegistry, Counter

from service.config import ConfigError
from service.errors import InvalidArgument, PermissionDenied
from service.wire import json_int_field, parse_json_object

_I64_MAX = (1 << 63) - 1
MAX_FILE_BYTES = 4 * 1024 * 1024  # an operator's mapping, not a data set
# label values of ran_distill_denied_requests_total{reason} (a fixed set)
CELL_NOT_ALLOWED = "cell_not_allowed"
UNKNOWN_IDENTITY = "unknown_identity"
NO_CLIENT_CERTIFICATE = "no_client_certificate"
DENIED_REASONS = (CELL_NOT_ALLOWED, UNKNOWN_IDENTITY, NO_CLIENT_CERTIFICATE)
PROTOCOLS = ("grpc", "rest")


class AuthzConfigError(ConfigError):
    """The mapping file is missing or malformed; the message names the file and entry."""


# ---------------------------------------------------------------- the mapping
@dataclass(frozen=True)
class CellSet:
    """Cells as sorted, disjoint, non-adjacent inclusive ranges."""

    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @classmethod
    def from_ranges(cls, ranges: Iterable[tuple[int, int]]) -> CellSet:
        merged: list[list[int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        return cls(tuple(m[0] for m in merged), tuple(m[1] for m in merged))

    def __contains__(self, cell: object) -> bool:
        if not isinstance(cell, int) or isinstance(cell, bool):
            return False
        i = bisect.bisect_right(self.lo, cell) - 1
        return i >= 0 and cell <= self.hi[i]

    def __len__(self) -> int:
        return sum(h - lo + 1 for lo, h in zip(self.lo, self.hi, strict=True))


def _cell_range(where: str, entry: Any) -> tuple[int, int]:
    if isinstance(entry, int) and not isinstance(entry, bool):
        lo = hi = entry
    elif isinstance(entry, str):
        text = entry.strip()
        head, sep, tail = text.partition("-")
        if not head.strip().isdigit() or (sep and not tail.strip().isdigit()):
            raise AuthzConfigError(f"{where}: {entry!r} is not a cell id or a 'lo-hi' range")
        lo = int(head)
        hi = int(tail) if sep else lo
    else:
        raise AuthzConfigError(f"{where}: {entry!r} is not a cell id or a 'lo-hi' range")
    if not 0 <= lo <= hi <= _I64_MAX:
        raise AuthzConfigError(f"{where}: {entry!r} needs 0 <= lo <= hi < 2^63")
    return lo, hi


@dataclass(frozen=True)
class CellPolicy:
    """identity → :class:`CellSet`."""

    cells: dict[str, CellSet]

    @classmethod
    def from_mapping(cls, doc: Any, source: str = "authz_cells_file") -> CellPolicy:
        if not isinstance(doc, dict) or set(doc) != {"identities"}:
            raise AuthzConfigError(
                f"{source}: the top level must be an object with exactly one key, "
                "'identities' (identity -> list of cells)"
            )
        identities = doc["identities"]
        if not isinstance(identities, dict):
            raise AuthzConfigError(f"{source}: 'identities' must map identities to cell lists")
        cells: dict[str, CellSet] = {}
        for name, entries in identities.items():
            where = f"{source}: identities[{name!r}]"
            if not isinstance(name, str) or not name.strip():
                raise AuthzConfigError(f"{where}: an identity must be a non-empty string")
            if not isinstance(entries, list):
                raise AuthzConfigError(f"{where}: must be a list of cell ids / 'lo-hi' ranges")
            cells[name] = CellSet.from_ranges(_cell_range(where, e) for e in entries)
        return cls(cells)

    @classmethod
    def load(cls, path: str | Path) -> CellPolicy:
        p = Path(path)
        source = f"authz_cells_file={p}"
        try:
            if p.stat().st_size > MAX_FILE_BYTES:
                raise AuthzConfigError(f"{source}: larger than {MAX_FILE_BYTES} bytes")
            text = p.read_text()
        except FileNotFoundError:
            raise AuthzConfigError(f"{source}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthzConfigError(f"{source}: not readable ({exc})") from None
        try:
            doc = yaml.safe_load(text)  # YAML is a superset of JSON: both work
        except yaml.YAMLError as exc:
            raise AuthzConfigError(f"{source}: not valid YAML/JSON ({exc})") from None
        return cls.from_mapping(doc, source)

    def allows(self, identities: tuple[str, ...], cell_id: int) -> bool | None:
        """True/False; ``None`` when no identity is listed at all."""
        known = [self.cells[i] for i in identities if i in self.cells]
        if not known:
            return None
        return any(cell_id in s for s in known)


# ---------------------------------------------------------------- DecideRequest.cell_id
def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(raw) or shift > 63:
            raise ValueError("truncated or overlong varint")
        b = raw[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7


def decide_cell_id(raw: bytes) -> int:
    """``cell_id`` (field 1, int64) of a serialized ``DecideRequest`` without parsing its
    columns: the top-level fields are walked (a dozen), the last varint of field 1 wins and
    a field 1 of another wire type is an unknown field, as the protobuf parser has it. A
    message this walk cannot follow raises ``ValueError`` (refused as malformed: never
    authorized on a guess)."""
    pos, n, cell = 0, len(raw), 0
    while pos < n:
        key, pos = _varint(raw, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(raw, pos)
            if field == 1:
                cell = value - (1 << 64) if value >= 1 << 63 else value
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint(raw, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:  # groups: never sent by a DecideRequest writer
            raise ValueError(f"wire type {wire}")
        if pos > n:
            raise ValueError("truncated field")
    return cell


# ---------------------------------------------------------------- the guard
def denied_counter(registry: CollectorRegistry) -> Counter:
    """``ran_distill_denied_requests_total{protocol, reason}``, every series pre-created
    (zero until the first refusal, so alerts see the series)."""
    counter = Counter(
        "ran_distill_denied_requests",
        "Requests refused by transport authentication or per-cell authorization, by "
        "reason (cell_not_allowed: the client's identities may not speak for the cell; "
        "unknown_identity: no identity of its certificate is in authz_cells_file; "
        "no_client_certificate: REST /v1/ without a verified client certificate)",
        ["protocol", "reason"],
        registry=registry,
    )
    for protocol in PROTOCOLS:
        for reason in DENIED_REASONS:
            counter.labels(protocol, reason)
    return counter


class CellGuard:
    """Checks one request's cell against the caller's identities; raises
    :class:`~service.errors.PermissionDenied` (on ``cell_id``) and counts the refusal."""

    def __init__(self, policy: CellPolicy, denied: Counter) -> None:
        self.policy = policy
        self._denied = {(p, r): denied.labels(p, r) for p in PROTOCOLS for r in DENIED_REASONS}

    def check(self, protocol: str, identities: tuple[str, ...] | None, cell_id: Any) -> None:
        if (
            not isinstance(cell_id, int)
            or isinstance(cell_id, bool)
            or not (0 <= cell_id <= _I64_MAX)
        ):
            raise InvalidArgument("cell_id", f"must be an integer in [0, 2^63), got {cell_id!r}")
        if not identities:  # unreachable behind mTLS, refused all the same
            self._refuse(protocol, NO_CLIENT_CERTIFICATE, cell_id, "no client certificate")
        verdict = self.policy.allows(identities, cell_id)
        if verdict:
            return
        who = ", ".join(identities)
        if verdict is None:
            self._refuse(
                protocol, UNKNOWN_IDENTITY, cell_id, f"client {who} is not in authz_cells_file"
            )
        self._refuse(protocol, CELL_NOT_ALLOWED, cell_id, f"client {who} may not speak for it")

    def _refuse(self, protocol: str, reason: str, cell_id: int, why: str) -> NoReturn:
        self._denied[protocol, reason].inc()
        raise PermissionDenied("cell_id", f"cell {cell_id}: {why}", reason)

    def check_decide_pb(self, identities: tuple[str, ...], raw: bytes) -> None:
        """A serialized ``DecideRequest`` (gRPC Decide / DecideStream message)."""
        try:
            cell_id = decide_cell_id(raw)
        except ValueError as exc:
            raise InvalidArgument(
                "request", f"malformed DecideRequest ({exc})", "malformed"
            ) from None
        self.check("grpc", identities, cell_id)

    def check_decide_json(self, identities: tuple[str, ...] | None, raw: bytes) -> None:
        """A REST decisions body, read as the data plane will read it (same parser)."""
        self.check("rest", identities, json_int_field(parse_json_object(raw), "cell_id"))


def load_guard(path: str, denied: Counter) -> CellGuard | None:
    """The guard for ``authz_cells_file`` (``None`` when unset)."""
    if not path:
        return None
    return CellGuard(CellPolicy.load(path), denied)
