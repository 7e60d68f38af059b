"""`axis=` as a synonym of `dim=`, which PyTorch accepts on every op that takes `dim`."""

from __future__ import annotations

import functools


def dim_alias(fn):
    """Wrap `fn` so that a keyword `axis=` is passed on as `dim=` (both given is an error)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if "axis" in kwargs:
            if "dim" in kwargs:
                raise TypeError(f"{fn.__name__}: got both dim= and its alias axis=")
            kwargs["dim"] = kwargs.pop("axis")
        return fn(*args, **kwargs)

    return wrapper
