"""The simulator configured as the generated core (sim/rtl_core.py) against the RTL.

Cycles: equal to the RTL's cycle formula (rtl.attention.compute_cycles, which the cocotb testbench
asserts equal to the measured count on every unstalled case) on every ``einloom verify`` case of
rtl-4x4-int8, rtl-8x8-int8 and rtl-4x4-bf16.  Output: equal to the golden model (which the RTL
matches bit for bit in verify) on the same cases' inputs.  The slow test runs the Verilator build and
compares the measured cycles and output beats with the model directly.
"""
import numpy as np
import pytest

from einloom.rtl.attention import compute_cycles, tiles_per_block
from einloom.rtl.config import RtlConfig
from einloom.rtl.pe import ProcessingElement
from einloom.rtl.tb.suite import default_cases
from einloom.rtl.units import units_for
from einloom.sim.formats import golden_attention
from einloom.sim.rtl_core import CoreParams, core_tiles, run_core

CONFIGS = ["rtl-4x4-int8", "rtl-8x8-int8", "rtl-4x4-bf16"]
_CFG = {}


def _cfg(name):
    if name not in _CFG:
        _CFG[name] = RtlConfig.from_yaml(f"examples/archs/{name}.yaml")
    return _CFG[name]


def params_of(cfg) -> CoreParams:
    units = units_for(cfg.fmt)
    return CoreParams(cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim, units.exp_latency, units.recip_latency,
                      units.output_latency, ProcessingElement.MAC_LATENCY)


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
    units = units_for(cfg.fmt)
    p_dim, m_dim, causal = case["P"], case["M"], bool(case.get("causal", False))
    q, k, v = _inputs(cfg, case)
    run = run_core(params_of(cfg), p_dim, m_dim, causal, fmt=cfg.fmt, q=q, k=k, v=v)
    assert run.cycles == compute_cycles(cfg, p_dim, m_dim, causal, exp_latency=units.exp_latency,
                                        recip_latency=units.recip_latency, output_latency=units.output_latency)
    assert [len(t) for t in core_tiles(params_of(cfg), p_dim, m_dim, causal)] == \
        tiles_per_block(cfg, p_dim, m_dim, causal)
    want, _ = golden_attention(cfg.fmt, q, k, v, tile_m=cfg.rows, causal=causal)
    assert np.array_equal(run.output, want)


def test_readme_table_cycles():
    """rtl/README.md's table: M=P=64 plain / causal."""
    got = {n: (run_core(params_of(_cfg(n)), 64, 64).cycles, run_core(params_of(_cfg(n)), 64, 64, True).cycles)
           for n in CONFIGS}
    assert got == {"rtl-4x4-int8": (15601, 8521), "rtl-8x8-int8": (5081, 2981), "rtl-4x4-bf16": (13697, 7457)}


def test_phases_do_not_overlap_and_units_are_right():
    cfg = _cfg("rtl-4x4-int8")
    run = run_core(params_of(cfg), 9, 13)
    ends = [op[5] for op in run.ops]
    starts = [op[4] for op in run.ops]
    assert all(s == e for s, e in zip(starts[1:], ends[:-1]))          # one phase at a time, no gap
    units = {op[1]: op[0] for op in run.ops}
    assert units["QK"] == units["SLNV"] == "2d" and units["EXP"] == units["FINAL"] == "1d"
    assert run.tiles_run == 3 * 4 and run.tiles_skipped == 0


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
        model = run_core(params_of(cfg), case["P"], case["M"], bool(case.get("causal", False))).cycles
        if res["stalls"] == 0:
            assert res["cycles"] == model, case["name"]
        else:
            assert res["cycles"] >= model, case["name"]
