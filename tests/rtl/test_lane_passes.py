"""Multi-pass cascades on the lane core (rtl/lanes/passes.py): softmax-2pass / softmax-3pass /
causal-3pass (SN reads the global max GM, complete only after the loop over the keys) and split-KV
decode (its LSE merge reads the max over all splits).  The core streams the key tiles once per pass,
the lanes keep the per-query values in registers between passes.  Each run bit-exact against
run_in_format of the whole cascade, cycles and 2D busy equal to sim/rtl_core.lane_core_cycles."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from einloom.base.errors import EinloomError
from einloom.cost_models import load_arch
from einloom.einsum import load_cascade
from einloom.rtl.lanes.execute import build
from einloom.rtl.lanes.isa import section_names
from einloom.rtl.lane_core import qk_drain_cycles, vp_drain_cycles
from einloom.sim.rtl_core import LaneCoreTiming, lane_core_cycles

#: the lane core's drains at R = 4 (the RTL's, as timing_of passes them)
DRAINS = {"qk_drain": qk_drain_cycles(), "vp_drain": vp_drain_cycles(4)}

ROOT = Path(__file__).resolve().parents[2]
BF16 = ROOT / "examples/archs/rtl-4x4-bf16.yaml"
INT8 = ROOT / "examples/archs/rtl-4x4-int8.yaml"


def _program(spec: str, arch=BF16, **sizes):
    return build(load_cascade(spec), load_arch(str(arch)), {"P": 4, "M": 8, "E": 8, "F": 8, **sizes})[0]


def test_passes_follow_the_dependences():
    """softmax-3pass: GM (pass 1), SD (pass 2, reads GM per key), AV (pass 3, reads SD per key); the
    score product QK runs in every pass, the value product only in the last."""
    p = _program("softmax-3pass")
    assert p.passes == 3 and p.pass_scores == ((0, 1),) * 3 and p.pass_chains == ((0, 0), (0, 0), (0, 1))
    srcs = {name: {i.source for i in p.section(name).instrs} for name in p.section_names()}
    assert srcs["score"] == {"QK", "GM"} and srcs["final"] == {"GM"}
    assert {"SN", "SD"} <= srcs["score.1"] and "A" not in srcs["score.1"]
    assert "A" in srcs["score.2"] and srcs["output"] == {"AV"}
    # GM is written once (pass 1's end) and read by passes 2 and 3: the same register
    gm = {i.dst for i in p.section("final").instrs}
    reads = {o.reg for n in ("score.1", "score.2") for i in p.section(n).instrs for o in i.srcs if o.kind == "reg"}
    assert len(gm) == 1 and gm <= reads
    # softmax-2pass: pass 1 runs QK, pass 2 the recomputed RQK and SNV
    p2 = _program("softmax-2pass")
    assert p2.passes == 2 and p2.pass_scores == ((0, 1), (1, 2)) and p2.pass_chains == ((0, 0), (0, 1))
    # split-KV: pass 1 computes the splits' LSE and their max GM; pass 2 the splits again (and SLNV,
    # which only the merge reads), the merge weights W, SW and the lanes' mac WO
    sk = _program("split-kv-decode")
    assert sk.passes == 2 and [c.einsum for c in sk.chains] == ["SLNV"] and sk.pass_chains == ((0, 0), (0, 1))
    ops = {(i.op, i.source) for i in sk.section("value.1").instrs}
    assert {("mulx", "WO"), ("acc", "WO")} <= ops and ("mul", "WO") not in ops
    assert "log" in sk.units() and "mul" in sk.units()
    # one pass: unchanged
    assert _program("fusemax-1pass").passes == 1 and _program("fusemax-1pass").section_names() == section_names(1)


def test_cycle_model_counts_each_pass():
    """Two passes: the second pass's tiles follow the first's; between them the lanes run the first
    pass's final and the second's init before they take scores again."""
    secs = {n: 1 for n in section_names(2)}
    secs.update({"score": 10, "score.1": 10, "final": 7, "init.1": 5})
    one = LaneCoreTiming(4, 4, 8, 8, 1, 1, (8,), {n: 1 for n in section_names(1)} | {"score": 10},
                         **DRAINS)
    two = LaneCoreTiming(4, 4, 8, 8, 1, 1, (8,), secs, (), ((0, 1, 0, 0), (0, 1, 0, 1)), **DRAINS)
    c1, c2 = lane_core_cycles(one, 4, 8), lane_core_cycles(two, 4, 8)
    assert c2["mac_cycles"] == 2 * (2 * 8) + 2 * 8 and c1["mac_cycles"] == 2 * (8 + 8)
    assert c2["compute_cycles"] > c1["compute_cycles"] + 2 * (8 + 1 + 1 + 4 + 1 + 1 + 1 + 1)


CASES = [("softmax-3pass", BF16, {"P": 5, "M": 6}),      # two query blocks, a ragged last tile
         ("softmax-2pass", BF16, {"P": 4, "M": 8}),
         ("causal-3pass", BF16, {"P": 4, "M": 6}),
         ("split-kv-decode", BF16, {"P": 4, "M": 8}),    # 2 splits of R = 4 keys
         ("softmax-3pass", INT8, {"P": 4, "M": 8}),
         ("softmax-2pass", INT8, {"P": 4, "M": 6}),
         ("causal-3pass", INT8, {"P": 5, "M": 8}),
         ("split-kv-decode", INT8, {"P": 4, "M": 8})]    # the merge's mac chain exact in fixed point


@pytest.mark.parametrize("spec,arch,sizes", CASES, ids=[f"{c[0]}-{c[1].stem}" for c in CASES])
def test_multi_pass_cascade_on_the_lane_core_bit_and_cycle_exact(spec, arch, sizes):
    from einloom.rtl.tb.lane_core_tb import simulate
    res, problems, model, data, plan = simulate(spec, load_arch(str(arch)), {"E": 8, "F": 8, **sizes})
    assert plan.program.passes >= 2
    assert problems == [] and int(data.valid["AV"].sum()) == 8 * sizes["P"] - (8 * (sizes["P"] - sizes["M"])
                                                                               if sizes["P"] > sizes["M"] else 0)
    assert res["cycles"] == model["compute_cycles"] and res["busy_2d"] == model["mac_cycles"]


@pytest.mark.parametrize("first,arch", [("softmax-3pass", BF16), ("split-kv-decode", INT8)],
                         ids=["three-pass-bf16", "split-kv-int8"])
def test_one_programmable_build_runs_a_multi_pass_and_a_one_pass_program(first, arch):
    """The pass count is part of the loaded program (the controller table's passes, the section table's
    last-pass bit): the multi-pass program from reset, fusemax-1pass loaded, the first loaded again.
    int8 split-KV: the fixed mul unit's two modes in one build (mulx in the merge, the floored mul
    elsewhere; fusemax-1pass has no mulx)."""
    from einloom.rtl.tb.lane_core_tb import simulate_programmable
    runs = simulate_programmable([first, "fusemax-1pass"], load_arch(str(arch)), {"P": 4, "M": 8, "E": 8, "F": 8})
    assert [r[0] for r in runs] == [first, "fusemax-1pass", first]
    for spec, res, problems, model in runs:
        assert problems == [], spec
        assert res["cycles"] == model["compute_cycles"], spec


def test_the_fixed_point_merge_is_an_exact_mac_chain():
    """The spec of split-KV's merge ``WO = sum[m1] W * O`` in fixed point is the golden ``mac`` chain,
    which is exact there (the 2D PE's wide accumulator: each product at ``fa + fb`` fraction bits, no
    bf16 rounding of the operands, which only the bf16 format's mac does): WO equals the exact integer
    sum of the splits' W * O, and the lanes' ``mulx`` forms exactly those terms."""
    import numpy as np
    from einloom.rtl.lane_build import number_arith
    from einloom.sim.formats.interpret import run_in_format
    from fractions import Fraction
    arith = number_arith(load_arch(str(INT8)), 8)
    rng = np.random.default_rng(7)
    inputs = {"Q": arith.fmt.quantize(rng.normal(0, 1, (8, 2))), "K": arith.fmt.quantize(rng.normal(0, 1, (8, 12))),
              "V": arith.fmt.quantize(rng.normal(0, 1, (8, 12)))}
    run = run_in_format(load_cascade("split-kv-decode"), arith, inputs, {"M0": 4}, keep_intermediates=True)
    w, o, wo = (run.intermediates[n] for n in ("W", "O", "WO"))
    assert w.shape == (3, 2) and o.shape == (3, 8, 2)
    exact = [[sum(Fraction(int(w["c"][m, p]), 2 ** int(w["f"][m, p])) *
                  Fraction(int(o["c"][m, f, p]), 2 ** int(o["f"][m, f, p])) for m in range(3))
              for p in range(2)] for f in range(8)]
    got = [[Fraction(int(wo["c"][f, p]), 2 ** int(wo["f"][f, p])) for p in range(2)] for f in range(8)]
    assert got == exact
    # a product floored to max(fa, fb) (the fixed mul) would lose bits here: the merge needs the exact term
    terms = arith.product(w[:, None, :], o)
    assert np.all(terms["f"] == w["f"][:, None, :] + o["f"])
    assert not np.array_equal(arith.to_float(arith.mul(w[:, None, :], o)), arith.to_float(terms))


def test_a_pass_reading_a_value_product_of_an_earlier_pass_is_refused(tmp_path):
    """A value product's column sums stay in the 2D array's running sums: a later pass cannot read them."""
    spec = tmp_path / "late-snv.yaml"
    spec.write_text(SNV_LATE)
    with pytest.raises(EinloomError, match="Einsum SNV"):
        _program(str(spec))


SNV_LATE = """
name: late-snv
sequence_rank: M
ranks: {P: 4, M: 8, E: 8, F: 8}
params: {scale: 1 / sqrt(E)}
tensors: {Q: [E, P], K: [E, M], V: [F, M], AV: [F, P]}
inputs: [Q, K, V]
outputs: [AV]
einsums:
  - QK[m, p]  = scale * Q[e, p] * K[e, m]
  - GM[p]     = max[m] QK[m, p]
  - SN[m, p]  = exp(QK[m, p] - GM[p])
  - SNV[f, p] = SN[m, p] * V[f, m]
  - X[m, p]   = QK[m, p] * GM[p]
  - XM[p]     = max[m] X[m, p]
  - Y[m, p]   = exp(X[m, p] - XM[p])
  - YV[f, p]  = Y[m, p] * V[f, m]
  - AV[f, p]  = SNV[f, p] + YV[f, p]
"""


@pytest.mark.slow
@pytest.mark.parametrize("spec,arch,ranks", [("softmax-3pass", BF16, "P=8,M=12,E=8,F=8"),
                                             ("split-kv-decode", BF16, "P=4,M=12,E=8,F=8"),
                                             ("split-kv-decode", INT8, "P=4,M=12,E=8,F=8")],
                         ids=["softmax-3pass-bf16", "split-kv-decode-bf16", "split-kv-decode-int8"])
def test_einloom_verify_multi_pass_in_verilator(spec, arch, ranks, capsys):
    from einloom.cli import main
    rc = main(["verify", spec, "--arch", str(arch), "--ranks", ranks, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"]
    plain = out["jobs"][0]
    assert plain["problems"] == [] and plain["cycles"] == plain["expected_cycles"]
    assert plain["outputs_checked"] == 8 * int(ranks.split(",")[0][2:])
