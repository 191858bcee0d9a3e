"""Test helper: a design's mapped netlist under a target's own Yosys script, and its flip-flop nets.

Used by the tests that check what synthesis keeps (kept copies, LUT-RAM slices' address registers)."""
from __future__ import annotations

import json
from pathlib import Path

from einloom.rtl.fpga.targets import TARGETS
from einloom.rtl.fpga.tools import run_tool


def synth_netlist(tmp_path: Path, verilog: str, top: str, target: str = "ecp5") -> dict:
    """The mapped netlist (Yosys JSON module ``top``) of ``verilog`` under the target's synthesis script."""
    (tmp_path / "core.v").write_text(verilog)
    tgt = TARGETS[target]
    script = tgt.synth_script(top, tgt.parts[0], ["core.v"]) + "write_json core.json\n"
    (tmp_path / "synth.ys").write_text(script)
    run_tool("yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], tmp_path, "yosys.out")
    return json.loads((tmp_path / "core.json").read_text())["modules"][top]


def flop_nets(module: dict, ff_type: str) -> dict[str, frozenset]:
    """net name -> its bits, for every net all of whose bits are flip-flop outputs (``Q``)."""
    q_bits = {cell["connections"]["Q"][0] for cell in module["cells"].values() if cell["type"] == ff_type}
    return {name: frozenset(net["bits"]) for name, net in module["netnames"].items()
            if net["bits"] and all(bit in q_bits for bit in net["bits"])}
