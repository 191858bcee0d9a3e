"""The simulator configured as the generated core (sim/rtl_core.py) against the RTL.

Cycles: equal to the RTL's cycle formula (rtl.attention.compute_cycles, which the cocotb testbench
asserts equal to the measured count on every unstalled case) on every ``einloom verify`` case of
rtl-4x4-int8, rtl-8x8-int8 and rtl-4x4-bf16.  Output: equal to the golden model (which the RTL
matches bit for bit in verify) on the same cases' inputs.  The slow test runs the Verilator build and
compares the measured cycles and output beats with the model directly.
"""
from dataclasses import replace

import numpy as np
import pytest

from einloom.rtl.attention import compute_cycles, core_params, tiles_per_block
from einloom.rtl.config import RtlConfig
from einloom.rtl.tb.suite import default_cases
from einloom.rtl.tb.reference import golden_masked
from einloom.sim.formats import golden_attention
from einloom.sim.rtl_core import CoreParams, core_cycles, core_tiles, run_core

CONFIGS = ["rtl-4x4-int8", "rtl-8x8-int8", "rtl-4x4-bf16"]
_CFG = {}


def _cfg(name):
    if name not in _CFG:
        _CFG[name] = RtlConfig.from_yaml(f"examples/archs/{name}.yaml")
    return _CFG[name]


def params_of(cfg) -> CoreParams:
    return core_params(cfg)


def _inputs(cfg, case):
    """The testbench's draw (rtl/tb/attention_tb.py run_case)."""
    rng = np.random.default_rng(case["seed"])
    sd = case.get("sd", 1.0)
    fmt = cfg.fmt
    q = fmt.quantize(rng.normal(0, sd, (cfg.head_dim, case["P"])))
    k = fmt.quantize(rng.normal(0, sd, (cfg.head_dim, case["M"])))
    v = fmt.quantize(rng.normal(0, 1.0, (cfg.value_dim, case["M"])))
    return q, k, v


def _cases():
    for name in CONFIGS:
        for case in default_cases(_cfg(name)):
            yield pytest.param(name, case, id=f"{name}-{case['name']}")


@pytest.mark.parametrize("name,case", list(_cases()))
def test_cycles_and_bits_equal_the_rtl(name, case):
    cfg = _cfg(name)
    p_dim, m_dim, causal = case["P"], case["M"], bool(case.get("causal", False))
    mask = {"window": case.get("window", 0), "sinks": case.get("sinks", 0)}
    q, k, v = _inputs(cfg, case)
    run = run_core(params_of(cfg), p_dim, m_dim, causal, fmt=cfg.fmt, q=q, k=k, v=v, **mask)
    assert run.cycles == compute_cycles(cfg, p_dim, m_dim, causal, **mask)
    if not mask["window"]:
        assert [len(t) for t in core_tiles(params_of(cfg), p_dim, m_dim, causal)] == \
            tiles_per_block(cfg, p_dim, m_dim, causal)
    want = golden_masked(cfg.fmt, q, k, v, tile_m=cfg.rows, causal=causal, **mask)
    assert np.array_equal(run.output, want)


def test_readme_table_cycles():
    """rtl/README.md's table: M=P=64 plain / causal, and the 2D utilization at M = 128."""
    got = {n: (run_core(params_of(_cfg(n)), 64, 64).cycles, run_core(params_of(_cfg(n)), 64, 64, True).cycles)
           for n in CONFIGS}
    assert got == {"rtl-4x4-int8": (8267, 4437), "rtl-8x8-int8": (2195, 1287), "rtl-4x4-bf16": (9553, 5119)}
    assert run_core(params_of(_cfg("rtl-8x8-int8")), 64, 128).util_2d >= 0.85


def test_slots_overlap_the_arrays():
    """Steady state: the 2D array runs QK of tile m1+1 back to back with SLNV of tile m1 in every slot,
    while the 1D array's softmax work of tile m1+1 overlaps the next slot's products."""
    cfg = _cfg("rtl-8x8-int8")
    run = run_core(params_of(cfg), 8, 64)
    ops = [op for op in run.ops if op[0] == "2d"]
    for qk, slnv in zip(ops[1::2], ops[2::2]):     # slot j: QK(j), then SLNV(j-1) right behind it
        assert qk[1] == "QK" and slnv[1] == "SLNV" and qk[5] == slnv[4] and slnv[3] == qk[3] - 1
    soft = [op for op in run.ops if op[1] == "SOFTMAX"]
    qks = [op for op in run.ops if op[1] == "QK"]
    assert any(s[4] < q[5] and q[4] < s[5] for s in soft for q in qks if q[3] == s[3] + 1)
    # E + F = 32 product cycles per slot; the 8x8's period is 33 (its weight-load term, with the PE's
    # 3-cycle product), so the 2D array idles one cycle per slot
    assert run.period == 33 and run.busy["2d"] == 8 * 32
    assert run.tiles_run == 8 and run.tiles_skipped == 0


def test_a_wrong_mask_changes_the_bits_and_cycles():
    """The functional run executes only the tiles the timing runs: run without the mask on a causal
    case and the output and cycles both differ (the check can fail)."""
    cfg = _cfg("rtl-4x4-int8")
    case = {"P": 8, "M": 24, "seed": 1101}
    q, k, v = _inputs(cfg, case)
    want, _ = golden_attention(cfg.fmt, q, k, v, tile_m=4, causal=True)
    right = run_core(params_of(cfg), 8, 24, True, fmt=cfg.fmt, q=q, k=k, v=v)
    wrong = run_core(params_of(cfg), 8, 24, False, fmt=cfg.fmt, q=q, k=k, v=v)
    assert np.array_equal(right.output, want) and not np.array_equal(wrong.output, want)
    assert right.tiles_skipped == 2 * 6 - (5 + 6) and wrong.cycles > right.cycles


def test_p_greater_than_m_empty_block_runs_no_tile():
    cfg = _cfg("rtl-4x4-int8")
    run = run_core(params_of(cfg), 13, 6, True)
    assert [len(t) for t in core_tiles(params_of(cfg), 13, 6, True)] == [0, 1, 2, 2]
    assert not any(op[1] == "QK" and op[2] == 0 for op in run.ops)


def test_bad_params_raise():
    with pytest.raises(ValueError, match="rows"):
        CoreParams(0, 4, 16, 16, 4, 5, 3)
    with pytest.raises(ValueError, match=r"rows R = 4 must be at most acc_latency"):
        CoreParams(4, 4, 16, 16, 4, 5, 3, acc_latency=2).timeline()
    with pytest.raises(ValueError, match=r"head_dim E = 6 must be a multiple of the accumulate's acc_latency 4"):
        CoreParams(4, 4, 6, 16, 4, 5, 3, acc_latency=4).timeline()
    with pytest.raises(ValueError, match="num_queries"):
        run_core(CoreParams(4, 4, 16, 16, 4, 5, 3), 0, 4)


@pytest.mark.slow
def test_measured_rtl_cycles_and_beats_equal_the_model():
    """Verilator + cocotb: the core's measured compute cycles equal the model's on every unstalled case."""
    from einloom.rtl.tb.suite import run_suite
    cfg = _cfg("rtl-4x4-int8")
    cases = [c for c in default_cases(cfg) if not c.get("corrupt")]
    out = run_suite(cfg, cases, quiet=True)
    for case in cases:
        res = out["tests"][case["name"]]
        assert res["passed"], (case["name"], res["errors"])
        model = run_core(params_of(cfg), case["P"], case["M"], bool(case.get("causal", False)),
                         window=case.get("window", 0), sinks=case.get("sinks", 0)).cycles
        if res["stalls"] == 0:
            assert res["cycles"] == model, case["name"]
        else:
            assert res["cycles"] >= model, case["name"]


def test_deeper_multiply_pipeline_timeline():
    """mac_latency 3 (the bf16 PE's product in three stages): the QK tile reaches the bottom drain
    registers and the SLNV column sums leave the array one cycle later; what depends on them moves
    with them; fewer than the operand and product registers (2) is refused."""
    two = CoreParams(4, 4, 8, 8, 17, 10, 4, 2, 7, acc_latency=4).timeline()
    three = CoreParams(4, 4, 8, 8, 17, 10, 4, 3, 7, acc_latency=4).timeline()
    assert three.array_drain == two.array_drain + 1 and three.drain == two.drain + 1
    assert three.issue_sln == two.issue_sln + 1 and three.rd_update == two.rd_update + 1
    assert three.slnv - three.feed_v == two.slnv - two.feed_v + 1
    assert three.period >= two.period
    with pytest.raises(ValueError, match="at least 2 multiply registers"):
        CoreParams(4, 4, 8, 8, 17, 10, 4, 1, 7, acc_latency=4).timeline()


def test_pipelined_accumulate_timeline():
    """acc_latency L = 4 (the bf16 core): the partials reach the bottom drain registers L cycles later
    than the single-cycle sum, their combine takes (L-1) L, SLD the interleaved accumulate's 4 + (L-1) L,
    V is fed X cycles behind K (skewed L per row), and the RD snapshot moves instead of the period."""
    p = CoreParams(4, 4, 8, 8, 14, 6, 4, 2, 7, acc_latency=4)
    one = CoreParams(4, 4, 8, 8, 14, 6, 4, 2, 7, acc_latency=1).timeline()
    tl = p.timeline()
    assert (p.combine_latency, p.sld_latency) == (12, 16)
    assert tl.array_drain == one.drain + 4 and tl.drain == tl.array_drain + 12
    assert tl.rd_update == tl.issue_sln + 14 + 4 - 1 + 16
    assert tl.slnv == tl.feed_v + 4 * 4 + 2 and tl.feed_v == tl.feed + 8 + tl.v_delay
    # period: the 2D array's 8 + 8 + 3 * 3 + X against the weights' 44 - X, balanced at X = 10
    assert (tl.v_delay, tl.period) == (10, 35)
    assert tl.rd_snap == tl.rd_update + 7 + 1 - tl.period and tl.recip_load == tl.rd_snap + 4
    # L = 1 keeps the single-cycle core's table: RD snapshot at tile_start, no V delay
    assert (one.v_delay, one.rd_snap, one.array_drain) == (0, one.tile_start, one.drain)


def test_registered_lm_compare_timeline():
    """lm_reg (the fixed-point core: 2, the 1D PE registers the drained score before the LM compare and
    the LM > RM compare before RM's update): RM, SLN and PRM start lm_reg cycles later and what follows
    them moves with them; the drain, the SLNV sums and the output do not move, and at E = F = 16 the
    4x4's period (the 2D array's E + F) is unchanged, so its cycles are too; bf16 compares as the score
    arrives (lm_reg = 0)."""
    plain = CoreParams(4, 4, 16, 16, 4, 6, 5, 2, 4)
    for lg in (1, 2):
        a, b = plain.timeline(), replace(plain, lm_reg=lg).timeline()
        assert (b.rm_update, b.issue_sln, b.issue_prm, b.rd_update) == (
            a.rm_update + lg, a.issue_sln + lg, a.issue_prm + lg, a.rd_update + lg)
        assert (b.drain, b.tile_start, b.slnv, b.out, b.period) == (a.drain, a.tile_start, a.slnv, a.out, a.period)
        assert b.issue_sln == b.drain + 4 + lg + 1            # R captures, the registered compares, RM
    p = core_params(_cfg("rtl-4x4-int8"))
    assert p.lm_reg == 2 and p.timeline().period == 32
    assert core_cycles(p, 64, 64) == core_cycles(replace(p, lm_reg=0), 64, 64)
    # the 8x8: its weight-load term 3R + mac + lm_reg + Lx = 24 + 3 + 2 + 4 = 33 passes E + F = 32 (the
    # PE's 3-cycle product): the registered compares cost it one cycle per slot
    p = core_params(_cfg("rtl-8x8-int8"))
    assert p.lm_reg == 2 and p.mac_latency == 3 and p.timeline().period == 33
    assert replace(p, lm_reg=1).timeline().period == 32
    assert core_params(_cfg("rtl-4x4-bf16")).lm_reg == 0
    with pytest.raises(ValueError, match="lm_reg"):
        CoreParams(4, 4, 16, 16, 4, 6, 5, lm_reg=3)
