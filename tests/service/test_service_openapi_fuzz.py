"""schemathesis against the REST API's OpenAPI description (issue 13): every check
(``--checks all``: server errors, status codes, content types, response schemas and
headers, positive data accepted, negative data rejected, unsupported methods, ignored
auth, ...) over every operation, against a real xApp on loopback, in its coverage and
fuzzing phases. Bounded: a fixed seed and ``--max-examples``; about 25 s here.

``schemathesis.toml`` (next to this file) lets the three data routes answer 422 to a body
the schema admits, because their cross-column rules cannot be written in OpenAPI, and the
shadow admin routes 409 / 422 (no candidate or previous model; a candidate directory that
is not a valid model under candidate_root); every other check runs as schemathesis ships
it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_testing import ADMIN_TOKEN, ServerThread

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 10  # per operation and phase; the coverage phase adds its boundary cases
SEED = 20260


@pytest.fixture(scope="module")
def openapi_server(model_dir: Path) -> Iterator[ServerThread]:
    srv = ServerThread(
        model_dir=model_dir, admin_token=ADMIN_TOKEN, max_slot_lag=0, use_uvloop=True
    )
    yield srv
    srv.stop()


def test_schemathesis_all_checks(openapi_server: ServerThread, tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    proc = subprocess.run(
        [
            str(cli),
            "--config-file",
            str(CONFIG),
            "run",
            f"{openapi_server.http_base}/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "--continue-on-failure",
            "--request-timeout",
            "10",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # no .hypothesis / report litter in the repository
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    summary = proc.stdout
    assert "Selected: 13/13" in summary and "Tested: 13" in summary, summary[-3000:]
    generated = int(summary.split(" generated, ")[0].rsplit("\n", 1)[-1].strip())
    assert generated >= 300, summary[-3000:]
    dp = openapi_server.app.dataplane
    reg = dp.metrics.registry
    assert reg.get_sample_value("ran_distill_inference_errors_total") == 0
    assert openapi_server.call(dp.readiness) == "ready"
