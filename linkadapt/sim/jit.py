"""The simulator's compiled kernels: numba when installed, plain Python otherwise.

numba is in the ``sim`` and ``train`` extras and is imported only inside
``linkadapt.sim`` (the core the xApp imports stays numpy-only). Kernels are compiled on
first use and cached on disk (``cache=True``, next to the module), so only the first
process after a change pays the compile time. Without numba the same functions run as
ordinary Python: correct, and orders of magnitude slower.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_numba: Any
try:  # pragma: no cover - which branch runs depends on the environment
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None

HAVE_NUMBA = _numba is not None


def kernel(fn: F) -> F:
    """Compile ``fn`` with numba (nopython, cached, numpy's float error model: 1/0 = inf,
    as the numpy code it replaces gives), or return it unchanged without numba."""
    if _numba is None:  # pragma: no cover
        return fn
    compiled: F = _numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
    return compiled
