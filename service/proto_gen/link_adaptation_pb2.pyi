from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DecisionSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_SOURCE_UNSPECIFIED: _ClassVar[DecisionSource]
    DECISION_SOURCE_MODEL: _ClassVar[DecisionSource]
    DECISION_SOURCE_FALLBACK: _ClassVar[DecisionSource]
DECISION_SOURCE_UNSPECIFIED: DecisionSource
DECISION_SOURCE_MODEL: DecisionSource
DECISION_SOURCE_FALLBACK: DecisionSource

class DecideRequest(_message.Message):
    __slots__ = ("cell_id", "slot", "mcs_table", "ue_id", "cqi", "cqi_age_slots", "harq_ack", "harq_mcs", "rank", "n_prb", "n_symbols", "buffer_bytes", "harq_tx_index")
    CELL_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    MCS_TABLE_FIELD_NUMBER: _ClassVar[int]
    UE_ID_FIELD_NUMBER: _ClassVar[int]
    CQI_FIELD_NUMBER: _ClassVar[int]
    CQI_AGE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    HARQ_ACK_FIELD_NUMBER: _ClassVar[int]
    HARQ_MCS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    N_PRB_FIELD_NUMBER: _ClassVar[int]
    N_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    BUFFER_BYTES_FIELD_NUMBER: _ClassVar[int]
    HARQ_TX_INDEX_FIELD_NUMBER: _ClassVar[int]
    cell_id: int
    slot: int
    mcs_table: int
    ue_id: _containers.RepeatedScalarFieldContainer[int]
    cqi: _containers.RepeatedScalarFieldContainer[int]
    cqi_age_slots: _containers.RepeatedScalarFieldContainer[int]
    harq_ack: _containers.RepeatedScalarFieldContainer[int]
    harq_mcs: _containers.RepeatedScalarFieldContainer[int]
    rank: _containers.RepeatedScalarFieldContainer[int]
    n_prb: _containers.RepeatedScalarFieldContainer[int]
    n_symbols: _containers.RepeatedScalarFieldContainer[int]
    buffer_bytes: _containers.RepeatedScalarFieldContainer[int]
    harq_tx_index: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, cell_id: _Optional[int] = ..., slot: _Optional[int] = ..., mcs_table: _Optional[int] = ..., ue_id: _Optional[_Iterable[int]] = ..., cqi: _Optional[_Iterable[int]] = ..., cqi_age_slots: _Optional[_Iterable[int]] = ..., harq_ack: _Optional[_Iterable[int]] = ..., harq_mcs: _Optional[_Iterable[int]] = ..., rank: _Optional[_Iterable[int]] = ..., n_prb: _Optional[_Iterable[int]] = ..., n_symbols: _Optional[_Iterable[int]] = ..., buffer_bytes: _Optional[_Iterable[int]] = ..., harq_tx_index: _Optional[_Iterable[int]] = ...) -> None: ...

class DecideError(_message.Message):
    __slots__ = ("code", "field", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    field: str
    message: str
    def __init__(self, code: _Optional[int] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("cell_id", "slot", "mcs", "source", "model_version", "error")
    CELL_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    MCS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    cell_id: int
    slot: int
    mcs: _containers.RepeatedScalarFieldContainer[int]
    source: _containers.RepeatedScalarFieldContainer[DecisionSource]
    model_version: str
    error: DecideError
    def __init__(self, cell_id: _Optional[int] = ..., slot: _Optional[int] = ..., mcs: _Optional[_Iterable[int]] = ..., source: _Optional[_Iterable[_Union[DecisionSource, str]]] = ..., model_version: _Optional[str] = ..., error: _Optional[_Union[DecideError, _Mapping]] = ...) -> None: ...

class OutcomeReport(_message.Message):
    __slots__ = ("cell_id", "slot", "ue_id", "delivered_bits", "first_tx_ack", "mcs", "slot_duration_us")
    CELL_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    UE_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_BITS_FIELD_NUMBER: _ClassVar[int]
    FIRST_TX_ACK_FIELD_NUMBER: _ClassVar[int]
    MCS_FIELD_NUMBER: _ClassVar[int]
    SLOT_DURATION_US_FIELD_NUMBER: _ClassVar[int]
    cell_id: int
    slot: int
    ue_id: _containers.RepeatedScalarFieldContainer[int]
    delivered_bits: _containers.RepeatedScalarFieldContainer[int]
    first_tx_ack: _containers.RepeatedScalarFieldContainer[int]
    mcs: _containers.RepeatedScalarFieldContainer[int]
    slot_duration_us: int
    def __init__(self, cell_id: _Optional[int] = ..., slot: _Optional[int] = ..., ue_id: _Optional[_Iterable[int]] = ..., delivered_bits: _Optional[_Iterable[int]] = ..., first_tx_ack: _Optional[_Iterable[int]] = ..., mcs: _Optional[_Iterable[int]] = ..., slot_duration_us: _Optional[int] = ...) -> None: ...

class OutcomeAck(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class ReleaseUeRequest(_message.Message):
    __slots__ = ("cell_id", "ue_id")
    CELL_ID_FIELD_NUMBER: _ClassVar[int]
    UE_ID_FIELD_NUMBER: _ClassVar[int]
    cell_id: int
    ue_id: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, cell_id: _Optional[int] = ..., ue_id: _Optional[_Iterable[int]] = ...) -> None: ...

class ReleaseUeResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: int
    def __init__(self, released: _Optional[int] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("loaded", "version", "path", "obs_schema_version", "obs_dim", "n_actions", "parameters", "loaded_at_unix", "last_reload_result", "last_reload_error", "last_reload_at_unix", "candidate", "previous_version")
    LOADED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OBS_SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    OBS_DIM_FIELD_NUMBER: _ClassVar[int]
    N_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_RESULT_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
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
    candidate: CandidateInfo
    previous_version: str
    def __init__(self, loaded: _Optional[bool] = ..., version: _Optional[str] = ..., path: _Optional[str] = ..., obs_schema_version: _Optional[str] = ..., obs_dim: _Optional[int] = ..., n_actions: _Optional[int] = ..., parameters: _Optional[int] = ..., loaded_at_unix: _Optional[float] = ..., last_reload_result: _Optional[str] = ..., last_reload_error: _Optional[str] = ..., last_reload_at_unix: _Optional[float] = ..., candidate: _Optional[_Union[CandidateInfo, _Mapping]] = ..., previous_version: _Optional[str] = ...) -> None: ...

class ShadowStats(_message.Message):
    __slots__ = ("cell_slots", "compared_decisions", "agreement", "agreement_within_one", "mean_mcs_difference", "matched_outcomes", "predicted_throughput_change", "predicted_first_tx_bler_change")
    CELL_SLOTS_FIELD_NUMBER: _ClassVar[int]
    COMPARED_DECISIONS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_WITHIN_ONE_FIELD_NUMBER: _ClassVar[int]
    MEAN_MCS_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_THROUGHPUT_CHANGE_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIRST_TX_BLER_CHANGE_FIELD_NUMBER: _ClassVar[int]
    cell_slots: int
    compared_decisions: int
    agreement: float
    agreement_within_one: float
    mean_mcs_difference: float
    matched_outcomes: int
    predicted_throughput_change: float
    predicted_first_tx_bler_change: float
    def __init__(self, cell_slots: _Optional[int] = ..., compared_decisions: _Optional[int] = ..., agreement: _Optional[float] = ..., agreement_within_one: _Optional[float] = ..., mean_mcs_difference: _Optional[float] = ..., matched_outcomes: _Optional[int] = ..., predicted_throughput_change: _Optional[float] = ..., predicted_first_tx_bler_change: _Optional[float] = ...) -> None: ...

class CandidateInfo(_message.Message):
    __slots__ = ("loaded", "version", "path", "parameters", "loaded_at_unix", "last_load_result", "last_load_error", "last_load_at_unix", "total", "last_window", "last_window_inside_bounds", "promotion_streak_slots", "auto_promote", "last_event")
    LOADED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    LAST_LOAD_RESULT_FIELD_NUMBER: _ClassVar[int]
    LAST_LOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_LOAD_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LAST_WINDOW_FIELD_NUMBER: _ClassVar[int]
    LAST_WINDOW_INSIDE_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_STREAK_SLOTS_FIELD_NUMBER: _ClassVar[int]
    AUTO_PROMOTE_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_FIELD_NUMBER: _ClassVar[int]
    loaded: bool
    version: str
    path: str
    parameters: int
    loaded_at_unix: float
    last_load_result: str
    last_load_error: str
    last_load_at_unix: float
    total: ShadowStats
    last_window: ShadowStats
    last_window_inside_bounds: bool
    promotion_streak_slots: int
    auto_promote: bool
    last_event: str
    def __init__(self, loaded: _Optional[bool] = ..., version: _Optional[str] = ..., path: _Optional[str] = ..., parameters: _Optional[int] = ..., loaded_at_unix: _Optional[float] = ..., last_load_result: _Optional[str] = ..., last_load_error: _Optional[str] = ..., last_load_at_unix: _Optional[float] = ..., total: _Optional[_Union[ShadowStats, _Mapping]] = ..., last_window: _Optional[_Union[ShadowStats, _Mapping]] = ..., last_window_inside_bounds: _Optional[bool] = ..., promotion_streak_slots: _Optional[int] = ..., auto_promote: _Optional[bool] = ..., last_event: _Optional[str] = ...) -> None: ...

class LoadCandidateRequest(_message.Message):
    __slots__ = ("model_dir",)
    MODEL_DIR_FIELD_NUMBER: _ClassVar[int]
    model_dir: str
    def __init__(self, model_dir: _Optional[str] = ...) -> None: ...

class UnloadCandidateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PromoteCandidateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RollbackModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadModelResponse(_message.Message):
    __slots__ = ("ok", "error", "model")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    error: str
    model: ModelInfo
    def __init__(self, ok: _Optional[bool] = ..., error: _Optional[str] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...
