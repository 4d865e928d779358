"""The O-RAN SC xApp descriptor: format, controls against schema.json, and agreement with
the service's settings (same keys, same defaults) and with the Dockerfile."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from deploy_support import DESCRIPTOR, DESCRIPTOR_SCHEMA, DOCKERFILE

BAKED_MODEL_DIR = "/opt/ran-distill/models/default"


@pytest.fixture(scope="module")
def descriptor() -> dict:
    return json.loads(DESCRIPTOR.read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(DESCRIPTOR_SCHEMA.read_text())


def test_schema_is_a_valid_json_schema(schema: dict) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


def test_controls_validate_against_schema(descriptor: dict, schema: dict) -> None:
    jsonschema.Draft7Validator(schema).validate(descriptor["controls"])
    # every setting the schema knows is spelled out in the shipped descriptor
    assert set(descriptor["controls"]) == set(schema["properties"])


@pytest.mark.parametrize(
    "bad",
    [
        {"grpc_port": 70000},
        {"ort_intra_op_threads": 0},
        {"log_level": "VERBOSE"},
        {"mcs_table": 3},
        {"olla_bler_target": 1.5},
        {"grpc_prot": 50051},  # typo: unknown keys are rejected
        {"admin_token": "secret"},  # never in the descriptor
        # security settings that do not fit together (service/config.py refuses them too)
        {"authz_cells_file": "/etc/cells.yaml"},
        {"authz_cells_file": "/etc/cells.yaml", "tls_require_client_cert": False},
        {"tls_cert_file": "/tls/tls.crt"},
        {"tls_key_file": "/tls/tls.key"},
        {"tls_client_ca_file": "/tls/ca.crt"},
        {"tls_require_client_cert": True, "tls_cert_file": "/a", "tls_key_file": "/b"},
    ],
)
def test_schema_rejects_bad_controls(descriptor: dict, schema: dict, bad: dict) -> None:
    controls = {**descriptor["controls"], **bad}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(controls, schema)


def test_schema_accepts_mutual_tls_with_authorization(descriptor: dict, schema: dict) -> None:
    controls = {
        **descriptor["controls"],
        "tls_cert_file": "/tls/tls.crt",
        "tls_key_file": "/tls/tls.key",
        "tls_client_ca_file": "/tls/ca.crt",
        "tls_require_client_cert": True,
        "authz_cells_file": "/authz/cells.yaml",
    }
    jsonschema.Draft7Validator(schema).validate(controls)
    tls_only = {**descriptor["controls"], "tls_cert_file": "/a", "tls_key_file": "/b"}
    jsonschema.Draft7Validator(schema).validate(tls_only)


def test_oran_descriptor_shape(descriptor: dict) -> None:
    assert descriptor["name"] == "ran-distill"
    assert descriptor["version"]
    (container,) = descriptor["containers"]
    assert set(container["image"]) == {"registry", "name", "tag"}
    assert container["image"]["name"] == "ran-distill"
    assert container["command"] == ["ran-distill", "serve"]
    ports = {p["name"]: p for p in descriptor["messaging"]["ports"]}
    assert ports["http"]["port"] == 8080
    assert ports["grpc"]["port"] == 50051
    assert {p["container"] for p in ports.values()} == {container["name"]}
    assert descriptor["livenessProbe"]["httpGet"] == {"path": "/ric/v1/health/alive", "port": 8080}
    assert descriptor["readinessProbe"]["httpGet"] == {"path": "/ric/v1/health/ready", "port": 8080}
    assert descriptor["metrics"]["url"] == "/ric/v1/metrics"
    assert descriptor["metrics"]["port"] == 8080
    controls = descriptor["controls"]
    assert controls["grpc_port"] == ports["grpc"]["port"]
    assert controls["http_port"] == ports["http"]["port"]
    assert controls["model_dir"] == BAKED_MODEL_DIR
    args = container["args"]
    assert args[args.index("--model") + 1] == BAKED_MODEL_DIR
    assert args[args.index("--grpc-port") + 1] == str(controls["grpc_port"])
    assert args[args.index("--http-port") + 1] == str(controls["http_port"])


def test_controls_are_exactly_the_service_settings_with_their_defaults(
    descriptor: dict, schema: dict
) -> None:
    from service.config import Settings

    fields = Settings.model_fields
    secret_only = {"admin_token"}  # from RAN_DISTILL_ADMIN_TOKEN (a Kubernetes Secret)
    assert set(descriptor["controls"]) == set(fields) - secret_only
    assert set(schema["properties"]) == set(fields) - secret_only
    for key, value in descriptor["controls"].items():
        default = fields[key].default
        if key == "model_dir":
            # the image bakes the default model at an absolute path
            assert Path(value).parts[-2:] == Path(default).parts[-2:]
            continue
        assert value == default, f"controls.{key}={value!r}, service default {default!r}"
        assert schema["properties"][key]["default"] == default, key


def test_schema_bounds_and_types_match_the_service_settings(schema: dict) -> None:
    """schema.json says what service/config.py enforces: same types, same bounds."""
    import typing

    from service.config import Settings

    bound_keys = {
        "ge": "minimum",
        "gt": "exclusiveMinimum",
        "le": "maximum",
        "lt": "exclusiveMaximum",
    }
    for key, prop in schema["properties"].items():
        field = Settings.model_fields[key]
        ann = field.annotation
        if typing.get_origin(ann) is typing.Literal:
            assert prop["enum"] == list(typing.get_args(ann)), key
            continue
        expected_type = {
            bool: "boolean",
            int: "integer",
            float: "number",
            str: "string",
            Path: "string",
        }[ann]
        if "enum" not in prop:
            assert prop["type"] == expected_type, key
        bounds = {}
        for meta in field.metadata:
            for attr, schema_key in bound_keys.items():
                if getattr(meta, attr, None) is not None:
                    bounds[schema_key] = getattr(meta, attr)
        if "enum" in prop:  # an integer range spelled out
            assert prop["enum"] == list(range(bounds["minimum"], bounds["maximum"] + 1)), key
            continue
        schema_bounds = {k: prop[k] for k in bound_keys.values() if k in prop}
        assert schema_bounds == bounds, f"{key}: schema {schema_bounds}, service {bounds}"


def test_service_reads_the_descriptor_through_config_file(
    descriptor: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from service.config import load_settings

    for var in [v for v in os.environ if v.startswith("RAN_DISTILL_")]:
        monkeypatch.delenv(var)
    doc = json.loads(json.dumps(descriptor))
    doc["controls"].update(ort_intra_op_threads=3, max_batch_ues=512, log_level="DEBUG")
    path = tmp_path / "config-file.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("CONFIG_FILE", str(path))
    settings = load_settings()
    assert settings.ort_intra_op_threads == 3
    assert settings.max_batch_ues == 512
    assert settings.log_level == "DEBUG"
    assert str(settings.model_dir) == BAKED_MODEL_DIR
    # environment variables (RAN_DISTILL_*, as the Helm chart sets them) win over the file
    monkeypatch.setenv("RAN_DISTILL_ORT_INTRA_OP_THREADS", "2")
    assert load_settings().ort_intra_op_threads == 2


def test_dockerfile_bakes_the_descriptor_and_model_path(descriptor: dict) -> None:
    text = DOCKERFILE.read_text()
    assert "CONFIG_FILE=/opt/ric/config/config-file.json" in text
    assert f"RAN_DISTILL_MODEL_DIR={BAKED_MODEL_DIR}" in text
    assert f"/src/models/default {BAKED_MODEL_DIR}" in text
    assert "/src/xapp-descriptor/config-file.json /opt/ric/config/config-file.json" in text
    cmd = json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])
    assert cmd == descriptor["containers"][0]["args"]
