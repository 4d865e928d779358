"""REST surface on a real server: endpoints, auth, O-RAN health paths, OpenAPI, and a small
schemathesis run against the served OpenAPI schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
from service_testing import ADMIN_TOKEN, ServerThread, json_request, random_reports

REPO = Path(__file__).resolve().parents[2]


def test_decide_release_outcome_model(server: ServerThread) -> None:
    base = server.http_base
    cols = random_reports(np.random.default_rng(0), np.arange(300, 310))
    r = httpx.post(f"{base}/v1/decisions", json=json_request(11, 4, cols))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["cell_id"] == 11 and doc["slot"] == 4 and len(doc["mcs"]) == 10
    assert all(0 <= m < 28 for m in doc["mcs"])
    r = httpx.post(
        f"{base}/v1/decisions",
        json={
            "cell_id": 11,
            "ue_id": [],
            "cqi": [],
            "cqi_age_slots": [],
            "harq_ack": [],
            "harq_mcs": [],
            "rank": [],
            "n_prb": [],
            "n_symbols": [],
        },
    )
    assert r.status_code == 200 and r.json()["mcs"] == []
    r = httpx.post(
        f"{base}/v1/outcomes",
        json={
            "cell_id": 11,
            "slot": 4,
            "ue_id": [300, 301],
            "delivered_bits": [1000, 0],
            "first_tx_ack": [1, 0],
        },
    )
    assert r.status_code == 200 and r.json() == {"accepted": 2}
    r = httpx.post(f"{base}/v1/ues/release", json={"cell_id": 11, "ue_id": [300, 301]})
    assert r.status_code == 200 and r.json() == {"released": 2}
    r = httpx.get(f"{base}/v1/model")
    assert r.status_code == 200 and r.json()["loaded"] is True
    assert httpx.get(f"{base}/ric/v1/health/alive").json() == {"status": "alive"}
    assert httpx.get(f"{base}/ric/v1/health/ready").json() == {"status": "ready"}
    for path in ("/metrics", "/ric/v1/metrics"):
        r = httpx.get(f"{base}{path}")
        assert r.status_code == 200 and "ran_distill_decisions_total" in r.text


def test_reload_refused_without_configured_token(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir)  # no admin_token
    try:
        r = httpx.post(
            f"{srv.http_base}/v1/model/reload", headers={"Authorization": "Bearer anything"}
        )
        assert r.status_code == 403 and r.json()["field"] == "authorization"
    finally:
        srv.stop()


def test_body_size_limit(model_dir: Path) -> None:
    srv = ServerThread(model_dir=model_dir, http_max_body_bytes=16384)
    try:
        cols = random_reports(np.random.default_rng(0), np.arange(1000))
        r = httpx.post(f"{srv.http_base}/v1/decisions", json=json_request(1, 0, cols))
        assert r.status_code == 413 and r.json()["field"] == "body", r.text[:200]
        small = random_reports(np.random.default_rng(0), np.arange(8))
        r = httpx.post(f"{srv.http_base}/v1/decisions", json=json_request(1, 0, small))
        assert r.status_code == 200
    finally:
        srv.stop()


def test_openapi_documents_errors(server: ServerThread) -> None:
    spec = httpx.get(f"{server.http_base}/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/decisions",
        "/v1/model",
        "/v1/model/reload",
        "/v1/outcomes",
        "/v1/ues/release",
        "/ric/v1/health/alive",
        "/ric/v1/health/ready",
        "/ric/v1/metrics",
        "/metrics",
    ):
        assert path in paths, path
    decide = paths["/v1/decisions"]["post"]
    assert {"200", "422", "429"} <= set(decide["responses"])
    assert "ue_id" in decide["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"401", "403"} <= set(paths["/v1/model/reload"]["post"]["responses"])
    assert "422" in paths["/v1/ues/release"]["post"]["responses"]


def test_method_not_allowed_lists_every_method_of_the_path(server: ServerThread) -> None:
    """A 405's Allow names the methods of all routes on the path: /v1/model/candidate has
    two (POST loads, DELETE unloads), where Starlette would name only the first."""
    for method, path, allow in (
        ("OPTIONS", "/v1/model/candidate", "DELETE, POST"),
        ("PUT", "/v1/model/candidate", "DELETE, POST"),
        ("GET", "/v1/model/promote", "POST"),
        ("DELETE", "/v1/model", "GET"),
    ):
        r = httpx.request(method, f"{server.http_base}{path}")
        assert r.status_code == 405, (method, path)
        assert r.headers["allow"] == allow, (method, path)
        assert r.json() == {"detail": "Method Not Allowed"}


def test_schemathesis(server: ServerThread) -> None:
    """Generated requests against the served schema: no 5xx, documented statuses,
    content types and response bodies conform (small: a few examples per operation)."""
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{server.http_base}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--phases",
        "examples,fuzzing",
        "--max-examples",
        "12",
        "--generation-deterministic",
        "--request-timeout",
        "20",
        "--no-color",
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"Tested:\s+13\b", proc.stdout), proc.stdout[-2000:]
    m = re.search(r"(\d+) generated, (\d+) passed", proc.stdout)
    assert m and m.group(1) == m.group(2) and int(m.group(1)) >= 13, proc.stdout[-2000:]


def test_fastapi_route_matches_the_fast_front(server: ServerThread) -> None:
    """The FastAPI ``/v1/decisions`` route (what the OpenAPI documents; shadowed in the
    server by the ASGI front) answers exactly like the front."""
    front = server.app.rest_app
    cols = random_reports(np.random.default_rng(4), np.arange(500, 510))
    body = json_request(31337, 3, cols)
    via_front = httpx.post(f"{server.http_base}/v1/decisions", json=body).json()

    async def via_fastapi() -> dict:
        transport = httpx.ASGITransport(app=front.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            r = await client.post("/v1/decisions", json={**body, "cell_id": 31338})
            assert r.status_code == 200
            bad = await client.post(
                "/v1/decisions", json={**body, "cqi": [99] * 10, "cqi_age_slots": [1] * 10}
            )
            assert bad.status_code == 422 and bad.json()["field"] == "cqi"
            return r.json()

    direct = server.run(via_fastapi())
    assert direct["mcs"] == via_front["mcs"] and direct["source"] == via_front["source"]
