"""The lane core (2D MAC array + programmable 1D lanes, rtl/lane_core.py): bit-exact with the golden
interpreter (run_in_format of the whole cascade in the schedule's order) and cycle-exact with
sim/rtl_core.lane_core_cycles, in Amaranth's simulator (fast) and in Verilator through
`einloom rtl` / `einloom verify` (slow); refusals name the Einsum and the missing capability."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.cost_models import load_arch
from einloom.einsum import load_cascade
from einloom.einsum.errors import SpecError
from einloom.rtl.lane_build import core_shape, plan_lanes
from einloom.rtl.lanes.fixed_units import FixedReluUnit
from einloom.sim.rtl_core import lane_core_cycles

ROOT = Path(__file__).resolve().parents[2]
BF16 = ROOT / "examples/archs/rtl-4x4-bf16.yaml"
INT8 = ROOT / "examples/archs/rtl-4x4-int8.yaml"

# A user's own variant, not in the library: squared-ReLU attention (Primer-style weights) with a
# bottom-right causal mask.  Also the README tour's spec.
MY_VARIANT = """\
name: my-variant
description: squared-ReLU attention with a bottom-right causal mask (a user's own spec)
sequence_rank: M
ranks: {P: 8, M: 12, E: 8, F: 8}
params:
  scale: 1 / sqrt(E)
  offset: M - P
tensors:
  Q:  [E, P]
  K:  [E, M]
  V:  [F, M]
  AV: [F, P]
inputs: [Q, K, V]
outputs: [AV]
einsums:
  - QK[m, p] = scale * Q[e, p] * K[e, m]
  - R[m, p] = where(m <= p + offset, relu(QK[m, p]))
  - SA[m, p] = R[m, p] * R[m, p]
  - AV[f, p] = SA[m, p] * V[f, m]
"""


# The library's sigmoid runs on the lanes' sigmoid unit; written with exp and a
# division, the lanes run it on their exp, add and reciprocal units.
SIGMOID_EXP = """\
name: sigmoid-exp
description: sigmoid attention (Ramapuram et al. 2024) with the sigmoid written as 1 / (1 + exp(-x)), so the lanes run it on their exp, add and reciprocal units
sequence_rank: M
ranks: {P: 8, M: 12, E: 8, F: 8}
params:
  scale: 1 / sqrt(E)
  b: -log(M)
tensors:
  Q:  [E, P]
  K:  [E, M]
  V:  [F, M]
  AV: [F, P]
inputs: [Q, K, V]
outputs: [AV]
einsums:
  - QK[m, p] = scale * Q[e, p] * K[e, m]
  - SA[m, p] = 1 / (1 + exp(-(QK[m, p] + b)))
  - AV[f, p] = SA[m, p] * V[f, m]
"""


def _simulate(spec: str, P: int, M: int, *, backpressure: float = 0.0, seed: int = 3):
    """Run the lane core of ``spec`` in Amaranth's simulator: (result, problems, model, data)."""
    from einloom.rtl.tb.lane_core_tb import simulate
    res, problems, model, data, _ = simulate(spec, load_arch(str(BF16)), {"P": P, "M": M, "E": 8, "F": 8},
                                             backpressure=backpressure, seed=seed)
    return res, problems, model, data


@pytest.mark.parametrize("spec,P,M", [("differential", 5, 6), ("relu-attention", 6, 9)])
def test_lane_core_bit_and_cycle_exact(spec, P, M):
    res, problems, model, data = _simulate(spec, P, M)
    assert problems == []
    assert sum(int(v.sum()) for v in data.valid.values()) > 0
    assert any(int(g.max()) != 0 for g in data.golden.values())       # not an all-zero comparison
    assert res["cycles"] == model["compute_cycles"]
    assert res["busy_2d"] == model["mac_cycles"]


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["fusemax-1pass", "alibi", "flash1-1pass", "prefix-lm", "causal-1pass"])
def test_lane_core_variants_with_backpressure(spec):
    res, problems, model, _ = _simulate(spec, 6, 9, backpressure=0.3, seed=5)
    assert problems == []
    assert res["stalls"] > 0 and res["cycles"] > model["compute_cycles"]


def test_sigmoid_written_with_exp_runs_bit_and_cycle_exact(tmp_path):
    spec = tmp_path / "sigmoid-exp.yaml"
    spec.write_text(SIGMOID_EXP)
    res, problems, model, data = _simulate(str(spec), 8, 12)
    assert problems == [] and int(data.valid["AV"].sum()) == 64
    assert res["cycles"] == model["compute_cycles"] and res["busy_2d"] == model["mac_cycles"]


def test_a_corrupted_golden_is_caught():
    """The checker can fail: one flipped golden bit is reported with its element."""
    from einloom.rtl.tb.lane_core_tb import check
    res, problems, _, data = _simulate("relu-attention", 4, 4)
    assert problems == []
    data.golden["AV"][2, 1] ^= 1
    bad = check(res, core_shape(load_arch(str(BF16)), [plan_lanes(load_cascade("relu-attention"), load_arch(
        str(BF16)), {"P": 4, "M": 4, "E": 8, "F": 8})]), data, ["AV"])
    assert len(bad) == 1 and "AV[2, q=1]" in bad[0]


def test_cycle_model_counts_states():
    """Two tiles, one block: the formula's terms by hand."""
    from einloom.rtl.lane_core import qk_drain_cycles, vp_drain_cycles
    from einloom.sim.rtl_core import LaneCoreTiming
    secs = {s: 1 for s in ("init", "begin", "score", "tile", "weight", "merge", "value", "commit", "final",
                           "output")}
    t = LaneCoreTiming(rows=4, cols=4, head_dim=8, value_dim=8, scores=1, chains=1, beats=(8,), sections=secs,
                       qk_drain=qk_drain_cycles(), vp_drain=vp_drain_cycles(4))
    c = lane_core_cycles(t, 4, 8)
    # BSTART 0 (lane init at 1, waits for scores from 2); tile 0: QK 1..11 (8 reads, 1, the operand and
    # product registers' 2), WS 12, SW 13..16, GO 17, the lane's begin..merge 18..22, WW leaves at 23,
    # VP 24..38 (8 reads, 1, the systolic column's R + 2 = 6), GO 39 (value, commit 40, 41); tile 1:
    # QK 40..50, WS 51, SW 52..55, GO 56, WW 57..62, VP 63..77, GO 78; the lane: value 79, commit 80,
    # final 81, output 82, done state 83, done visible 84; WD leaves at 84, DRAIN 85..92, FIN 93
    assert t.qk_drain == 2 and t.vp_drain == 4 + 2
    assert c["compute_cycles"] == 94
    assert c["mac_cycles"] == 2 * (8 + 8) and c["tiles"] == 2 and c["blocks"] == 1


@pytest.mark.parametrize("spec,P,M", [("sigmoid", 8, 12), ("softcap", 5, 6), ("attention-lse", 5, 6)])
def test_sigmoid_and_log_variants_bit_and_cycle_exact(spec, P, M):
    """The lanes' sigmoid unit (sigmoid attention, softcap's tanh) and log unit (attention-lse's LSE)."""
    res, problems, model, data = _simulate(spec, P, M)
    assert problems == []
    assert sum(int(v.sum()) for v in data.valid.values()) == sum(v.size for v in data.valid.values()) > 0
    assert all(int(g.max()) != 0 for g in data.golden.values())
    assert res["cycles"] == model["compute_cycles"] and res["busy_2d"] == model["mac_cycles"]


@pytest.mark.slow
def test_one_programmable_build_runs_attention_lse_and_sigmoid():
    """Amaranth's simulator: attention-lse from reset (log unit, two outputs, per-tile value product),
    sigmoid loaded at run time (sigmoid unit, a value product continued across tiles), attention-lse again."""
    from einloom.rtl.tb.lane_core_tb import simulate_programmable
    runs = simulate_programmable(["attention-lse", "sigmoid"], load_arch(str(BF16)), {"P": 4, "M": 8, "E": 8, "F": 8})
    assert [r[0] for r in runs] == ["attention-lse", "sigmoid", "attention-lse"]
    for spec, res, problems, model in runs:
        assert problems == [], spec
        assert res["cycles"] == model["compute_cycles"], spec
        assert len(res["beats"]) == (9 if spec == "attention-lse" else 8)      # F beats (+ the LSE beat)


class _AbsUnit(wiring.Component):
    """A user's unit for ``magnitude(x) = |x|`` (bit-exact with the golden's float64 abs rounded once:
    the sign bit cleared; a NaN stays the canonical NaN)."""

    latency = 1

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "mode": In(1), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.result.eq(self.a & 0x7FFFFFFF)
        return m


MAGNITUDE = MY_VARIANT.replace("my-variant", "magnitude-attention").replace(
    "squared-ReLU attention with a bottom-right causal mask", "attention weighted by |score|").replace(
    "R[m, p] = where(m <= p + offset, relu(QK[m, p]))", "R[m, p] = where(m <= p + offset, magnitude(QK[m, p]))")


class _FixedAbsUnit(FixedReluUnit):
    """The same operator's fixed-point unit: |x| rounded once to prob_bits as FixedArith.apply_float
    does (the relu unit's rounding after the magnitude)."""

    def compute(self, m, a, b, mode):
        from einloom.rtl.lanes.fixed_units import CODE_BITS
        c = a[:CODE_BITS].as_signed()
        return super().compute(m, Cat(Mux(c < 0, -c, c)[:CODE_BITS], a[CODE_BITS:]), b, mode)


@pytest.mark.parametrize("arch", [BF16, INT8], ids=["bf16", "int8"])
def test_a_user_registered_operator_runs_on_its_registered_unit(tmp_path, arch):
    """register_operator + register_fn_unit: a new operator, no einloom code change, bit-exact."""
    from einloom.einsum import operators
    from einloom.rtl.lanes import units
    spec = tmp_path / "magnitude.yaml"
    spec.write_text(MAGNITUDE)
    from einloom.rtl.tb.lane_core_tb import simulate
    operators.register_operator("magnitude", np.abs, cost={"max": 1})
    fixed = arch == INT8
    try:
        with pytest.raises(SpecError, match="fn:magnitude"):               # no unit yet: refused
            plan_lanes(load_cascade(str(spec)), load_arch(str(arch)), {"P": 4, "M": 4, "E": 8, "F": 8})
        units.register_fn_unit("magnitude", _FixedAbsUnit if fixed else _AbsUnit, fixed=fixed)
        res, problems, model, data, _ = simulate(str(spec), load_arch(str(arch)), {"P": 4, "M": 8, "E": 8, "F": 8})
        assert "fn:magnitude" in units.schedule_latency(fixed)
        assert problems == [] and int(data.valid["AV"].sum()) == 32
        assert res["cycles"] == model["compute_cycles"]
    finally:
        units.FN_UNITS.pop("magnitude", None)
        units.FIXED_FN_UNITS.pop("magnitude", None)
        operators._MAPS.pop("magnitude", None)


@pytest.mark.parametrize("spec,arch,words", [
    ("lightning", INT8, ["QKI", "no query rank"]),             # the queries are the keys' own tiles
])
def test_refusals_name_the_einsum_and_the_missing_capability(spec, arch, words, capsys):
    from einloom.cli import main
    rc = main(["rtl", spec, "--arch", str(arch), "-o", "/tmp/einloom-refused"])
    err = capsys.readouterr().err
    assert rc == 2
    for w in words:
        assert w in err
    assert "Traceback" not in err


def test_plan_refuses_a_unit_the_fixed_lanes_lack(tmp_path):
    from einloom.base.errors import EinloomError
    spec = tmp_path / "abs-attention.yaml"                      # abs has no fixed-point (nor bf16) unit
    spec.write_text(MY_VARIANT.replace("my-variant", "abs-attention").replace("relu(QK[m, p])", "abs(QK[m, p])"))
    with pytest.raises(EinloomError, match="fn:abs"):
        plan_lanes(load_cascade(str(spec)), load_arch(str(INT8)), {"P": 4, "M": 4, "E": 8, "F": 8})


INT16 = ROOT / "examples/archs/rtl-4x4-int16.yaml"


@pytest.mark.parametrize("spec,arch,P,M", [
    pytest.param("alibi", INT8, 5, 6, id="alibi-int8"),
    pytest.param("relu-attention", INT8, 5, 6, id="relu-attention-int8"),
    pytest.param("sigmoid", INT8, 5, 6, id="sigmoid-int8"),                 # the fixed sigmoid unit
    pytest.param("attention-lse", INT8, 5, 6, id="attention-lse-int8"),     # the fixed log unit
    pytest.param("softcap", INT8, 5, 6, id="softcap-int8", marks=pytest.mark.slow),
    pytest.param("differential", INT8, 5, 6, id="differential-int8", marks=pytest.mark.slow),
    pytest.param("causal-1pass", INT16, 5, 6, id="causal-1pass-int16", marks=pytest.mark.slow),
    pytest.param("sinks-window", INT16, 6, 9, id="sinks-window-int16", marks=pytest.mark.slow),
    pytest.param("sigmoid", INT16, 5, 6, id="sigmoid-int16", marks=pytest.mark.slow),
    pytest.param("attention-lse", INT16, 5, 6, id="attention-lse-int16", marks=pytest.mark.slow),
    pytest.param("softcap", INT16, 4, 5, id="softcap-int16", marks=pytest.mark.slow),
])
def test_fixed_point_lane_core_bit_and_cycle_exact(spec, arch, P, M):
    """The lane core with fixed-point lanes ((code, f) registers) and the aligning fixed MAC array."""
    from einloom.rtl.tb.lane_core_tb import simulate
    res, problems, model, data, plan = simulate(spec, load_arch(str(arch)), {"P": P, "M": M, "E": 8, "F": 8})
    assert plan.fixed is not None and problems == []
    assert sum(int(v.sum()) for v in data.valid.values()) == 8 * P + (P if spec == "attention-lse" else 0)
    assert any(int(g.max()) != 0 for g in data.golden.values())
    assert res["cycles"] == model["compute_cycles"] and res["busy_2d"] == model["mac_cycles"]


def test_einloom_rtl_builds_a_users_spec(tmp_path, capsys):
    from einloom.cli import main
    spec = tmp_path / "my-variant.yaml"
    spec.write_text(MY_VARIANT)
    rc = main(["rtl", str(spec), "--arch", str(BF16), "--ranks", "P=8,M=12", "-o", str(tmp_path / "b"), "--json"])
    assert rc == 0
    man = json.loads(capsys.readouterr().out)
    assert man["kind"] == "lane-core" and man["programs"][0]["cascade"] == "my-variant"
    assert "fn:relu" in man["programs"][0]["units"]
    assert (tmp_path / "b" / "einloom_lane_core.v").read_text().startswith("/*") or \
        "module einloom_lane_core" in (tmp_path / "b" / "einloom_lane_core.v").read_text()


@pytest.mark.slow
def test_einloom_verify_a_users_spec_in_verilator(tmp_path, capsys):
    from einloom.cli import main
    spec = tmp_path / "my-variant.yaml"
    spec.write_text(MY_VARIANT)
    rc = main(["verify", str(spec), "--arch", str(BF16), "--ranks", "P=8,M=12", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"]
    plain = out["jobs"][0]
    assert plain["cycles"] == plain["expected_cycles"] and plain["outputs_checked"] == 8 * 8


@pytest.mark.slow
def test_one_programmable_build_runs_two_variants_in_verilator(capsys):
    from einloom.cli import main
    rc = main(["verify", "alibi", "--also", "differential", "--arch", str(BF16), "--ranks", "P=6,M=9,E=8,F=8",
               "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"] and out["programmable"]
    specs = [Path(j["spec"]).stem for j in out["jobs"]]
    assert specs == ["alibi", "alibi", "differential", "differential", "alibi"]
    for j in out["jobs"]:
        assert j["problems"] == []
        if j["stalls"] == 0:
            assert j["cycles"] == j["expected_cycles"]


def test_rtl_programmable_true_builds_the_lane_core_with_its_load_port(tmp_path, capsys):
    from einloom.cli import main
    arch = tmp_path / "prog.yaml"
    arch.write_text(BF16.read_text().replace("  scale: true", "  scale: true\n  programmable: true"))
    rc = main(["rtl", "fusemax-1pass", "--arch", str(arch), "--ranks", "P=4,M=4", "-o", str(tmp_path / "b"),
               "--json"])
    man = json.loads(capsys.readouterr().out)
    assert rc == 0 and man["kind"] == "lane-core" and man["programmable"]
    names = {p["name"] for p in man["ports"]}
    assert {"prog_en", "prog_target", "prog_addr", "prog_data"} <= names
    assert man["programs"][0]["image"]["bundles"]          # the words a host loads


def test_a_second_output_goes_to_the_lane_core(tmp_path, capsys):
    """attention-lse matches the softmax core's Einsums but also outputs LSE: the fixed-function core
    (one output stream) must not take it and drop LSE; the lane core builds both."""
    from einloom.cli import main
    from einloom.rtl.core_form import match_core
    with pytest.raises(SpecError, match="one output"):
        match_core(load_cascade("attention-lse"), scale=True)
    rc = main(["rtl", "attention-lse", "--arch", str(BF16), "--ranks", "P=4,M=4", "-o", str(tmp_path / "b"), "--json"])
    man = json.loads(capsys.readouterr().out)
    assert rc == 0 and man["kind"] == "lane-core" and "log" in man["programs"][0]["units"]


@pytest.mark.slow
def test_one_programmable_fixed_point_build_runs_alibi_and_relu_attention():
    """int8: alibi from reset, relu-attention (its fixed relu unit, a continued value product) loaded
    at run time, alibi again; each bit- and cycle-exact."""
    from einloom.rtl.tb.lane_core_tb import simulate_programmable
    runs = simulate_programmable(["alibi", "relu-attention"], load_arch(str(INT8)), {"P": 4, "M": 8, "E": 8, "F": 8})
    assert [r[0] for r in runs] == ["alibi", "relu-attention", "alibi"]
    for spec, res, problems, model in runs:
        assert problems == [] and res["cycles"] == model["compute_cycles"] and len(res["beats"]) == 8, spec


def test_rtl_builds_the_fixed_point_lane_core_for_what_the_fixed_core_refuses(tmp_path, capsys):
    """flash1-1pass on rtl-4x4-int8: not the fixed-function core's form (its SLN), so the lane core
    with fixed-point lanes, where it used to be refused naming the format."""
    from einloom.cli import main
    rc = main(["rtl", "flash1-1pass", "--arch", str(INT8), "-o", str(tmp_path / "b"), "--json"])
    man = json.loads(capsys.readouterr().out)
    assert rc == 0 and man["kind"] == "lane-core"
    assert man["parameters"]["number_format"]["kind"] == "fixed" and man["parameters"]["number_format"]["input_bits"] == 8


@pytest.mark.slow
def test_einloom_verify_sigmoid_int8_in_verilator(capsys):
    """The fixed-point sigmoid unit through Verilator: the brief's command, bit- and cycle-exact."""
    from einloom.cli import main
    rc = main(["verify", "sigmoid", "--arch", str(INT8), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"]
    plain = out["jobs"][0]
    assert plain["problems"] == [] and plain["cycles"] == plain["expected_cycles"]
    assert plain["outputs_checked"] == 16 * 64
