"""rtl/units/dsp.py: the registered multiplier's model against a plain multiply (Amaranth simulation,
every latency and signedness) and its ECP5 form mapped by Yosys to one MULT18X18D with its registers."""
from __future__ import annotations

import json
import random
import re

import pytest
from amaranth.hdl import Fragment, signed, unsigned
from amaranth.sim import Simulator

from einloom.rtl.fpga.tools import run_tool
from einloom.rtl.generate import to_verilog
from einloom.rtl.units.dsp import (LATENCIES, RegisteredMult, dsp_primitives, dsp_target, dsp_target_for,
                                   registered_mult)

SHAPES = [(signed(8), signed(13)), (unsigned(17), unsigned(13)), (signed(15), unsigned(13)),
          (unsigned(18), signed(18)), (signed(18), signed(18))]


def _random_code(shape, rng):
    if shape.signed:
        return rng.randrange(-(1 << (shape.width - 1)), 1 << (shape.width - 1))
    return rng.randrange(0, 1 << shape.width)


def _extremes(shape):
    if shape.signed:
        return [-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1, -1, 0]
    return [0, (1 << shape.width) - 1, 1]


@pytest.mark.parametrize("latency,inputs", [(1, True), (2, True), (3, True), (1, False), (2, False)])
@pytest.mark.parametrize("a_shape,b_shape", SHAPES, ids=lambda s: f"{'s' if s.signed else 'u'}{s.width}")
def test_model_is_the_product_latency_cycles_later(latency, inputs, a_shape, b_shape):
    dut = RegisteredMult(a_shape, b_shape, latency, target="model", input_registers=inputs)
    rng = random.Random(latency * 101 + a_shape.width)
    pairs = [(x, y) for x in _extremes(a_shape) for y in _extremes(b_shape)]
    pairs += [(_random_code(a_shape, rng), _random_code(b_shape, rng)) for _ in range(150)]
    seen = []

    async def bench(ctx):
        for cycle in range(len(pairs) + latency):
            if cycle < len(pairs):
                ctx.set(dut.a, pairs[cycle][0])
                ctx.set(dut.b, pairs[cycle][1])
            await ctx.tick()
            seen.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # after the tick of cycle t, y holds the product of cycle t + 1 - latency
    for t in range(latency - 1, len(pairs) + latency - 1):
        x, y = pairs[t + 1 - latency]
        assert seen[t] == x * y, (t, x, y, seen[t])


def test_wrong_widths_and_latencies_are_refused():
    with pytest.raises(ValueError, match="at most 18"):
        RegisteredMult(signed(19), signed(8), 2)
    with pytest.raises(ValueError, match="latency"):
        RegisteredMult(signed(8), signed(8), 0)
    with pytest.raises(ValueError, match="DSP target"):
        with dsp_primitives("xilinx"):
            pass


def test_target_follows_the_context():
    assert dsp_target() == "model"
    with dsp_primitives("ecp5"):
        assert dsp_target() == "ecp5"
        inside = RegisteredMult(signed(8), signed(8), 2)
    outside = RegisteredMult(signed(8), signed(8), 2)
    assert (inside.target, outside.target) == ("ecp5", "model")
    for unit in (inside, outside):
        Fragment.get(unit, None)
    assert dsp_target_for("ecp5") == "ecp5" and dsp_target_for("xilinx") == "model"


def _yosys_cells(tmp_path, dut, name):
    (tmp_path / f"{name}.v").write_text(to_verilog(dut, name))
    (tmp_path / f"{name}.ys").write_text(f"read_verilog -sv {name}.v\nsynth_ecp5 -top {name}\n"
                                         f"write_json {name}.json\n")
    run_tool("yosys", ["-q", "-s", f"{name}.ys"], tmp_path, f"{name}.log")
    netlist = json.loads((tmp_path / f"{name}.json").read_text())
    return [cell for module in netlist["modules"].values() for cell in module.get("cells", {}).values()]


def _param(cell, key):
    """A string parameter of a Yosys JSON cell (strings may be stored as bit strings of 8-bit chars)."""
    value = cell["parameters"][key]
    if set(value) <= {"0", "1"} and len(value) % 8 == 0 and len(value) > 8:
        value = bytes(int(value[i:i + 8], 2) for i in range(0, len(value), 8)).decode().strip("\0 ")
    return value.strip()


@pytest.mark.parametrize("latency,inputs,expected", [(1, True, ("CLK0", "NONE", "NONE")),
                                                     (2, True, ("CLK0", "NONE", "CLK0")),
                                                     (3, True, ("CLK0", "CLK0", "CLK0")),
                                                     (1, False, ("NONE", "NONE", "CLK0")),
                                                     (2, False, ("NONE", "CLK0", "CLK0"))])
def test_ecp5_form_maps_to_one_registered_mult18x18d(tmp_path, latency, inputs, expected):
    dut = RegisteredMult(signed(8), signed(13), latency, target="ecp5", input_registers=inputs)
    cells = _yosys_cells(tmp_path, dut, f"regmult{latency}{int(inputs)}")
    dsps = [c for c in cells if c["type"] == "MULT18X18D"]
    assert len(dsps) == 1
    assert not [c for c in cells if c["type"] == "TRELLIS_FF"], "the registers must be the DSP's own"
    dsp = dsps[0]
    a_clk, pipe_clk, out_clk = expected
    assert _param(dsp, "REG_INPUTA_CLK") == a_clk and _param(dsp, "REG_INPUTB_CLK") == a_clk
    assert _param(dsp, "REG_PIPELINE_CLK") == pipe_clk
    assert _param(dsp, "REG_OUTPUT_CLK") == out_clk
    assert _param(dsp, "GSR") == "DISABLED"


def test_model_form_keeps_its_registers_in_the_fabric(tmp_path):
    """The model is what Yosys's own mapping makes of the same multiply: a MULT18X18D without registers
    and fabric flip-flops (why the ECP5 build instantiates the primitive)."""
    cells = _yosys_cells(tmp_path, RegisteredMult(signed(8), signed(13), 2, target="model"), "modelmult")
    dsps = [c for c in cells if c["type"] == "MULT18X18D"]
    assert len(dsps) == 1
    assert all(_param(dsps[0], k) == "NONE" for k in dsps[0]["parameters"] if k.startswith("REG_"))
    assert len([c for c in cells if c["type"] == "TRELLIS_FF"]) >= 8 + 13


def test_registered_mult_helper_adds_a_submodule():
    from amaranth.hdl import Module, Signal
    m = Module()
    a, b = Signal(signed(8)), Signal(unsigned(12))
    y = registered_mult(m, a, b, 2, "mul")
    assert y.shape() == (a * b).shape()
    assert "mul" in m._named_submodules
    Fragment.get(m, None)


def _modules(text: str) -> dict[str, str]:
    """module name -> its text, of a Verilog file written by Amaranth/Yosys."""
    out = {}
    for chunk in re.findall(r"^module .*?^endmodule", text, flags=re.S | re.M):
        out[chunk.split(None, 2)[1].split("(")[0]] = chunk
    return out


def test_core_verilog_for_ecp5_differs_from_the_verified_one_only_in_the_multipliers(tmp_path):
    """`einloom synth --target ecp5` and `einloom verify` build the same core except the bodies of the
    RegisteredMult modules (primitive vs model); every fixed-point multiplier is a registered DSP."""
    from einloom.rtl.config import RtlConfig
    from einloom.rtl.generate import generate
    from tests.rtl.rtl_archs import shaped
    path = tmp_path / "arch.yaml"
    path.write_text(shaped(2, 2, e=4, f=4, max_keys=8, max_queries=4, name="dsp-2x2"))
    cfg = RtlConfig.from_yaml(path)
    model = generate(cfg)
    with dsp_primitives("ecp5"):
        ecp5 = generate(cfg)
    mods_model, mods_ecp5 = _modules(model.verilog), _modules(ecp5.verilog)
    assert set(mods_model) == set(mods_ecp5)
    # Amaranth numbers its generated names (``port$1388$0``) in creation order, which the primitive's
    # extra signals shift; the numbers are not structure
    numbered = lambda text: re.sub(r"\$\d+", "$N", text)     # noqa: E731
    differ = {name for name in mods_model if numbered(mods_model[name]) != numbered(mods_ecp5[name])}
    primitives = {name for name, text in mods_ecp5.items() if re.search(r"^\s*MULT18X18D\b", text, re.M)}
    parents = {name.rsplit(".", 1)[0] for name in primitives}
    # the multipliers' bodies differ, and in their parents only the wiring of the product (Amaranth
    # names the primitive's output bits one by one; the model's connects ``y`` whole) and the reset
    # port (the model's operand registers are in the parent's reset region); nothing else
    assert primitives <= differ <= primitives | parents
    for name in differ - primitives:
        strip = lambda text: sorted(line.rstrip(",") for line in text.splitlines()   # noqa: E731 (order and
                                    # the last connection's missing comma are the writer's)
                                    if not re.search(r"\$\d+ |port\$|\.p_out|\.\w*rst\(|\.y\(|^\s*wire |^\s*\);|^\s*assign|_fab <= ",
                                                     line))
        assert strip(mods_model[name]) == strip(mods_ecp5[name]), name
    # 2x2 PEs, per column: exp, 2 x 2 rescale halves (RD, RNV), 2 output halves; one reciprocal (2)
    assert len(primitives) == 4 + 2 * (1 + 4 + 2) + 2
    assert all(" * " in mods_model[name] for name in primitives)
    assert "MULT18X18D" not in model.verilog


@pytest.mark.slow
def test_ecp5_core_synthesizes_with_every_multiplier_a_registered_dsp(tmp_path):
    """The target's synthesis script maps the ECP5 build of a small core (Yosys only): its
    MULT18X18D keep their input registers and, but for exp's, their output registers (a Yosys AST
    quirk once broke this build)."""
    from einloom.rtl.config import RtlConfig
    from einloom.rtl.generate import generate
    from yosys_netlist import synth_netlist
    from tests.rtl.rtl_archs import shaped
    path = tmp_path / "arch.yaml"
    path.write_text(shaped(2, 2, e=4, f=4, max_keys=8, max_queries=4, name="dsp-2x2"))
    with dsp_primitives("ecp5"):
        design = generate(RtlConfig.from_yaml(path))
    module = synth_netlist(tmp_path, design.verilog, design.top_name)
    dsps = [cell for cell in module["cells"].values() if cell["type"] == "MULT18X18D"]
    assert len(dsps) == 20
    assert sum(_param(cell, "REG_INPUTA_CLK") == "CLK0" for cell in dsps) == 20
    # exp's product goes unregistered into the fabric register before its ROM (units/fixed.FixedExp)
    assert sum(_param(cell, "REG_OUTPUT_CLK") == "CLK0" for cell in dsps) == 20 - 2
