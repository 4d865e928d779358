"""Service configuration: pydantic-settings + the O-RAN xApp descriptor.

Precedence (highest first): explicit CLI flags / constructor arguments > environment
variables ``RAN_DISTILL_<NAME>`` > the ``controls`` object of the xApp descriptor JSON named
by the environment variable ``CONFIG_FILE`` > defaults. Every setting has the same
snake_case name in all three places (e.g. ``grpc_port``, env ``RAN_DISTILL_GRPC_PORT``,
descriptor ``controls.grpc_port``). The deployment (Helm chart, descriptor) depends on
these names: do not rename them.

Invalid values raise :class:`ConfigError` with one line per problem, naming the setting
and where it came from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.metrics import MAX_KPI_CELLS

ENV_PREFIX = "RAN_DISTILL_"
CONFIG_FILE_ENV = "CONFIG_FILE"


class ConfigError(ValueError):
    """Configuration is invalid; the message lists every problem, one per line."""


class Settings(BaseSettings):
    """All xApp settings (see docs/service.md for the table)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        validate_default=True,
        protected_namespaces=(),
    )

    model_dir: Path = Field(
        Path("models/default"), description="Model directory (model.onnx + manifest.json)"
    )
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 = ephemeral)")
    http_port: int = Field(
        8080, ge=0, le=65535, description="HTTP port: REST, O-RAN health, metrics"
    )
    host: str = Field("0.0.0.0", description="Bind address for both servers")
    ort_intra_op_threads: int = Field(1, ge=1, le=256, description="onnxruntime intra-op threads")
    ort_inter_op_threads: int = Field(1, ge=1, le=256, description="onnxruntime inter-op threads")
    max_batch_ues: int = Field(4096, ge=1, le=1_000_000, description="Max UEs in one request")
    microbatch_max_ues: int = Field(
        8192, ge=1, le=1_000_000, description="Max UEs per inference call"
    )
    microbatch_max_wait_us: int = Field(
        200, ge=0, le=1_000_000, description="Max extra wait to coalesce requests (µs)"
    )
    ue_ttl_seconds: float = Field(60.0, gt=0, description="Idle UEs are forgotten after this")
    max_tracked_ues: int = Field(
        100_000,
        ge=1,
        le=100_000_000,
        description="Hard cap on tracked UEs; new UEs beyond it evict the least recently "
        "seen ones (idle ones expire first)",
    )
    max_ues_per_cell: int = Field(
        4096,
        ge=1,
        le=100_000_000,
        description="Tracked UEs per cell; a cell's new UEs beyond it evict that cell's least "
        "recently seen UEs, and a request with more UEs is refused (RESOURCE_EXHAUSTED / 429)",
    )
    reload_poll_seconds: float = Field(
        5.0, ge=0, description="Model dir mtime poll period (0 disables)"
    )
    admin_token: str | None = Field(
        None, description="Bearer token for the reload endpoint (unset: always refused)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    olla_bler_target: float = Field(0.1, gt=0, lt=1, description="OLLA fallback BLER target")
    olla_delta_up_db: float = Field(1.0, gt=0, le=10, description="OLLA fallback step on NACK (dB)")
    mcs_table: int = Field(
        2, ge=1, le=2, description="38.214 MCS table served (1: 64QAM, 2: 256QAM)"
    )
    inference_thread: bool = Field(
        True,
        description="Run state update + features + inference in a worker thread (dynamic "
        "micro-batching while the event loop does I/O); False: inline on the event loop",
    )
    grpc_max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="gRPC max message size"
    )
    drain_seconds: float = Field(
        2.0, ge=0, description="On SIGTERM: not-ready period + in-flight grace"
    )
    kpi_window_slots: int = Field(2000, ge=1, description="Slots per live-KPI window (per cell)")
    reference_scenario: str = Field(
        "", description="Manifest scenario to compare live KPIs with ('' = first)"
    )
    # ---- limits and overload (docs/service.md "Limits and overload")
    max_queued_requests: int = Field(
        1024,
        ge=1,
        le=1_000_000,
        description="Decide/release requests admitted and not yet answered; beyond it new "
        "ones are shed at once (RESOURCE_EXHAUSTED / HTTP 503 + Retry-After)",
    )
    max_queued_ues: int = Field(
        65536,
        ge=1,
        le=100_000_000,
        description="UEs (estimated from the message size) in requests admitted and not yet "
        "answered; beyond it new requests are shed (one request is always admitted)",
    )
    max_slot_lag: int = Field(
        64,
        ge=0,
        le=512,
        description="A decide request more than this many slots behind the newest slot seen "
        "for its cell is dropped as stale (0 disables)",
    )
    # 2: message k+1 queued while k is decided keeps a stream's pipeline full, and one
    # busy stream's messages never fill the shared micro-batch queue ahead of other cells
    # (with 16, a stream of 512-UE messages put a whole 8192-UE micro-batch in front of
    # every other cell's request)
    stream_max_in_flight: int = Field(
        2,
        ge=1,
        le=1024,
        description="DecideStream messages read and not yet answered, per stream; the "
        "stream stops reading (gRPC flow control pushes back) while that many are pending",
    )
    max_kpi_cells: int = Field(
        MAX_KPI_CELLS,
        ge=1,
        le=1_000_000,
        description="Cells with per-cell metric series (outcome KPIs, MCS histogram); "
        "reports of further cells are counted and dropped",
    )
    http_max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        le=1 << 30,
        description="Largest REST request body; larger → 413, checked on Content-Length "
        "and while reading (chunked bodies are never buffered past it)",
    )
    http_limit_concurrency: int = Field(
        1024,
        ge=1,
        le=1_000_000,
        description="uvicorn limit_concurrency: connections / in-flight HTTP requests "
        "beyond it are answered 503 by uvicorn",
    )
    http_keep_alive_seconds: int = Field(
        5,
        ge=1,
        le=3600,
        description="uvicorn timeout_keep_alive: idle keep-alive "
        "connections are closed after this many seconds",
    )
    http_body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="A REST request body not received in full this long after its headers "
        "is refused (408) and its connection closed (a half-sent request holds nothing)",
    )
    http_docs_enabled: bool = Field(
        True, description="Serve /docs, /redoc and /openapi.json (off in the Helm chart)"
    )
    grpc_reflection_enabled: bool = Field(
        True, description="Register gRPC server reflection (off in the Helm chart)"
    )
    require_model: bool = Field(
        False,
        description="Ready only while a validated model serves: with no model (or a failed "
        "load) readiness is 503 and gRPC health NOT_SERVING (on in the Helm chart)",
    )
    # ---- shadow candidate and promotion (docs/service.md "Shadow models")
    candidate_model_dir: str = Field(
        "",
        description="Candidate model directory loaded at start and run in shadow beside the "
        "active model ('' = none; the admin call LoadCandidate loads one later)",
    )
    candidate_root: str = Field(
        "",
        description="Directory the admin call's candidate model directories must lie under "
        "(symlinks resolved; '' = the directory holding model_dir)",
    )
    shadow_window_slots: int = Field(
        1000,
        ge=1,
        le=10_000_000,
        description="Cell-slots (shadowed decide requests) per shadow-comparison window; "
        "the windowed metrics and the promotion bounds are evaluated per window",
    )
    shadow_auto_promote: bool = Field(
        False,
        description="Promote the candidate automatically once its windows stayed inside the "
        "bounds below for shadow_promote_after_slots cell-slots",
    )
    shadow_promote_after_slots: int = Field(
        20000,
        ge=1,
        le=1_000_000_000,
        description="Cell-slots of consecutive shadow windows inside the bounds before an "
        "automatic promotion",
    )
    shadow_promote_min_agreement: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Bound: share of decisions where the candidate is within +-1 MCS of the "
        "active model, at least",
    )
    shadow_promote_min_throughput_change: float = Field(
        0.0,
        ge=-1,
        le=10,
        description="Bound: predicted relative throughput change of the candidate (0.0 = "
        "no loss), at least",
    )
    shadow_promote_max_bler_change: float = Field(
        0.01,
        ge=-1,
        le=1,
        description="Bound: predicted change of the first-transmission BLER (absolute), at most",
    )

    # ---- transport security and per-cell authorization (SECURITY.md, service/tls.py,
    # service/authz.py); file paths, '' = unset
    tls_cert_file: str = Field(
        "",
        description="PEM certificate (chain) of the xApp: TLS on the gRPC and the HTTP port "
        "('' = plaintext); needs tls_key_file",
    )
    tls_key_file: str = Field("", description="PEM private key of tls_cert_file")
    tls_client_ca_file: str = Field(
        "",
        description="PEM CA certificate(s) that sign the clients' certificates; used with "
        "tls_require_client_cert",
    )
    tls_require_client_cert: bool = Field(
        False,
        description="Mutual TLS: gRPC refuses a handshake without a client certificate signed "
        "by tls_client_ca_file; REST answers /v1/... without one with 401 (health and metrics "
        "stay reachable for probes and scrapers)",
    )
    authz_cells_file: str = Field(
        "",
        description="YAML/JSON file mapping client identities (certificate CN or SAN) to "
        "the cell ids / ranges they may speak for; needs tls_require_client_cert",
    )

    @model_validator(mode="after")
    def _security_settings_fit_together(self) -> Settings:
        """Refuse combinations that would look secure and not be (e.g. an authorization
        mapping that no client certificate can be checked against)."""
        problems = []
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            problems.append("tls_cert_file and tls_key_file must be set together")
        if self.tls_client_ca_file and not self.tls_require_client_cert:
            problems.append("tls_client_ca_file is only used with tls_require_client_cert=true")
        if self.tls_require_client_cert and not (self.tls_cert_file and self.tls_client_ca_file):
            problems.append(
                "tls_require_client_cert needs TLS (tls_cert_file, tls_key_file) and "
                "tls_client_ca_file"
            )
        if self.authz_cells_file and not self.tls_require_client_cert:
            problems.append(
                "authz_cells_file needs client-certificate TLS (tls_require_client_cert=true "
                "with tls_cert_file, tls_key_file, tls_client_ca_file): without a verified "
                "client identity the mapping cannot apply"
            )
        if problems:
            raise ValueError("\n  ".join(problems))  # one line per problem
        return self

    # ---- per-cell state handover through Redis (docs/service.md "Scaling out")
    state_handover_url: str = Field(
        "",
        description="Redis URL (redis://[:password@]host:6379/db) of the RIC's shared data "
        "layer: on drain this replica writes the per-UE state of its cells there, and a cell "
        "seen for the first time is restored from it ('' = off)",
    )
    state_handover_ttl_seconds: float = Field(
        120.0, gt=0, le=86400, description="Lifetime of a cell's state snapshot in Redis"
    )
    state_handover_max_ues: int = Field(
        100_000,
        ge=1,
        le=100_000_000,
        description="Most UEs one drain writes to Redis (cells beyond it start fresh elsewhere)",
    )
    state_handover_timeout_seconds: float = Field(
        0.05,
        gt=0,
        le=10,
        description="Redis socket timeout; a restore that takes longer starts the cell fresh",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("state_handover_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL (or empty: off)")
        return value

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, DescriptorControlsSource(settings_cls))


class DescriptorControlsSource(PydanticBaseSettingsSource):
    """Settings from the ``controls`` object of the O-RAN xApp descriptor (``CONFIG_FILE``)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = os.environ.get(CONFIG_FILE_ENV) or None
        self.controls = load_descriptor_controls(self.path) if self.path else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.controls.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.controls)


def load_descriptor_controls(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``controls`` from an xApp descriptor; unknown keys are an error (typo guard)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{CONFIG_FILE_ENV}={p}: file not found") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{CONFIG_FILE_ENV}={p}: not readable JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{CONFIG_FILE_ENV}={p}: top level must be a JSON object")
    controls = doc.get("controls", {})
    if not isinstance(controls, dict):
        raise ConfigError(f"{CONFIG_FILE_ENV}={p}: 'controls' must be a JSON object")
    unknown = sorted(set(controls) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(
            f"{CONFIG_FILE_ENV}={p}: unknown controls key(s) {unknown}; "
            f"known: {sorted(Settings.model_fields)}"
        )
    return controls


def _origin(name: str, overrides: dict[str, Any]) -> str:
    if name in overrides:
        return "command line"
    if f"{ENV_PREFIX}{name}".upper() in {k.upper() for k in os.environ}:
        return f"env {ENV_PREFIX}{name.upper()}"
    if os.environ.get(CONFIG_FILE_ENV):
        return f"{CONFIG_FILE_ENV} controls"
    return "default"


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`; ``overrides`` (CLI flags) win; ``None`` values are ignored.

    Raises :class:`ConfigError` with one readable line per invalid setting.
    """
    explicit = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(explicit) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}")
    try:
        return Settings(**explicit)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            if not name:  # a rule over several settings: its message names them
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            lines.append(
                f"{name}: {err['msg']} (got {err.get('input')!r}, from {_origin(name, explicit)})"
            )
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
