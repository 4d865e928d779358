"""Settings precedence (CLI > env > CONFIG_FILE controls > defaults) and error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.config import ConfigError, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY_NAMES = {
    "model_dir",
    "grpc_port",
    "http_port",
    "ort_intra_op_threads",
    "ort_inter_op_threads",
    "max_batch_ues",
    "microbatch_max_ues",
    "microbatch_max_wait_us",
    "ue_ttl_seconds",
    "max_tracked_ues",
    "reload_poll_seconds",
    "admin_token",
    "log_level",
    "olla_bler_target",
    "olla_delta_up_db",
    "mcs_table",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("RAN_DISTILL_") or k == "CONFIG_FILE":
            monkeypatch.delenv(k)


def _descriptor(tmp_path: Path, controls: dict) -> Path:
    p = tmp_path / "config-file.json"
    p.write_text(json.dumps({"name": "ran-distill", "controls": controls}))
    return p


def test_defaults_and_names_the_deployment_depends_on() -> None:
    s = load_settings()
    assert set(Settings.model_fields) >= DEPLOY_NAMES
    assert (s.grpc_port, s.http_port, s.max_batch_ues, s.microbatch_max_ues) == (
        50051,
        8080,
        4096,
        8192,
    )
    assert (s.ort_intra_op_threads, s.ort_inter_op_threads, s.mcs_table) == (1, 1, 2)
    assert s.model_dir == Path("models/default") and s.admin_token is None
    assert (s.microbatch_max_wait_us, s.ue_ttl_seconds, s.max_tracked_ues) == (200, 60, 100000)
    assert (s.reload_poll_seconds, s.log_level, s.olla_bler_target, s.olla_delta_up_db) == (
        5,
        "INFO",
        0.1,
        1.0,
    )


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CONFIG_FILE",
        str(_descriptor(tmp_path, {"grpc_port": 1111, "http_port": 2222, "max_batch_ues": 33})),
    )
    s = load_settings()
    assert (s.grpc_port, s.http_port, s.max_batch_ues) == (1111, 2222, 33)
    monkeypatch.setenv("RAN_DISTILL_GRPC_PORT", "3333")
    monkeypatch.setenv("RAN_DISTILL_HTTP_PORT", "4444")
    s = load_settings()
    assert (s.grpc_port, s.http_port, s.max_batch_ues) == (3333, 4444, 33)
    s = load_settings(grpc_port=5555, http_port=None)  # None = flag not given
    assert (s.grpc_port, s.http_port, s.max_batch_ues) == (5555, 4444, 33)


def test_repo_descriptor_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    desc = REPO / "xapp-descriptor" / "config-file.json"
    if not desc.exists():
        pytest.fail("xapp-descriptor/config-file.json missing")
    monkeypatch.setenv("CONFIG_FILE", str(desc))
    s = load_settings()
    controls = json.loads(desc.read_text())["controls"]
    assert s.grpc_port == controls["grpc_port"]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"RAN_DISTILL_GRPC_PORT": "70000"}, "grpc_port"),
        ({"RAN_DISTILL_OLLA_BLER_TARGET": "1.5"}, "olla_bler_target"),
        ({"RAN_DISTILL_MCS_TABLE": "3"}, "mcs_table"),
        ({"RAN_DISTILL_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"RAN_DISTILL_MAX_TRACKED_UES": "many"}, "max_tracked_ues"),
    ],
)
def test_env_errors_name_setting_and_origin(
    env: dict[str, str], needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert needle in str(err.value) and "env RAN_DISTILL_" in str(err.value)


def test_descriptor_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIG_FILE", str(_descriptor(tmp_path, {"grpc_prot": 1})))
    with pytest.raises(ConfigError, match="unknown controls key.*grpc_prot"):
        load_settings()
    monkeypatch.setenv("CONFIG_FILE", str(_descriptor(tmp_path, {"ue_ttl_seconds": -1})))
    with pytest.raises(ConfigError, match="ue_ttl_seconds.*CONFIG_FILE controls"):
        load_settings()
    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv("CONFIG_FILE", str(bad))
    with pytest.raises(ConfigError, match="not readable JSON"):
        load_settings()


def test_admin_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAN_DISTILL_ADMIN_TOKEN", "s3cret")
    assert load_settings().admin_token == "s3cret"
    monkeypatch.setenv("RAN_DISTILL_ADMIN_TOKEN", "")
    assert load_settings().admin_token is None
