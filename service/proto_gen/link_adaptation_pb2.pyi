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
    __slots__ = ("loaded", "version", "path", "obs_schema_version", "obs_dim", "n_actions", "parameters", "loaded_at_unix", "last_reload_result", "last_reload_error", "last_reload_at_unix")
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
    def __init__(self, loaded: _Optional[bool] = ..., version: _Optional[str] = ..., path: _Optional[str] = ..., obs_schema_version: _Optional[str] = ..., obs_dim: _Optional[int] = ..., n_actions: _Optional[int] = ..., parameters: _Optional[int] = ..., loaded_at_unix: _Optional[float] = ..., last_reload_result: _Optional[str] = ..., last_reload_error: _Optional[str] = ..., last_reload_at_unix: _Optional[float] = ...) -> None: ...

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
