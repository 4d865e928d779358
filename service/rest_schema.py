"""The REST API's OpenAPI documentation models (pydantic), used for the schema only.

The routes never validate through these (the data plane parses bodies with orjson and
validates them itself); they document the bodies, and their bounds are the ones the server
enforces, so that the schema neither admits what the server refuses nor the reverse, as far
as OpenAPI can say it (schemathesis checks this).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from linkadapt.reports import FIELD_RANGES

JSON = "application/json"

# Array items carry the bounds the server enforces on every element, so that the schema
# neither admits what the server refuses nor the reverse, as far as OpenAPI can say it
# (bounds that hold only where another column allows are left out).
_I64 = (1 << 63) - 1
_MAX_MCS_INDEX = 28  # 38.214 table 1 (64QAM) has indices 0..28, table 2 0..27
_R = FIELD_RANGES
IdItem = Annotated[int, Field(ge=0, le=_I64)]
Int16Item = Annotated[int, Field(ge=-(1 << 15), le=(1 << 15) - 1)]  # int16 columns
CqiAgeItem = Annotated[int, Field(ge=_R["cqi_age_slots"][0], le=_R["cqi_age_slots"][1])]
AckItem = Annotated[int, Field(ge=-1, le=1)]
RankItem = Annotated[int, Field(ge=_R["rank"][0], le=_R["rank"][1])]
PrbItem = Annotated[int, Field(ge=_R["n_prb"][0], le=_R["n_prb"][1])]
SymbolsItem = Annotated[int, Field(ge=_R["n_symbols"][0], le=_R["n_symbols"][1])]
BufferItem = Annotated[int, Field(ge=-1, le=_I64)]
McsItem = Annotated[int, Field(ge=0, le=_MAX_MCS_INDEX)]


class DecideRequestJson(BaseModel):
    """Reports of many UEs of one cell for one slot (parallel arrays, index i = one UE).
    Cross-column rules OpenAPI cannot state: every column has ue_id's length (the
    optional ones may also be empty), UE ids are unique, and cqi, harq_mcs and
    harq_tx_index are range-checked only where cqi_age_slots >= 0 / harq_ack >= 0."""

    cell_id: int | None = Field(0, ge=0, le=_I64, description="Cell id (null = 0)")
    slot: int | None = Field(0, ge=0, le=_I64, description="Slot number (null = 0)")
    mcs_table: int | None = Field(
        0, ge=0, le=2, description="0 or null = server default, else the served table, 1 or 2"
    )
    ue_id: list[IdItem] = Field(description="UE ids (unique within the request)")
    cqi: list[Int16Item] = Field(description="Latest CQI 0..15 (ignored where cqi_age_slots = -1)")
    cqi_age_slots: list[CqiAgeItem] = Field(description="CQI age in slots, -1 = no CQI yet")
    harq_ack: list[AckItem] = Field(description="1 ACK, 0 NACK, -1 no feedback this slot")
    harq_mcs: list[Int16Item] = Field(
        description="MCS of the acknowledged transmission (checked where harq_ack >= 0)"
    )
    rank: list[RankItem] = Field(description="Layers 1..8")
    n_prb: list[PrbItem] = Field(description="PRBs 1..275")
    n_symbols: list[SymbolsItem] = Field(description="PDSCH symbols 1..14")
    buffer_bytes: list[BufferItem] | None = Field(None, description="DL buffer bytes, -1 = unknown")
    harq_tx_index: list[Int16Item] | None = Field(
        None,
        description="HARQ transmission index of the harq_ack feedback (0 = first transmission,"
        " 1.. = retransmission, max 7; -1 = unknown; checked only where harq_ack >= 0)."
        " Absent/null/empty = unknown for every UE; else ue_id's length. OLLA ignores the"
        " feedback of retransmissions.",
    )


class DecideResponseJson(BaseModel):
    cell_id: int
    slot: int
    mcs: list[int] = Field(description="MCS index per UE, request order")
    source: list[str] = Field(description="DECISION_SOURCE_MODEL or DECISION_SOURCE_FALLBACK")
    model_version: str


class ErrorItem(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ErrorJson(BaseModel):
    """Refusal naming the offending field."""

    detail: list[ErrorItem]
    field: str


class OutcomeJson(BaseModel):
    """Every column has ue_id's length (mcs may be absent, null or empty)."""

    cell_id: int | None = Field(0, ge=0, le=_I64)
    slot: int | None = Field(0, ge=0, le=_I64)
    ue_id: list[IdItem]
    delivered_bits: list[IdItem]
    first_tx_ack: list[AckItem] = Field(description="1 ACK, 0 NACK, -1 not a first transmission")
    mcs: list[McsItem] | None = Field(None, description="MCS index of the served table")
    slot_duration_us: int | None = Field(0, ge=0, le=1000, description="0 or null = 500 µs")


class OutcomeAckJson(BaseModel):
    accepted: int


class ReleaseJson(BaseModel):
    """Only tracked UEs of a tracked cell can be released (else 422 naming the field)."""

    cell_id: int | None = Field(0, ge=0, le=_I64)
    ue_id: list[IdItem]


class ReleaseAckJson(BaseModel):
    released: int


class ShadowStatsJson(BaseModel):
    """Shadow comparison over some cell-slots (ratios 0 while nothing was compared)."""

    cell_slots: int = Field(description="Decide requests (one cell, one slot) shadowed")
    compared_decisions: int = Field(description="UE decisions compared")
    agreement: float = Field(description="Share where the candidate picks the same MCS")
    agreement_within_one: float = Field(description="Share within +-1 MCS")
    mean_mcs_difference: float = Field(description="Mean of candidate MCS - active MCS")
    matched_outcomes: int = Field(description="First transmissions with a reported outcome")
    predicted_throughput_change: float = Field(
        description="Predicted relative change of delivered bits (docs/service.md)"
    )
    predicted_first_tx_bler_change: float = Field(
        description="Predicted change of the first-transmission BLER (absolute)"
    )


class CandidateInfoJson(BaseModel):
    """The shadow candidate and its comparison with the active model."""

    loaded: bool
    version: str
    path: str
    parameters: int
    loaded_at_unix: float
    last_load_result: str = Field(description='"ok", "failed" or "" (none yet)')
    last_load_error: str
    last_load_at_unix: float
    total: ShadowStatsJson = Field(description="Since loaded or the active model changed")
    last_window: ShadowStatsJson = Field(description="Last full shadow_window_slots window")
    last_window_inside_bounds: bool
    promotion_streak_slots: int
    auto_promote: bool
    last_event: str


class ModelInfoJson(BaseModel):
    loaded: bool
    version: str
    path: str
    obs_schema_version: str
    obs_dim: int
    n_actions: int
    parameters: int
    loaded_at_unix: float
    last_reload_result: str
    last_reload_error: str
    last_reload_at_unix: float
    previous_version: str = Field(description='What a rollback makes active ("" = none)')
    candidate: CandidateInfoJson


class CandidateRequestJson(BaseModel):
    model_dir: str = Field(
        description="Model directory under candidate_root (relative: from candidate_root)"
    )


class ReloadJson(BaseModel):
    ok: bool
    error: str
    model: ModelInfoJson


class HealthJson(BaseModel):
    status: str


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route whose JSON body ``model`` describes."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "requestBody": {"required": True, "content": {JSON: {"schema": schema}}},
    }


def error_doc(desc: str) -> dict[str, Any]:
    """A ``responses`` entry: an :class:`ErrorJson` refusal, described by ``desc``."""
    return {"model": ErrorJson, "description": desc}


# with mutual TLS (tls_require_client_cert) and authz_cells_file only
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_doc("No verified client certificate (mutual TLS)"),
    403: error_doc("The client certificate may not speak for this cell (`cell_id`)"),
}
