"""Random numbers inside the simulator's kernels: xoshiro256** and a ziggurat normal.

The per-slot streams with one draw per UE (fading innovations, interferer dwell times,
packet arrivals) are drawn inside compiled kernels, where a call into numpy's
``Generator`` costs more than the draw. The generator is xoshiro256** (D. Blackman,
S. Vigna, "Scrambled linear pseudorandom number generators", ACM TOMS 47(4), 2021):
256-bit state, period 2^256 − 1, passes BigCrush. Normals use the 256-layer ziggurat of
G. Marsaglia, W. W. Tsang, "The ziggurat method for generating random variables",
J. Stat. Softw. 5(8), 2000, in the variant numpy uses (one 64-bit draw gives the layer
from 8 bits, the sign from 1 and a 52-bit abscissa, so layer and value are independent,
J. A. Doornik, "An improved ziggurat method to generate normal random samples", 2005):
exact N(0, 1) up to double rounding, the Marsaglia tail algorithm beyond r.

A stream's state is a ``uint64 [4]`` array seeded from a :class:`numpy.random.SeedSequence`
(:func:`new_state`); kernels unpack it into four locals, draw, and write it back, so the
generator lives in registers inside a loop. The draw functions take and return the four
words: ``value, s0, s1, s2, s3 = normal(s0, s1, s2, s3)``.
"""

from __future__ import annotations

import math

import numpy as np

from linkadapt.sim.jit import kernel

ZIGGURAT_LAYERS = 256
ZIGGURAT_R = 3.6541528853610088  # abscissa of the base layer's right edge
ZIGGURAT_V = 4.928673233974655e-3  # area of each layer
_MANTISSA = 2.0**52


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(k, w, f)``: per layer, the 52-bit acceptance bound, the abscissa per unit and
    the density at the layer's edge (Marsaglia & Tsang's ``zigset`` for 256 layers)."""
    n, r, v = ZIGGURAT_LAYERS, ZIGGURAT_R, ZIGGURAT_V

    def density(x: float) -> float:
        return math.exp(-0.5 * x * x)

    k = np.zeros(n, np.int64)
    w = np.zeros(n, np.float64)
    f = np.zeros(n, np.float64)
    dn = tn = r
    q = v / density(dn)
    k[0] = int(dn / q * _MANTISSA)
    w[0], w[n - 1] = q / _MANTISSA, dn / _MANTISSA
    f[0], f[n - 1] = 1.0, density(dn)
    for i in range(n - 2, 0, -1):
        dn = math.sqrt(-2.0 * math.log(v / dn + density(dn)))
        k[i + 1] = int(dn / tn * _MANTISSA)
        tn = dn
        f[i] = density(dn)
        w[i] = dn / _MANTISSA
    return k, w, f


ZIG_K, ZIG_W, ZIG_F = _ziggurat_tables()
_INV_R = 1.0 / ZIGGURAT_R
_LOW52 = np.uint64(0x000FFFFFFFFFFFFF)
_BYTE = np.uint64(0xFF)
_ONE = np.uint64(1)
_TWO_M53 = 2.0**-53


def new_state(seed: np.random.SeedSequence) -> np.ndarray:
    """A fresh ``uint64 [4]`` xoshiro256** state from ``seed`` (never all zero)."""
    state = seed.generate_state(4, np.uint64)
    if not state.any():  # pragma: no cover - probability 2^-256
        state[0] = 1
    return state


@kernel
def _rotl(x: np.uint64, k: np.uint64) -> np.uint64:
    return (x << k) | (x >> (np.uint64(64) - k))


@kernel
def next_u64(
    s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64, np.uint64]:
    """One 64-bit output of xoshiro256** and the advanced state."""
    result = _rotl(s1 * np.uint64(5), np.uint64(7)) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, np.uint64(45))
    return result, s0, s1, s2, s3


@kernel
def uniform(
    s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[float, np.uint64, np.uint64, np.uint64, np.uint64]:
    """U[0, 1) with 53 random bits."""
    r, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
    return float(np.int64(r >> np.uint64(11))) * _TWO_M53, s0, s1, s2, s3


@kernel
def exponential(
    s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[float, np.uint64, np.uint64, np.uint64, np.uint64]:
    """Exp(1) by inversion, −ln(1 − U) (finite: U < 1)."""
    u, s0, s1, s2, s3 = uniform(s0, s1, s2, s3)
    return -math.log1p(-u), s0, s1, s2, s3


@kernel
def normal(
    s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[float, np.uint64, np.uint64, np.uint64, np.uint64]:
    """N(0, 1) by the ziggurat (module doc); one 64-bit draw 99.3 % of the time."""
    r, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
    layer = np.int64(r & _BYTE)
    r >>= np.uint64(8)
    rabs = np.int64((r >> _ONE) & _LOW52)  # < 2^52: exact as int64 and as float
    x = float(rabs) * ZIG_W[layer]
    if (r & _ONE) != 0:
        x = -x
    if rabs < ZIG_K[layer]:
        return x, s0, s1, s2, s3
    return _normal_outside(layer, x, s0, s1, s2, s3)


@kernel
def _normal_outside(
    layer: np.int64, x: float, s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[float, np.uint64, np.uint64, np.uint64, np.uint64]:
    """The ziggurat's rare branch: the tail (layer 0) or the wedge test; on rejection a
    fresh draw, as in :func:`normal`."""
    while True:
        if layer == 0:  # the tail beyond r (Marsaglia's method)
            while True:
                u1, s0, s1, s2, s3 = uniform(s0, s1, s2, s3)
                u2, s0, s1, s2, s3 = uniform(s0, s1, s2, s3)
                xx = -_INV_R * math.log1p(-u1)
                yy = -math.log1p(-u2)
                if yy + yy > xx * xx:
                    tail = ZIGGURAT_R + xx
                    return (-tail if x < 0.0 else tail), s0, s1, s2, s3
        u, s0, s1, s2, s3 = uniform(s0, s1, s2, s3)
        if (ZIG_F[layer - 1] - ZIG_F[layer]) * u + ZIG_F[layer] < math.exp(-0.5 * x * x):
            return x, s0, s1, s2, s3
        r, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
        layer = np.int64(r & _BYTE)
        r >>= np.uint64(8)
        rabs = np.int64((r >> _ONE) & _LOW52)
        x = float(rabs) * ZIG_W[layer]
        if (r & _ONE) != 0:
            x = -x
        if rabs < ZIG_K[layer]:
            return x, s0, s1, s2, s3


@kernel
def fill_normal(state: np.ndarray, out: np.ndarray) -> None:
    """Fill the float array ``out`` (any shape, C order) with N(0, 1) draws of ``state``."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    flat = out.reshape(-1)
    for i in range(flat.size):
        x, s0, s1, s2, s3 = normal(s0, s1, s2, s3)
        flat[i] = x
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


@kernel
def fill_uniform(state: np.ndarray, out: np.ndarray) -> None:
    """Fill the float array ``out`` (any shape, C order) with U[0, 1) draws of ``state``."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    flat = out.reshape(-1)
    for i in range(flat.size):
        x, s0, s1, s2, s3 = uniform(s0, s1, s2, s3)
        flat[i] = x
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
