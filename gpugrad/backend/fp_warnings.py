"""NumPy's floating-point warnings, silenced for gpugrad's own computations.

PyTorch returns the IEEE result of `log(0)`, `x / 0`, `exp(1000)` or `0 · inf` (−inf, inf,
nan) without a word; NumPy warns ("divide by zero encountered in log") unless told
otherwise. gpugrad does what PyTorch does, with one warnings filter, installed once at
import: it ignores NumPy's floating-point RuntimeWarnings raised while a gpugrad module
is the caller. Why this and not the alternatives:

- `np.seterr(all="ignore")` would also silence the user's own NumPy code (it is global
  NumPy state); this filter matches only warnings whose calling module is gpugrad's, so
  `np.log(0)` in user code still warns.
- `np.errstate` around each backend call costs about a microsecond per op, which is
  per-op overhead on every CPU op (the overhead benchmark measures it); a filter costs
  nothing until a warning is raised.

A user who wants these conditions as errors can still ask NumPy (`np.errstate(all="raise")`
raises before any warning is issued), or add their own filter in front of this one.
NumPy's Python-level wrappers (`ndarray.var`, `ndarray.sum` through `numpy._core._methods`)
are NumPy modules, so an overflow inside them still warns: rare, and silencing NumPy's own
modules would silence the user's calls to them too.
"""

from __future__ import annotations

import warnings

__all__ = ["FP_WARNING_MESSAGE", "silence_numpy_fp_warnings"]

#: The messages of NumPy's floating-point error warnings (numpy/_core/_ufunc_config.py).
FP_WARNING_MESSAGE = r"(divide by zero|overflow|underflow|invalid value) encountered"


def silence_numpy_fp_warnings() -> None:
    """Ignore NumPy's floating-point RuntimeWarnings issued from gpugrad modules (once)."""
    warnings.filterwarnings("ignore", message=FP_WARNING_MESSAGE, category=RuntimeWarning,
                            module=r"gpugrad(\.|$)")


silence_numpy_fp_warnings()
