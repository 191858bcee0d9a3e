"""The lane compiler and its reference executor: lane outputs == run_in_format of the whole cascade, bit
for bit, for the library's variants in fixed point (int8, int16) and bf16; refusals name the Einsum."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from einloom.base.errors import SpecError
from einloom.cost_models import load_arch
from einloom.einsum import load_cascade
from einloom.rtl.lanes.execute import against_interpreter, build
from einloom.rtl.lanes.isa import Instr, Reg, Section, const, reg
from einloom.sim.formats import make_format
from einloom.sim.formats.arith import arith_for

ROOT = Path(__file__).resolve().parents[3]
SPECS = Path(__file__).parent / "specs"
ARCH = load_arch(str(ROOT / "examples/archs/rtl-4x4-int8.yaml"))
FORMATS = {
    "int8": {"kind": "fixed", "input_bits": 8, "frac_bits": 4, "acc_bits": 32},
    "int16": {"kind": "fixed", "preset": "int16"},
    "bf16": {"kind": "bf16"},
}
# (spec, sizes): ragged tiles (M not a multiple of R = 4, P not a multiple of C = 4), P > M and P < M
VARIANTS = [
    ("fusemax-1pass", {"P": 6, "M": 11, "E": 8, "F": 5}),
    ("flash1-1pass", {"P": 6, "M": 11, "E": 8, "F": 5}),
    ("causal-1pass", {"P": 10, "M": 6, "E": 8, "F": 5}),
    ("causal-1pass", {"P": 5, "M": 14, "E": 8, "F": 3}),
    ("sliding-window", {"P": 9, "M": 13, "E": 8, "F": 4}),
    ("sinks-window", {"P": 12, "M": 30, "E": 4, "F": 4}),
    ("gqa", {"P": 5, "M": 9, "E": 4, "F": 3, "J": 2, "G": 2}),
    ("sigmoid", {"P": 6, "M": 10, "E": 8, "F": 5}),
    (str(SPECS / "alibi-lane.yaml"), {"P": 12, "M": 13, "E": 8, "F": 6}),
    (str(SPECS / "diff-lane.yaml"), {"P": 7, "M": 10, "E": 8, "F": 5}),
    (str(SPECS / "relu-lane.yaml"), {"P": 6, "M": 9, "E": 8, "F": 4}),
]


def _inputs(cascade, schedule, fmt, seed: int, sd: float = 1.5):
    rng = np.random.default_rng(seed)
    return {t: fmt.quantize(rng.normal(0.0, sd, [schedule.sizes[r] for r in cascade.tensors[t].ranks]))
            for t in cascade.inputs}


def _check(spec: str, sizes: dict, fmt_name: str, seed: int = 0, program=None):
    cascade = load_cascade(spec)
    built, schedule = build(cascade, ARCH, sizes)
    program = program or built
    fmt = make_format(FORMATS[fmt_name], head_dim=sizes["E"])
    arith = arith_for(fmt)
    run, ref = against_interpreter(program, cascade, schedule, arith, _inputs(cascade, schedule, fmt, seed))
    return cascade, run, ref


@pytest.mark.parametrize("fmt_name", list(FORMATS))
@pytest.mark.parametrize("spec,sizes", VARIANTS, ids=[f"{Path(s).stem}-{z['P']}x{z['M']}" for s, z in VARIANTS])
def test_lanes_bit_exact_with_interpreter(spec, sizes, fmt_name):
    cascade, run, ref = _check(spec, sizes, fmt_name, seed=len(spec) + sizes["M"])
    for out in cascade.outputs:
        np.testing.assert_array_equal(run.codes[out], ref.codes[out])
        want = ref.valid.get(out)
        want = np.ones(run.codes[out].shape, bool) if want is None else want
        np.testing.assert_array_equal(run.valid[out], want)
        assert np.abs(ref.codes[out]).max() > 0          # not an all-zero comparison


def test_masked_tiles_give_absent_weights():
    """causal, P > M: the first queries see no key; their weights are absent and their outputs 0."""
    cascade, run, ref = _check("causal-1pass", {"P": 10, "M": 6, "E": 8, "F": 5}, "int8")
    w, wv = run.weights[0][0]                          # tile 0: [R, lanes]
    assert not wv[:, :4].any() and wv[:, 4:].any()     # queries 0..3 see no key (m <= p + M - P)
    assert (run.codes["AV"][:, :4] == 0).all()


def test_a_wrong_program_is_caught():
    """The comparison can fail: a program whose exp drops the score scale differs from the golden model."""
    cascade = load_cascade("fusemax-1pass")
    sizes = {"P": 6, "M": 11, "E": 8, "F": 5}
    program, _ = build(cascade, ARCH, sizes)
    score = program.section("score")
    bad = Section("score", tuple(dataclasses.replace(i, srcs=(i.srcs[0], const(0.5))) if i.op == "mul" else i
                                 for i in score.instrs))
    wrong = dataclasses.replace(program, sections={**program.sections, "score": bad})
    _, run, ref = _check("fusemax-1pass", sizes, "bf16", program=wrong)
    assert not np.array_equal(run.codes["AV"], ref.codes["AV"])


def test_fusemax_program_sections():
    """Sections come from the Einsums' ranks: the tile max in pass 0, exp and the tile sum in pass 1,
    the per-column rescale per value column, the division at the end of the block."""
    program, _ = build(load_cascade("fusemax-1pass"), ARCH, {"P": 8, "M": 16, "E": 8, "F": 4})
    ops = {name: [(i.op, i.imm if i.op == "acc" else None) for i in program.section(name).instrs]
           for name in ("score", "tile", "weight", "merge", "value", "commit", "output")}
    assert ("acc", "max") in ops["score"]
    assert [o for o, _ in ops["weight"]] == ["sub", "exp", "acc", "wout"]
    assert ("acc", "add") in ops["weight"]
    assert [o for o, _ in ops["value"]] == ["mul", "add"]
    assert [o for o, _ in ops["commit"]] == ["mov", "mov"]
    assert [o for o, _ in ops["output"]] == ["div", "out"]
    assert program.units() == ("add", "div", "exp", "max", "mul", "select")
    kinds = {r.name: r.kind for r in program.regs}
    assert kinds["QK"] == "tile" and kinds["RNV"] == "value" and kinds["RM"] == "scalar" and kinds["RM'"] == "scalar"
    assert program.tile == 4 and program.values == 4


def test_units_follow_the_program():
    """sigmoid attention needs no max and no exp unit, but its sigmoid (a function unit); the window
    masks need the coordinate unit and a select."""
    sig, _ = build(load_cascade("sigmoid"), ARCH, {"P": 4, "M": 8, "E": 4, "F": 4})
    assert "max" not in sig.units() and "exp" not in sig.units() and "fn:sigmoid" in sig.units()
    win, _ = build(load_cascade("sliding-window"), ARCH, {"P": 4, "M": 8, "E": 4, "F": 4})
    assert {"coord", "cmp", "select", "exp", "max"} <= set(win.units())


def test_modulo_schedule_by_hand():
    """sub (1) -> exp (4) -> acc add (1): II = 3 (three instructions, the accumulator's 1-cycle
    recurrence fits), issue 0, 1, 5, end 6; 4 iterations take 3 * 3 + 6 = 15 cycles."""
    x, t, e, acc = (Reg(n, "scalar") for n in ("x", "t", "e", "acc"))
    sec = Section("weight", (Instr("sub", t, (reg(x), reg(x))), Instr("exp", e, (reg(t),)),
                             Instr("acc", acc, (reg(e),), "add")))
    sched = sec.schedule({"add": 1, "exp": 4})
    assert sched.issue == (0, 1, 5) and sched.end == 6 and sched.ii == 3
    assert sched.cycles(4) == 15
    # a 3-cycle accumulator recurrence forces II >= 3 even for one instruction
    one = Section("score", (Instr("acc", acc, (reg(x),), "mul"),))
    assert one.schedule({"mul": 3}).ii == 3


@pytest.mark.parametrize("spec,needle", [
    ("linear", "Einsum NUM of linear: this 2D product neither outputs nor reduces the key tile M"),  # stages split it
    ("mla-absorbed", "neither outputs nor reduces the key tile"),
])
def test_refusals_name_the_einsum_and_capability(spec, needle):
    with pytest.raises(SpecError) as info:
        build(load_cascade(spec), ARCH)
    text = str(info.value)
    assert needle in text and "\n" not in text


def test_split_kv_merge_runs_on_the_lanes():
    """split-kv-decode's merge sums W * O over the splits (a product of two lane tensors over the tile
    rank): it stays on the lanes, a mac chain over the tiles in a second pass (rtl/lanes/passes.py)."""
    arch = load_arch(str(ROOT / "examples/archs/fusemax-7nm-log-unit.yaml"))
    program, schedule = build(load_cascade("split-kv-decode"), arch, {"P": 4, "M": 16, "E": 4, "F": 4})
    assert schedule.einsums["WO"].array != "2d" and program.passes == 2
    assert [c.einsum for c in program.chains] == ["SLNV"]


def test_lane_reading_an_input_is_refused(tmp_path):
    spec = (SPECS / "alibi-lane.yaml").read_text().replace(
        "  - SLN[m1, m0, p]  = exp(QK[m1, m0, p] - RM[m1+1, p])",
        "  - SLN[m1, m0, p]  = exp(QK[m1, m0, p] - RM[m1+1, p]) * BK[0, m1, m0]")
    path = tmp_path / "bad.yaml"
    path.write_text(spec)
    with pytest.raises(SpecError) as info:
        build(load_cascade(str(path)), ARCH)
    assert "Einsum SLN" in str(info.value) and "bad.yaml" in str(info.value)


def test_a_spilled_lane_tensor_is_refused():
    from einloom.base.errors import MappingError
    from einloom.mapper.lower import lower
    from einloom.rtl.lanes.compile import compile_lanes, lane_mapping
    cascade = load_cascade("fusemax-1pass")
    mapping = lane_mapping(cascade, ARCH).replace(spill=("RD",))
    with pytest.raises(MappingError) as info:
        compile_lanes(cascade, lower(cascade, mapping, ARCH, None))
    assert "spills RD" in str(info.value)


def test_user_registered_operator_runs_on_a_function_unit(tmp_path):
    """A user's own map operator compiles to ``fn #name`` (a function unit), runs bit-exact in the
    executor, and the RTL asks for its unit by name."""
    from einloom.einsum import operators
    from einloom.rtl.lanes.encode import encode
    from einloom.rtl.lanes.units import schedule_latency
    operators.register_operator("squash", lambda x: x / (1.0 + np.abs(x)), cost={"div": 1, "add": 1, "max": 1})
    spec = (SPECS / "relu-lane.yaml").read_text().replace("relu(", "squash(").replace("name: relu-lane",
                                                                                     "name: squash-lane")
    path = tmp_path / "squash.yaml"
    path.write_text(spec)
    sizes = {"P": 5, "M": 9, "E": 4, "F": 3}
    for fmt_name in FORMATS:
        cascade, run, ref = _check(str(path), sizes, fmt_name, seed=2)
        np.testing.assert_array_equal(run.codes["AV"], ref.codes["AV"])
    program, _ = build(load_cascade(str(path)), ARCH, sizes)
    assert "fn:squash" in program.units()
    with pytest.raises(SpecError) as info:
        encode(program, schedule_latency())
    assert "fn:squash" in str(info.value) and "register_fn_unit" in str(info.value)
