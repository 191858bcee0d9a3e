"""Each float unit in Verilator (cocotb) against the golden model, bit for bit (float_units_tb.py).

One Verilator build of :class:`float_harness.FloatUnitsHarness` serves every unit; one cocotb run
executes all unit tests, and each pytest case reports one unit's verdict.
"""
from __future__ import annotations

import pytest

from cocotb_verdicts import cocotb_verdicts
from float_harness import UNITS, FloatUnitsHarness

#: Builds Verilator models and simulates them (minutes on a cold cache): `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cocotb_results(tmp_path_factory):
    return cocotb_verdicts(FloatUnitsHarness(), "float_units", "float_units_tb",
                           tmp_path_factory.mktemp("float_units"))


@pytest.mark.parametrize("unit", list(UNITS))
def test_unit_bit_exact_in_verilator(cocotb_results, unit):
    name = f"test_{unit}"
    assert name in cocotb_results, f"cocotb did not run {name}: {sorted(cocotb_results)}"
    assert cocotb_results[name] is None, cocotb_results[name]
