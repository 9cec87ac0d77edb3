"""Hypothesis profiles for the fuzz suite, chosen by ``QLTS_FUZZ_PROFILE`` (``ci`` or ``long``).

The fuzz tests decorate themselves with ``settings(settings.get_profile("qlts-fuzz"))``
instead of loading a profile, so the rest of the test suite keeps its own settings.

- ``ci``: few examples, derandomized (the same inputs on every CI run); the whole
  tests/fuzz folder stays under about a minute on 2 cores.
- ``long``: 2,000 examples per entry point, randomized. Run it with
  ``QLTS_FUZZ_PROFILE=long nice -n 10 pytest tests/fuzz -p no:cacheprovider --hypothesis-show-statistics``;
  the statistics give the number of examples each test ran.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])
settings.register_profile("qlts-fuzz-ci", max_examples=40, derandomize=True, database=None, **_COMMON)
settings.register_profile("qlts-fuzz-long", max_examples=2000, **_COMMON)

PROFILE = os.environ.get("QLTS_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"QLTS_FUZZ_PROFILE: expected 'ci' or 'long', got {PROFILE!r}")
settings.register_profile("qlts-fuzz", settings.get_profile(f"qlts-fuzz-{PROFILE}"))
