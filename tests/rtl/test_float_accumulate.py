"""The pipelined fp32 accumulator (rtl/float/accumulate.py) in Verilator (cocotb) against the golden
model ``fp32_sum_interleaved``, bit for bit (accumulate_tb.py), for adder latencies 1..4, and the
formats' ``DatapathUnits.accumulate_unit()`` (bf16 with acc_latency 4; int8 fixed point)."""
from __future__ import annotations

import pytest

from accumulate_harness import LATENCIES, AccumulateHarness
from cocotb_verdicts import cocotb_verdicts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cocotb_results(tmp_path_factory):
    return cocotb_verdicts(AccumulateHarness(), "fp32_accumulate", "accumulate_tb",
                           tmp_path_factory.mktemp("fp32_accumulate"))


@pytest.mark.parametrize("gaps", [False, True])
@pytest.mark.parametrize("lat", LATENCIES)
def test_accumulator_bit_exact_in_verilator(cocotb_results, lat, gaps):
    names = [n for n in cocotb_results if n.startswith("test_accumulate")
             and f"lat={lat}" in n and f"gaps={gaps}" in n]
    assert len(names) == 1, f"cocotb did not run L={lat} gaps={gaps} exactly once: {sorted(cocotb_results)}"
    assert cocotb_results[names[0]] is None, cocotb_results[names[0]]


@pytest.mark.parametrize("unit", ["bf16_accumulate_unit", "int8_accumulate_unit"])
def test_units_accumulate_unit_in_verilator(cocotb_results, unit):
    name = f"test_{unit}"
    assert name in cocotb_results, f"cocotb did not run {name}: {sorted(cocotb_results)}"
    assert cocotb_results[name] is None, cocotb_results[name]
