"""Test-wide settings.

Hypothesis: no per-example deadline (a loaded two-core CI machine must not turn a slow example
into a failure; speed is measured by the benchmarks, not by tests), and under CI (``CI`` set)
a derandomized run, so the same commit always runs the same examples.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
