"""Cascades that run as several lane-core stages (rtl/lanes/stages.py): linear attention's state pass
(KV, Z over the keys) and read pass (NUM, DEN over the feature rank against the state), one after the
other on one programmable build.  Each stage bit-exact against run_in_format of the stage, the last
stage against run_in_format of the whole cascade, cycles equal to sim/rtl_core.lane_core_cycles;
refusals of what the stages do not cover name the Einsum and the capability."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from einloom.cost_models import load_arch
from einloom.einsum import load_cascade
from einloom.einsum.errors import SpecError
from einloom.einsum.loader import parse_cascade_text
from einloom.rtl.lane_build import core_shape, plan_stages
from einloom.rtl.lane_core import qk_drain_cycles, vp_drain_cycles
from einloom.rtl.lanes.stages import split_stages
from einloom.sim.rtl_core import LaneCoreTiming, lane_core_cycles

#: the lane core's drains at R = 4 (the RTL's, as timing_of passes them)
DRAINS = {"qk_drain": qk_drain_cycles(), "vp_drain": vp_drain_cycles(4)}

ROOT = Path(__file__).resolve().parents[2]
BF16 = ROOT / "examples/archs/rtl-4x4-bf16.yaml"
INT8 = ROOT / "examples/archs/rtl-4x4-int8.yaml"


def test_linear_splits_into_a_state_pass_and_a_read_pass():
    first, second = split_stages(load_cascade("linear"))
    assert [e.name for e in first.cascade.einsums] == ["FK", "KV", "Z"]
    assert first.cascade.sequence_rank == "M" and set(first.cascade.outputs) == {"KV", "Z"}
    assert [e.name for e in second.cascade.einsums] == ["FQ", "NUM", "DEN", "AV"]
    assert second.cascade.sequence_rank == "E" and second.handed == ("KV", "Z")
    assert set(second.cascade.inputs) == {"Q", "KV", "Z"} and second.cascade.outputs == ("AV",)
    # a one-pass cascade is its own single stage
    (only,) = split_stages(load_cascade("fusemax-1pass"))
    assert only.cascade.name == "fusemax-1pass" and only.handed == ()


def test_linear_stage_programs_read_the_inputs_per_key():
    arch = load_arch(str(BF16))
    state, read = plan_stages(load_cascade("linear"), arch, {"P": 8, "M": 12, "E": 8, "F": 8})
    st = state.program.structure
    assert (st.key, st.lane, st.value) == ("M", "E", "F") and st.direct == {"K"}
    assert state.program.scores == ("K",) and [c.einsum for c in state.program.chains] == ["KV"]
    assert state.program.outputs == {"KV": "value", "Z": "scalar"}
    st = read.program.structure
    assert (st.key, st.lane, st.value) == ("E", "P", "F") and st.direct == {"Q"}
    assert [c.einsum for c in read.program.chains] == ["NUM", "DEN"]
    shape = core_shape(arch, [state, read])
    assert shape.direct == (True,) and [m[0] for m in shape.memories()] == ["x0", "v0", "v1"]


@pytest.mark.parametrize("P,M", [(8, 12), (5, 10)])
def test_linear_attention_on_the_lane_core_bit_and_cycle_exact(P, M):
    from einloom.rtl.tb.lane_core_tb import finish_stages, simulate_stages
    stages, problems = simulate_stages("linear", load_arch(str(BF16)), {"P": P, "M": M, "E": 8, "F": 8})
    assert problems == []
    assert [s["plan"].cascade.name for s in stages] == ["linear.state", "linear.read"]
    for s in stages:
        assert s["result"]["cycles"] == s["model"]["compute_cycles"]
        assert s["result"]["busy_2d"] == s["model"]["mac_cycles"]
    state, read = stages
    assert int(state["data"].valid["KV"].sum()) == 8 * 8 and int(state["data"].valid["Z"].sum()) == 8
    assert int(read["data"].valid["AV"].sum()) == 8 * P
    # the state pass reduces the keys on the 2D array (F columns per tile), the read pass E features
    assert state["model"]["mac_cycles"] == 2 * -(-M // 4) * 8 and read["model"]["mac_cycles"] == -(-P // 4) * 2 * 2 * 8
    # a wrong bit in the last stage's output is caught against the whole cascade's golden model
    blk, tag, f, vals, lv = read["result"]["beats"][0]
    read["result"]["beats"][0] = (blk, tag, f, [vals[0] ^ 1] + vals[1:], lv)
    inputs = None
    from einloom.rtl.tb.lane_core_tb import whole_inputs
    inputs = whole_inputs(load_cascade("linear"), [s["plan"] for s in stages], 3)
    shape = core_shape(load_arch(str(BF16)), [s["plan"] for s in stages])
    again = finish_stages(load_cascade("linear"), stages, shape, inputs)
    assert any("differ from run_in_format of the whole cascade" in p for p in again)


def test_int8_linear_hands_its_state_over_exactly():
    """Fixed point: the golden mac is exact, so the state KV, Z leaves the state pass as (code, f) value
    words (a raw flag per output) into the read pass's value memories (the wide fixed MAC)."""
    from einloom.rtl.tb.lane_core_tb import simulate_stages
    stages, problems = simulate_stages("linear", load_arch(str(INT8)), {"P": 5, "M": 10, "E": 8, "F": 8})
    assert problems == []
    state, read = stages
    shape = core_shape(load_arch(str(INT8)), [s["plan"] for s in stages])
    assert shape.wide and shape.handed == {"KV", "Z"} and shape.out_bits == 72
    for s in stages:
        assert s["result"]["cycles"] == s["model"]["compute_cycles"]
        assert s["result"]["busy_2d"] == s["model"]["mac_cycles"]
    # the handed state is not an input code: its fraction bits are the products' (not frac_bits = 4)
    from einloom.rtl.lanes.fixed_units import unpack_value
    fs = {unpack_value(int(w))[1] for w in np.asarray(state["data"].golden["KV"]).ravel()}
    assert fs and 4 not in fs
    assert int(read["data"].valid["AV"].sum()) == 8 * 5


def test_linear_stages_with_backpressure():
    from einloom.rtl.tb.lane_core_tb import simulate_stages
    stages, problems = simulate_stages("linear", load_arch(str(BF16)), {"P": 4, "M": 8, "E": 8, "F": 8},
                                       backpressure=0.4, seed=5)
    assert problems == []
    assert sum(s["result"]["stalls"] for s in stages) > 0


def test_cycle_model_counts_direct_reads_as_r_cycles_and_not_as_macs():
    sections = {s: 1 for s in ("init", "begin", "score", "tile", "weight", "merge", "value", "commit", "final",
                               "output")}
    mac = LaneCoreTiming(4, 4, 8, 8, 1, 1, (8,), sections, **DRAINS)
    direct = LaneCoreTiming(4, 4, 8, 8, 1, 1, (8,), sections, (True,), **DRAINS)
    a, b = lane_core_cycles(mac, 4, 8), lane_core_cycles(direct, 4, 8)
    assert a["compute_cycles"] - b["compute_cycles"] == 2 * (8 - 4)      # two tiles, E = 8 vs R = 4 steps
    assert a["mac_cycles"] == 2 * (8 + 8) and b["mac_cycles"] == 2 * 8


HANDED_TO_LANES = """\
name: handed-to-lanes
sequence_rank: M
ranks: {P: 8, M: 12, E: 8, F: 8}
tensors: {Q: [E, P], K: [E, M], V: [F, M], AV: [F, P]}
inputs: [Q, K, V]
outputs: [AV]
einsums:
  - KV[e, f]  = K[e, m] * V[f, m]
  - ZS[f]     = sum[m] V[f, m]
  - NUM[f, p] = Q[e, p] * KV[e, f]
  - AV[f, p]  = NUM[f, p] / ZS[f]
"""


@pytest.mark.parametrize("spec,words", [
    ("lightning", ["QKI", "no query rank", "P0", "partitions of the key rank"]),
])
def test_refusals_of_what_the_stages_do_not_cover(spec, words):
    with pytest.raises(SpecError) as exc:
        plan_stages(load_cascade(spec), load_arch(str(BF16)),
                    {"P": 8, "M": 12, "E": 8, "F": 8, "H": 2, "C": 8, "R": 4})
    text = str(exc.value)
    for w in words:
        assert w in text


def test_a_state_read_outside_a_product_is_refused():
    with pytest.raises(SpecError, match="Einsum AV: it reads ZS, handed over .* outside a multiply-accumulate"):
        split_stages(parse_cascade_text(HANDED_TO_LANES))


def test_einloom_rtl_builds_linear_as_a_programmable_two_stage_core(tmp_path, capsys):
    from einloom.cli import main
    rc = main(["rtl", "linear", "--arch", str(BF16), "--ranks", "P=8,M=12,E=8,F=8", "-o", str(tmp_path / "b"),
               "--json"])
    man = json.loads(capsys.readouterr().out)
    assert rc == 0 and man["kind"] == "lane-core" and man["programmable"]
    assert [p["cascade"] for p in man["programs"]] == ["linear.state", "linear.read"]
    assert [m["name"] for m in man["memories"]] == ["x0", "v0", "v1"]
    sc = man["structure_cycles"]
    stages = [p["expected"][0]["compute_cycles"] for p in man["programs"]]
    assert sc["stage_cycles"] == stages and sc["compute_cycles"] == sum(stages)


@pytest.mark.slow
@pytest.mark.parametrize("arch", [BF16, INT8], ids=["bf16", "int8"])
def test_einloom_verify_linear_in_verilator(arch, capsys):
    """Both stages through Verilator; int8 hands its state over as 72-bit value words (a wide build)."""
    from einloom.cli import main
    rc = main(["verify", "linear", "--arch", str(arch), "--ranks", "P=8,M=12,E=8,F=8", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"] and out["programmable"]
    plain = out["jobs"][0]
    assert plain["stages"] == 2 and plain["problems"] == []
    assert plain["cycles"] == plain["expected_cycles"] and plain["outputs_checked"] == 8 * 8


# ---- several heads --------------------------------------------------------------------------------

@pytest.mark.parametrize("J,G", [(2, 2), (1, 3)])      # GQA, MQA-shaped
def test_heads_fold_and_loop_on_the_lane_core_bit_and_cycle_exact(J, G):
    from einloom.rtl.tb.lane_core_tb import simulate_stages, summary
    sizes = {"P": 3, "M": 8, "E": 8, "F": 8, "J": J, "G": G}
    runs, problems = simulate_stages("gqa", load_arch(str(BF16)), sizes)
    assert problems == []
    assert runs[0]["plan"].looped == ("J",) and runs[0]["plan"].folded == ("G",)
    assert [r["head"] for r in runs] == [{"j": j} for j in range(J)]          # one run per K/V head
    for r in runs:
        assert r["data"].num_queries == G * 3                                  # the group's queries share K/V
        assert r["result"]["cycles"] == r["model"]["compute_cycles"]
        assert r["result"]["busy_2d"] == r["model"]["mac_cycles"]
    assert summary(runs)["outputs_checked"] == J * G * 3 * 8


GQA_CAUSAL = """\
name: gqa-causal
sequence_rank: M
ranks: {J: 1, G: 2, P: 4, M: 8, E: 8, F: 8}
params: {scale: 1 / sqrt(E), offset: M - P}
tensors: {Q: [J, G, E, P], K: [J, E, M], V: [J, F, M], AV: [J, G, F, P]}
inputs: [Q, K, V]
outputs: [AV]
einsums:
  - QK[j, g, m, p] = scale * Q[j, g, e, p] * K[j, e, m]
  - S[j, g, m, p]  = where(m <= p + offset, relu(QK[j, g, m, p]))
  - AV[j, g, f, p] = S[j, g, m, p] * V[j, f, m]
"""

HEAD_BIAS = """\
name: head-bias
sequence_rank: M
ranks: {H: 2, P: 4, M: 8, E: 8, F: 8}
params: {scale: 1 / sqrt(E)}
tensors: {Q: [H, E, P], K: [H, E, M], V: [H, F, M], AV: [H, F, P]}
inputs: [Q, K, V]
outputs: [AV]
einsums:
  - QK[h, m, p] = scale * Q[h, e, p] * K[h, e, m]
  - S[h, m, p]  = relu(QK[h, m, p] - (h + 1) * (p - m))
  - AV[h, f, p] = S[h, m, p] * V[h, f, m]
"""


@pytest.mark.parametrize("text,words", [
    (GQA_CAUSAL, ["query coordinate", "G fold into the query columns"]),
    (HEAD_BIAS, ["head coordinate(s) h"]),
])
def test_heads_the_lanes_cannot_see_are_refused(text, words):
    with pytest.raises(SpecError) as exc:
        plan_stages(parse_cascade_text(text), load_arch(str(BF16)), None)
    for w in words:
        assert w in str(exc.value)


@pytest.mark.slow
def test_einloom_verify_gqa_on_the_lane_core_in_verilator(tmp_path, capsys):
    from einloom.cli import main
    arch = tmp_path / "prog.yaml"          # programmable: the lane core (else the fixed-function core runs gqa)
    arch.write_text(BF16.read_text().replace("  scale: true", "  scale: true\n  programmable: true"))
    rc = main(["verify", "gqa", "--arch", str(arch), "--ranks", "J=2,G=2,P=3,M=8,E=8,F=8", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"]
    plain = out["jobs"][0]
    assert plain["runs"] == 2 and plain["problems"] == [] and plain["P"] == 6
    assert plain["cycles"] == plain["expected_cycles"] and plain["outputs_checked"] == 2 * 2 * 3 * 8


# ---- MLA: a prologue stage, heads across stages ---------------------------------------------------

MLA_SIZES = {"H": 2, "C": 8, "R": 8, "P": 4, "M": 8, "E": 8, "F": 8}


RENAME = {"QC": "QA", "QR": "QB", "CKV": "LAT", "KR": "KP", "WUK": "WA", "WUV": "WB", "AV": "OUT",
          "QL": "QX", "BC": "TL", "BKR": "TP", "QKL": "S1", "QKR": "S2", "QK": "SS", "LM": "TM", "RM": "MX",
          "SLN": "EX", "PRM": "CR", "SPD": "DS", "SLD": "DT", "RD": "DN", "SPNL": "NS", "SLNL": "NT",
          "RNL": "NU", "AL": "AX", "KH": "KX", "VH": "VX", "BK": "TK", "BV": "TV", "QKC": "S3", "SPNV": "NV",
          "SLNV": "NW", "RNV": "NZ", "H": "N", "C": "L", "R": "D", "P": "Q", "M": "T", "E": "A", "F": "B",
          "M0": "T0", "M1": "T1", "h": "n", "c": "l", "r": "d", "p": "q", "m": "t", "e": "a", "f": "b",
          "m0": "t0", "m1": "t1"}


def _renamed_mla(spec: str) -> str:
    """An mla spec with every tensor, Einsum, rank and rank variable renamed (same structure)."""
    import re
    text = (ROOT / f"einsum/library/{spec}.yaml").read_text()
    text = text[text.index("sequence_rank:"):text.index("reference:")]
    text = re.sub(r"#[^\n]*", "", text)
    pat = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, RENAME), key=len, reverse=True)) + r")(?![\w-])")
    return f"name: {spec}-renamed\n" + pat.sub(lambda x: RENAME[x.group(1)], text)


def test_mla_absorbed_splits_into_a_prologue_an_attention_and_a_read_stage():
    pro, att, read = split_stages(load_cascade("mla-absorbed"))
    assert [e.name for e in pro.cascade.einsums] == ["QL"] and pro.cascade.sequence_rank == "E"
    assert set(pro.cascade.inputs) == {"QC", "WUK"} and pro.cascade.outputs == ("QL",)
    assert att.handed == ("QL",) and att.cascade.sequence_rank == "M" and att.cascade.outputs == ("AL",)
    assert [e.name for e in read.cascade.einsums] == ["AV"] and read.cascade.sequence_rank == "C"
    assert read.handed == ("AL",) and set(read.cascade.inputs) == {"WUV", "AL"}
    # the heads: each K/V-side head a run in the projections (WUK, WUV carry H), folded into the queries
    # of the attention stage (one latent cache for every head: MQA-like)
    plans = plan_stages(load_cascade("mla-absorbed"), load_arch(str(BF16)), MLA_SIZES)
    assert [(p.looped, p.folded) for p in plans] == [(("H",), ()), ((), ("H",)), (("H",), ())]
    assert [p.program.structure.direct for p in plans] == [{"QC"}, set(), {"AL"}]
    shape = core_shape(load_arch(str(BF16)), plans)
    assert shape.switched == (True, False) and [m[0] for m in shape.memories()] == ["q0", "k0", "x0", "q1", "k1", "v0"]


@pytest.mark.parametrize("arch", [BF16, INT8], ids=["bf16", "int8"])
def test_mla_absorbed_on_the_lane_core_bit_and_cycle_exact(arch):
    """Three stages on one programmable build, every head run, each run bit-exact against run_in_format
    of its stage and the last stage's AV against run_in_format of the whole cascade; cycles = model."""
    from einloom.rtl.lane_build import run_cycles
    from einloom.rtl.tb.lane_core_tb import simulate_stages, summary
    runs, problems = simulate_stages("mla-absorbed", load_arch(str(arch)), MLA_SIZES)
    assert problems == []
    assert [(r["plan"].cascade.name, r["head"]) for r in runs] == [
        ("mla-absorbed.prologue", {"h": 0}), ("mla-absorbed.prologue", {"h": 1}), ("mla-absorbed.state", {}),
        ("mla-absorbed.read", {"h": 0}), ("mla-absorbed.read", {"h": 1})]
    for r in runs:
        assert r["result"]["cycles"] == r["model"]["compute_cycles"]
        assert r["result"]["busy_2d"] == r["model"]["mac_cycles"]
    assert runs[2]["data"].num_queries == 2 * 4               # the heads fold into the attention's queries
    tot = summary(runs)
    assert tot["outputs_checked"] == 2 * 8 * 4
    plans = [r["plan"] for r in runs if r["head"] in ({}, {"h": 0})]
    shape = core_shape(load_arch(str(arch)), plans)
    assert tot["cycles"] == run_cycles(plans, shape)["compute_cycles"]
    if arch == INT8:        # QL and AL are handed over exactly: (code, f) value words, f not frac_bits
        from einloom.rtl.lanes.fixed_units import unpack_value
        assert shape.wide and shape.handed == {"QL", "AL"}
        fs = {unpack_value(int(w))[1] for w in np.asarray(runs[0]["data"].golden["QL"]).ravel()}
        assert fs and 4 not in fs


def test_mla_a_wrong_bit_of_the_handed_query_is_caught():
    """The prologue's QL handed over with one bit flipped: the attention stage's golden (fed with the
    handed codes) agrees with the core, but the whole cascade's golden does not."""
    from einloom.rtl.tb import lane_core_tb as tb
    real = tb.stage_codes

    def flip(runs, shape, plan):
        out = real(runs, shape, plan)
        if "QL" in out:
            out["QL"] = out["QL"].copy()
            out["QL"][0, 0, 0] ^= 1 << 6
        return out
    tb.stage_codes = flip
    try:
        runs, problems = tb.simulate_stages("mla-absorbed", load_arch(str(BF16)), MLA_SIZES)
    finally:
        tb.stage_codes = real
    assert all(r["problems"] == [] for r in runs)
    assert any("differ from run_in_format of the whole cascade" in p for p in problems)


@pytest.mark.parametrize("spec", ["mla-absorbed", "mla-explicit"])
def test_mla_a_renamed_copy_builds_the_same(spec):
    """Nothing keys on a name: every tensor, Einsum and rank renamed, the same stages, programs and cycles."""
    from einloom.rtl.lane_build import run_cycles
    arch = load_arch(str(BF16))
    renamed = parse_cascade_text(_renamed_mla(spec))
    assert "CKV" not in renamed.tensors and "H" not in renamed.ranks
    sizes = {RENAME[r]: n for r, n in MLA_SIZES.items()}
    a = plan_stages(load_cascade(spec), arch, MLA_SIZES)
    b = plan_stages(renamed, arch, sizes)
    assert [len(p.head_runs()) for p in a] == [len(p.head_runs()) for p in b]
    assert [(p.looped, p.folded) for p in b] == [(tuple(RENAME[r] for r in p.looped),
                                                  tuple(RENAME[r] for r in p.folded)) for p in a]
    assert [p.program.listing().count("\n") for p in a] == [p.program.listing().count("\n") for p in b]
    assert [s.handed for s in split_stages(renamed)] == \
        [tuple(RENAME[t] for t in s.handed) for s in split_stages(load_cascade(spec))]
    assert run_cycles(a, core_shape(arch, a)) == run_cycles(b, core_shape(arch, b))
    if spec == "mla-absorbed":      # and bit-exact on the core
        from einloom.rtl.tb.lane_core_tb import simulate_stages
        runs, problems = simulate_stages(renamed, arch, sizes)
        assert problems == [] and sum(r["result"]["cycles"] for r in runs) == \
            run_cycles(a, core_shape(arch, a))["compute_cycles"]


def test_mla_explicit_projects_the_latent_cache_per_head_in_two_prologue_stages():
    """KH = CKV . WUK and VH = CKV . WUV iterate the keys but only feed products: projections, each a
    prologue stage (one value rank each) with the tokens on the lanes; the attention runs once per head
    (its K and V are per head: each head a run, as gqa's K/V heads)."""
    kh, vh, att = split_stages(load_cascade("mla-explicit"))
    assert [e.name for e in kh.cascade.einsums] == ["KH"] and kh.cascade.sequence_rank == "C"
    assert [e.name for e in vh.cascade.einsums] == ["VH"] and vh.handed == ()
    assert att.handed == ("KH", "VH") and att.cascade.outputs == ("AV",)
    plans = plan_stages(load_cascade("mla-explicit"), load_arch(str(BF16)), MLA_SIZES)
    assert [(p.program.structure.lane, p.looped, p.folded) for p in plans] == [
        ("M", ("H",), ()), ("M", ("H",), ()), ("P", ("H",), ())]
    assert [p.hands for p in plans] == [("KH",), ("VH",), ()]


@pytest.mark.parametrize("arch", [BF16, INT8], ids=["bf16", "int8"])
def test_mla_explicit_on_the_lane_core_bit_and_cycle_exact(arch):
    from einloom.rtl.tb.lane_core_tb import simulate_stages, summary
    runs, problems = simulate_stages("mla-explicit", load_arch(str(arch)), MLA_SIZES)
    assert problems == []
    assert [r["head"] for r in runs] == [{"h": 0}, {"h": 1}] * 3
    for r in runs:
        assert r["result"]["cycles"] == r["model"]["compute_cycles"]
        assert r["result"]["busy_2d"] == r["model"]["mac_cycles"]
    assert summary(runs)["outputs_checked"] == 2 * 8 * 4


def test_mla_stages_of_different_value_widths_are_refused_naming_the_einsum():
    """One build serves one F: mla-absorbed's prologue and attention stages have the value rank C, its
    read stage F; C != F is refused at AV."""
    with pytest.raises(SpecError, match=r"Einsum AV: its stage mla-absorbed.read has the value rank F = 8, stage "
                                        r"mla-absorbed.prologue C = 16 .*one width F"):
        plan_stages(load_cascade("mla-absorbed"), load_arch(str(BF16)), {**MLA_SIZES, "C": 16})


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["mla-absorbed", "mla-explicit"])
@pytest.mark.parametrize("arch", [BF16, INT8], ids=["bf16", "int8"])
def test_einloom_verify_mla_in_verilator(spec, arch, capsys):
    """Every stage and head run through Verilator (cocotb), with and without output backpressure."""
    from einloom.cli import main
    rc = main(["verify", spec, "--arch", str(arch), "--ranks", "H=2,C=8,R=8,P=4,M=8,E=8,F=8", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"] and out["programmable"]
    plain = out["jobs"][0]
    assert plain["stages"] == 3 and plain["problems"] == []
    assert plain["cycles"] == plain["expected_cycles"] and plain["outputs_checked"] == 2 * 8 * 4


def test_einloom_rtl_builds_mla_absorbed_as_a_programmable_three_stage_core(tmp_path, capsys):
    from einloom.cli import main
    from einloom.rtl.lane_build import run_cycles
    rc = main(["rtl", "mla-absorbed", "--arch", str(BF16), "--ranks", "H=2,C=8,R=8,P=4,M=8,E=8,F=8",
               "-o", str(tmp_path / "b"), "--json"])
    man = json.loads(capsys.readouterr().out)
    assert rc == 0 and man["kind"] == "lane-core" and man["programmable"]
    assert [p["cascade"] for p in man["programs"]] == ["mla-absorbed.prologue", "mla-absorbed.state",
                                                       "mla-absorbed.read"]
    assert [p["head_runs"] for p in man["programs"]] == [2, 1, 2]
    sc = man["structure_cycles"]
    plans = plan_stages(load_cascade("mla-absorbed"), load_arch(str(BF16)), MLA_SIZES)
    assert sc["stage_runs"] == [2, 1, 2]
    assert sc["compute_cycles"] == run_cycles(plans, core_shape(load_arch(str(BF16)), plans))["compute_cycles"] == 1245
