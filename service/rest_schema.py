"""OpenAPI documentation of the REST adapter: pydantic classes that only describe bodies.

Requests are parsed by :mod:`service.wire` (orjson), never by these classes: they give
``/openapi.json`` its schemas (request bodies attached with ``openapi_extra`` via
:func:`body_schema`, error responses with :func:`error_doc`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

JSON = "application/json"


class DecideRequestJson(BaseModel):
    """Reports of many UEs of one cell for one slot (parallel arrays, index i = one UE)."""

    cell_id: int = Field(0, ge=0, description="Cell id")
    slot: int = Field(0, ge=0, description="Slot number")
    mcs_table: int = Field(0, ge=0, le=2, description="0 = server default, else 1 or 2")
    ue_id: list[int] = Field(description="UE ids (unique within the request)")
    cqi: list[int] = Field(description="Latest CQI 0..15 (ignored where cqi_age_slots = -1)")
    cqi_age_slots: list[int] = Field(description="CQI age in slots, -1 = no CQI yet")
    harq_ack: list[int] = Field(description="1 ACK, 0 NACK, -1 no feedback this slot")
    harq_mcs: list[int] = Field(description="MCS of the acknowledged transmission")
    rank: list[int] = Field(description="Layers 1..8")
    n_prb: list[int] = Field(description="PRBs 1..275")
    n_symbols: list[int] = Field(description="PDSCH symbols 1..14")
    buffer_bytes: list[int] | None = Field(None, description="DL buffer bytes, -1 = unknown")
    harq_tx_index: list[int] | None = Field(
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
    cell_id: int = Field(0, ge=0)
    slot: int = Field(0, ge=0)
    ue_id: list[int]
    delivered_bits: list[int]
    first_tx_ack: list[int] = Field(description="1 ACK, 0 NACK, -1 not a first transmission")
    mcs: list[int] | None = None
    slot_duration_us: int = Field(0, ge=0, le=1000, description="0 = 500 µs")


class OutcomeAckJson(BaseModel):
    accepted: int


class ReleaseJson(BaseModel):
    cell_id: int = Field(0, ge=0)
    ue_id: list[int]


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
