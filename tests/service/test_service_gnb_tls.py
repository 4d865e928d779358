"""The simulated gNB over mutual TLS, with per-cell authorization, against a real xApp."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_testing import ServerThread
from tls_testing import Pki, make_pki

from ran_distill.gnb import GnbConfig, GnbError, run_gnb

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "default"
# the mimo preset has cells 0..6: gnb-a may speak for all of them, gnb-b for 0..3 only
CELLS_FILE = """\
identities:
  gnb-a.ran.test: ["0-6"]
  spiffe://ran.test/gnb-b: ["0-3"]
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mtls_xapp(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    cells = tmp_path_factory.mktemp("authz") / "cells.yaml"
    cells.write_text(CELLS_FILE)
    srv = ServerThread(
        model_dir=MODEL,
        tls_cert_file=str(pki.server.cert),
        tls_key_file=str(pki.server.key),
        tls_client_ca_file=str(pki.ca.cert),
        tls_require_client_cert=True,
        authz_cells_file=str(cells),
    )
    yield srv
    srv.stop()


def _config(srv: ServerThread, pki: Pki, who: str | None, **kw: object) -> GnbConfig:
    cert = {"a": pki.gnb_a, "b": pki.gnb_b}.get(who or "")
    settings: dict[str, object] = {
        "target": srv.grpc_target,
        "ues": 14,
        "slots": 30,
        "seed": 10000,
        "model": MODEL,
        "connect_timeout_s": 5.0,
        "deadline_ms": 10_000.0,  # a loaded test machine: no slot may miss its answer
        "tls_ca_file": pki.ca.cert,
        "tls_cert_file": None if cert is None else cert.cert,
        "tls_key_file": None if cert is None else cert.key,
    }
    return GnbConfig(**(settings | kw))  # type: ignore[arg-type]


def test_gnb_over_mutual_tls_matches_the_model(mtls_xapp: ServerThread, pki: Pki) -> None:
    result = run_gnb(_config(mtls_xapp, pki, "a"))
    s = result.stats
    assert s.decisions > 0 and s.decisions == s.decisions_xapp_model == s.skew_checked
    assert s.skew_mismatches == 0 and s.rejected_cell_slots == 0


def test_cells_the_certificate_may_not_speak_for_are_refused(
    mtls_xapp: ServerThread, pki: Pki
) -> None:
    """gnb-b may speak for cells 0-3: cells 4-6 are refused in-stream (the gNB falls back
    to its own OLLA for them and counts them), cells 0-3 are served."""
    result = run_gnb(_config(mtls_xapp, pki, "b"))
    s = result.stats
    assert s.rejected_cell_slots > 0
    assert 0 < s.decisions_xapp_model < s.decisions
    assert s.skew_mismatches == 0


def test_without_a_client_certificate_the_gnb_cannot_connect(
    mtls_xapp: ServerThread, pki: Pki
) -> None:
    with pytest.raises(GnbError, match="did not answer"):
        run_gnb(_config(mtls_xapp, pki, None, connect_timeout_s=2.0))


def test_half_a_client_certificate_is_a_configuration_error(pki: Pki) -> None:
    with pytest.raises(GnbError, match="go together"):
        GnbConfig(target="127.0.0.1:1", tls_cert_file=pki.gnb_a.cert)
