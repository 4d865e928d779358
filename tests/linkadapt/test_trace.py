"""Drive-test traces: CSV loading, interpolation, wrap-around, trace-driven simulation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from linkadapt.baselines import FixedCqiPolicy
from linkadapt.sim import PRESETS, Simulator, channel
from linkadapt.sim.trace import load_trace, with_trace


def write_csv(path: Path, header: str, rows: list[tuple]) -> Path:
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_gnettrack_like_columns(tmp_path):
    # G-NetTrack exports timestamps like 2019.03.21_10.15.23: not seconds -> one row per second
    rows = [
        (f"2019.03.21_10.15.{20 + i:02d}", snr, speed)
        for i, (snr, speed) in enumerate([(10, 30), (12, 32), (8, 40), (9, 36)])
    ]
    tr = load_trace(write_csv(tmp_path / "g.csv", "Timestamp,SNR,Speed", rows))
    np.testing.assert_array_equal(tr.time_s, [0, 1, 2, 3])
    np.testing.assert_array_equal(tr.sinr_db, [10, 12, 8, 9])
    np.testing.assert_array_equal(tr.speed_kmh, [30, 32, 40, 36])
    assert tr.duration_s == 3.0


def test_numeric_timestamps_shifted_to_zero(tmp_path):
    tr = load_trace(
        write_csv(tmp_path / "n.csv", "Timestamp,SINR", [(100, 0.0), (102, 10.0), (104, 20.0)])
    )
    np.testing.assert_array_equal(tr.time_s, [0, 2, 4])
    np.testing.assert_array_equal(tr.speed_kmh, [3.0, 3.0, 3.0])  # default speed


def test_custom_column_names(tmp_path):
    path = write_csv(
        tmp_path / "c.csv",
        "t_sec,my_sinr,v,SNR",
        [(0, 1.0, 50, 99), (1, 3.0, 60, 99), (2, 5.0, 70, 99)],
    )
    tr = load_trace(path, {"time": "t_sec", "sinr": "my_sinr", "speed": "v"})
    np.testing.assert_array_equal(tr.sinr_db, [1, 3, 5])  # not the SNR column
    np.testing.assert_array_equal(tr.speed_kmh, [50, 60, 70])
    with pytest.raises(ValueError, match="SINR"):
        load_trace(path, {"sinr": "nope"})


def test_non_numeric_rows_skipped(tmp_path):
    tr = load_trace(
        write_csv(tmp_path / "s.csv", "time,SNR,Speed", [(0, 4.0, "-"), (1, "-", 10), (2, 8.0, 20)])
    )
    np.testing.assert_array_equal(tr.sinr_db, [4, 8])
    np.testing.assert_array_equal(tr.time_s, [0, 2])
    np.testing.assert_array_equal(tr.speed_kmh, [3.0, 20])


def test_interpolation_and_wrap_around(tmp_path):
    tr = load_trace(
        write_csv(
            tmp_path / "i.csv",
            "time,SNR,Speed",
            [(0, 0.0, 10), (1, 10.0, 20), (2, 30.0, 40), (4, 10.0, 0)],
        )
    )
    s, v = tr.at(np.array([0.0, 0.5, 1.5, 3.0, 3.9]))
    np.testing.assert_allclose(s, [0.0, 5.0, 20.0, 20.0, 11.0])
    np.testing.assert_allclose(v, [10.0, 15.0, 30.0, 20.0, 2.0])
    # the trace repeats with period = its duration (4 s)
    t = np.array([0.25, 1.7, 3.3])
    for k in (1, 3, 10):
        np.testing.assert_allclose(tr.at(t + 4.0 * k)[0], tr.at(t)[0])
    assert float(tr.at(np.array([4.0]))[0][0]) == pytest.approx(0.0)


def test_missing_sinr_column(tmp_path):
    path = write_csv(tmp_path / "m.csv", "Timestamp,RSRP,Speed", [(0, -90, 3), (1, -91, 3)])
    with pytest.raises(ValueError, match="SINR"):
        load_trace(path)
    cfg = dataclasses.replace(PRESETS["scsu"], trace=str(path))
    with pytest.raises(ValueError):
        Simulator(cfg, 2, seed=0)


def test_too_few_rows(tmp_path):
    with pytest.raises(ValueError):
        load_trace(write_csv(tmp_path / "one.csv", "time,SNR", [(0, 5.0)]))
    with pytest.raises(ValueError, match=r"1 of 3 rows have a numeric 'SNR'.*at least two"):
        load_trace(write_csv(tmp_path / "na.csv", "time,SNR", [(0, "n/a"), (1, 5.0), (2, "")]))
    (tmp_path / "empty.csv").write_text("time,SNR\n")
    with pytest.raises(ValueError):
        load_trace(tmp_path / "empty.csv")


def _wideband_db(sim: Simulator, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Per slot and UE: measured wideband SINR (dB) and the trace level at that time."""
    policy = FixedCqiPolicy()
    evm = 10 ** (sim.cfg.evm_sinr_db / 10)
    measured, expected = [], []
    for _ in range(slots):
        b = sim.observe()
        gain = channel.layer_sinr_gain_db(b.reports.rank, sim.cfg.n_tx)
        sb = b.true_sinr_db - gain[:, None]
        measured.append(10 * np.log10(np.mean(10 ** (sb / 10), axis=1)))
        level, _ = sim.trace.at(sim.trace_offset_s + sim.t * sim.cfg.slot_seconds)
        expected.append(10 * np.log10(1 / (1 / 10 ** (level / 10) + 1 / evm)))
        sim.step(policy.act(b))
    return np.asarray(measured), np.asarray(expected)


def _db_of_mean(db: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(10 ** (db / 10))))


@pytest.mark.parametrize("level", [5.0, 25.0])
def test_simulator_follows_constant_trace(tmp_path, level):
    path = write_csv(tmp_path / "c.csv", "Timestamp,SNR,Speed", [(t, level, 3) for t in range(5)])
    sim = Simulator(dataclasses.replace(PRESETS["scsu"], trace=str(path)), 16, seed=1)
    measured, expected = _wideband_db(sim, 120)
    # fading has unit mean power: compare linear means (the dB mean is biased low)
    assert abs(_db_of_mean(measured) - _db_of_mean(expected)) < 1.5
    assert np.percentile(np.abs(measured - expected), 90) < 6.0  # rank 4: Rayleigh
    np.testing.assert_allclose(sim.speed_kmh, 3.0)


def test_simulator_tracks_varying_trace(tmp_path):
    # triangle 0 -> 24 -> 0 dB over 2 s; each UE starts at its own random trace offset
    path = write_csv(
        tmp_path / "v.csv", "time,SINR,Speed", [(0, 0.0, 3), (1, 24.0, 3), (2, 0.0, 3)]
    )
    cfg = dataclasses.replace(PRESETS["scsu"], trace=str(path))
    sim = Simulator(cfg, 12, seed=2)
    assert np.ptp(sim.trace_offset_s) > 0.3
    measured, expected = _wideband_db(sim, 200)
    assert np.ptp(expected) > 8.0
    assert abs(np.mean(measured - expected)) < 1.0
    assert np.corrcoef(measured.ravel(), expected.ravel())[0, 1] > 0.9


def test_simulator_speed_from_trace(tmp_path):
    path = write_csv(tmp_path / "s.csv", "Timestamp,SNR,Speed", [(0, 10.0, 0), (10, 10.0, 100)])
    sim = Simulator(dataclasses.replace(PRESETS["scsu"], trace=str(path)), 6, seed=0)
    np.testing.assert_allclose(sim.speed_kmh, 10.0 * sim.trace_offset_s)


def test_simulator_trace_custom_columns(tmp_path):
    path = write_csv(tmp_path / "cc.csv", "sec,snr_x,kmh", [(0, 18.0, 3), (3, 18.0, 3)])
    cfg = dataclasses.replace(
        PRESETS["scsu"],
        trace=str(path),
        trace_columns={"time": "sec", "sinr": "snr_x", "speed": "kmh"},
    )
    sim = Simulator(cfg, 8, seed=0)
    measured, expected = _wideband_db(sim, 40)
    assert abs(_db_of_mean(measured) - 18.0) < 2.0


def test_gnettrack_dataset_layout(tmp_path):
    """The layout of the public G-NetTrack-derived 4G/5G datasets: many columns, '-' gaps."""
    header = (
        "Timestamp,Longitude,Latitude,Speed,Operatorname,CellID,NetworkMode,RSRP,RSRQ,"
        "SNR,CQI,RSSI,DL_bitrate,UL_bitrate,State"
    )
    rows = [
        ("2018.01.19_10.55.52", -8.5, 51.9, 0, "A", 2, "LTE", -90, -10, 12.0, 11, -60, 0, 0, "I"),
        ("2018.01.19_10.55.53", -8.5, 51.9, 4, "A", 2, "LTE", -91, -11, "-", 10, -61, 0, 0, "I"),
        ("2018.01.19_10.55.54", -8.5, 51.9, 8, "A", 2, "LTE", -92, -12, 6.0, 9, -62, 0, 0, "D"),
    ]
    tr = load_trace(write_csv(tmp_path / "b.csv", header, rows))
    np.testing.assert_array_equal(tr.sinr_db, [12.0, 6.0])
    np.testing.assert_array_equal(tr.time_s, [0.0, 2.0])  # the '-' row is dropped, time kept
    np.testing.assert_array_equal(tr.speed_kmh, [0.0, 8.0])
    assert float(tr.at(np.array([1.0]))[0][0]) == pytest.approx(9.0)


def test_with_trace_checks_the_file_and_keeps_the_scenario(tmp_path):
    good = write_csv(tmp_path / "g.csv", "time,SNR", [(0, 5.0), (1, "n/a"), (2, 9.0)])
    cfg = with_trace(PRESETS["mimo"], good)
    assert cfg.trace == str(good) and cfg.name == "mimo"
    bad = write_csv(tmp_path / "b.csv", "time,SNR", [(0, 5.0), (1, "n/a")])
    with pytest.raises(ValueError, match="at least two"):
        with_trace(PRESETS["mimo"], bad)
