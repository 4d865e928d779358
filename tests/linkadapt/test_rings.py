"""The packed last-k rings (linkadapt.rings) behave as plain [k, rows] shift registers."""

from __future__ import annotations

import numpy as np
import pytest

from linkadapt import rings
from linkadapt.rings import PackedRing


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("shift_push", [True, False])
def test_push_matches_a_plain_shift_register(
    dtype: type, shift_push: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the byte-moving push (other byte orders) is checked here too, on this machine
    monkeypatch.setattr(rings, "LITTLE_ENDIAN", shift_push)
    rng = np.random.default_rng(1)
    cap, length = 50, 8
    ring = PackedRing(cap, length, dtype)
    plain = np.zeros((length, cap), dtype=dtype)
    info = np.iinfo(dtype)
    for step in range(200):
        rows = rng.permutation(ring.capacity)[: rng.integers(0, ring.capacity)]
        new = rng.integers(info.min, info.max, rows.size, endpoint=True).astype(dtype)
        ring.push(rows, new)
        plain[1:, rows] = plain[:-1, rows]
        plain[0, rows] = new
        if step % 13 == 0:
            gone = rng.choice(ring.capacity, 5, replace=False)
            ring.reset(gone)
            plain[:, gone] = 0
        if step == 100:
            ring.grow(80)
            plain = np.concatenate([plain, np.zeros((length, 30), dtype=dtype)], axis=1)
        np.testing.assert_array_equal(ring.view, plain)
        np.testing.assert_array_equal(ring.values(ring.take(rows)), plain[:, rows].T)
    np.testing.assert_array_equal(ring.values(ring.take(slice(None))), plain.T)


def test_view_writes_reach_the_packed_words() -> None:
    ring = PackedRing(4, 8, np.int16)
    ring.view[3, 2] = -7
    assert ring.values(ring.take(np.array([2])))[0, 3] == -7


def test_length_must_fill_whole_words() -> None:
    with pytest.raises(ValueError, match="64-bit words"):
        PackedRing(4, 3, np.int8)
