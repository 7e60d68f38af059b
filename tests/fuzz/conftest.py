"""Hypothesis profiles for the property-based tests.

"fast" (the default) keeps the whole of tests/fuzz within the normal suite's time budget and
is derandomized, so CI sees the same cases on every run. "long" is selected with
GPUGRAD_FUZZ=long and explores far more cases (run it by hand or nightly):

    GPUGRAD_FUZZ=long .venv/bin/python -m pytest -q tests/fuzz --hypothesis-show-statistics
"""

import os

from hypothesis import HealthCheck, settings

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("fast", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=_SUPPRESS, print_blob=True)
settings.register_profile("long", max_examples=2000, deadline=None, derandomize=False,
                          suppress_health_check=_SUPPRESS, print_blob=True)
settings.load_profile("long" if os.environ.get("GPUGRAD_FUZZ") == "long" else "fast")
