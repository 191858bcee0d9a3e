"""Test-suite configuration.

Hypothesis runs derandomized by default so that CI sees the same examples on every run (a property
test that fails must fail every time, not one run in ten).  To hunt for new counterexamples, run
``HYPOTHESIS_PROFILE=explore python -m pytest tests/einsum/test_fuzz.py``: random seeds on every run.
"""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
