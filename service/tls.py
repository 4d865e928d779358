"""Transport security of the xApp: TLS / mutual TLS for gRPC, HTTPS for REST, the peer's
certificate identities on both, and the client side's channel credentials.

Settings (``service.config``): ``tls_cert_file`` + ``tls_key_file`` turn TLS on for both
ports; ``tls_require_client_cert`` with ``tls_client_ca_file`` makes it mutual. On gRPC a
client without a certificate signed by that CA fails the handshake. On HTTP the handshake
asks for a certificate and verifies any that is offered, but lets a client without one
connect, so that kubelet probes and Prometheus (which present none) still reach
``/ric/v1/health/*`` and the metrics; every ``/v1/...`` route then answers 401 to a
connection without a verified certificate (:class:`ClientCertGate`). A certificate from
another CA fails the handshake on both ports.

A peer's identities are its certificate's subject common names and subject alternative
names (DNS, URI, IP, e-mail), as strings; ``service.authz`` maps them to cells.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.config import ConfigError

# ASGI scope extension carrying the verified client certificate's identities (the ASGI TLS
# extension's name; uvicorn does not fill it in itself)
SCOPE_EXTENSION = "tls"
IDENTITIES_KEY = "client_identities"
# REST paths that need a verified client certificate under tls_require_client_cert
PROTECTED_PREFIX = "/v1/"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TlsConfigError(ConfigError):
    """A TLS file is missing, unreadable or does not match its key; names the setting."""


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate material, read and checked once at start."""

    cert_file: Path
    key_file: Path
    cert_chain: bytes
    private_key: bytes
    client_ca_file: Path | None = None
    client_ca: bytes | None = None
    require_client_cert: bool = False

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Server credentials; with ``require_client_cert`` the handshake demands a client
        certificate signed by the client CA."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca if self.require_client_cert else None,
            require_client_auth=self.require_client_cert,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """``uvicorn.Config`` keyword arguments: its ``ssl_*`` options (Python's server
        context: TLS >= 1.2), with ``require_client_cert`` a client certificate requested
        and verified against the client CA when offered (``ssl_cert_reqs=CERT_OPTIONAL``,
        see the module docstring for why not ``CERT_REQUIRED``), and the HTTP protocol
        that exposes the peer's identities to the app."""
        opts: dict[str, Any] = {
            "ssl_certfile": str(self.cert_file),
            "ssl_keyfile": str(self.key_file),
            "http": IdentityHttpToolsProtocol,
        }
        if self.require_client_cert and self.client_ca_file is not None:
            opts["ssl_ca_certs"] = str(self.client_ca_file)
            opts["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
        return opts


def _read(setting: str, path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TlsConfigError(f"{setting}={path}: file not found") from None
    except OSError as exc:
        raise TlsConfigError(f"{setting}={path}: not readable ({exc.strerror})") from None
    if b"-----BEGIN" not in data:
        raise TlsConfigError(f"{setting}={path}: not a PEM file")
    return data


def load_server_tls(
    cert_file: str, key_file: str, client_ca_file: str = "", require_client_cert: bool = False
) -> ServerTls | None:
    """The server's TLS material from the settings' paths (``None``: TLS off), checked
    now so that a wrong file stops the start with a message naming the setting rather than
    failing every handshake later."""
    if not cert_file:
        return None
    cert, key = Path(cert_file), Path(key_file)
    chain = _read("tls_cert_file", cert)
    private_key = _read("tls_key_file", key)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise TlsConfigError(
            f"tls_cert_file={cert} / tls_key_file={key}: not a certificate and its key "
            f"({exc.reason or exc})"
        ) from None
    ca_path = Path(client_ca_file) if client_ca_file else None
    ca = None
    if ca_path is not None:
        ca = _read("tls_client_ca_file", ca_path)
        try:
            ssl.create_default_context(cafile=str(ca_path))
        except ssl.SSLError as exc:
            raise TlsConfigError(
                f"tls_client_ca_file={ca_path}: no CA certificate in it ({exc.reason or exc})"
            ) from None
    return ServerTls(
        cert_file=cert,
        key_file=key,
        cert_chain=chain,
        private_key=private_key,
        client_ca_file=ca_path,
        client_ca=ca,
        require_client_cert=require_client_cert,
    )


# ---------------------------------------------------------------- peer identities
def grpc_peer_identities(context: grpc.aio.ServicerContext) -> tuple[str, ...]:
    """Subject CN and SANs of the verified client certificate of a gRPC call (empty
    without one)."""
    auth = context.auth_context()
    names = [*auth.get("x509_common_name", ()), *auth.get("x509_subject_alternative_name", ())]
    return tuple(dict.fromkeys(n.decode("utf-8", "replace") for n in names))


def cert_identities(peercert: dict[str, Any] | None) -> tuple[str, ...]:
    """Subject CN and SANs of :meth:`ssl.SSLSocket.getpeercert`'s (verified) certificate."""
    if not peercert:
        return ()
    names = [
        value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"
    ]
    names += [value for _kind, value in peercert.get("subjectAltName", ())]
    return tuple(dict.fromkeys(str(n) for n in names))


def scope_identities(scope: Scope) -> tuple[str, ...] | None:
    """The identities of the verified client certificate of an HTTP request: ``None``
    when the connection is not TLS or offered no certificate."""
    ext = scope.get("extensions") or {}
    tls = ext.get(SCOPE_EXTENSION)
    if not tls:
        return None
    ids = tls.get(IDENTITIES_KEY)
    return tuple(ids) if ids else None


class IdentityHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the ASGI ``tls`` scope extension carrying the
    verified client certificate's identities (read once per connection)."""

    _tls_ext: dict[object, object] | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            # getpeercert() is None without a certificate; with CERT_OPTIONAL a certificate
            # that reached this point has been verified against the client CA
            self._tls_ext = {
                IDENTITIES_KEY: cert_identities(ssl_object.getpeercert()),
                "tls_version": ssl_object.version(),
            }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls_ext is not None:
            self.scope["extensions"] = {SCOPE_EXTENSION: self._tls_ext}


class ClientCertGate:
    """ASGI middleware: with ``tls_require_client_cert``, ``/v1/...`` (decisions,
    outcomes, releases, model, reload) answers 401 on a connection without a verified
    client certificate; health and metrics stay open to probes and scrapers. Counted by
    ``on_refused`` (the denied-requests metric)."""

    def __init__(self, app: AsgiApp, on_refused: Callable[[], None]) -> None:
        self.app = app
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith(PROTECTED_PREFIX)
            and scope_identities(scope) is None
        ):
            self.on_refused()
            body = (
                b'{"detail":[{"loc":["connection","client_certificate"],'
                b'"msg":"a client certificate signed by tls_client_ca_file is required",'
                b'"type":"no_client_certificate"}],"field":"client_certificate"}'
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------- client side
def channel_credentials(
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
) -> grpc.ChannelCredentials:
    """gRPC channel credentials: the server is verified against ``ca_file`` (``None``:
    the system roots); ``cert_file`` + ``key_file`` present a client certificate (mTLS)."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("tls_cert_file and tls_key_file go together (a client certificate)")

    def read(name: str, path: str | Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"{name}={path}: not readable ({exc.strerror})") from None

    return grpc.ssl_channel_credentials(
        root_certificates=read("tls_ca_file", ca_file),
        private_key=read("tls_key_file", key_file),
        certificate_chain=read("tls_cert_file", cert_file),
    )
