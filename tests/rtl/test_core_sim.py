"""The overlapped core in Amaranth's simulator (fast, no Verilator): bit-exact with the golden model and
cycle-exact with the cycle model (einloom.sim.rtl_core) on small arrays, with ragged tiles, the causal
mask (skipped tiles, P < M, P > M with empty blocks), random input gaps and output backpressure."""
import numpy as np
import pytest
from core_sim import run_core_sim
from rtl_archs import shaped

from einloom.rtl.attention import compute_cycles, core_params
from einloom.rtl.config import RtlConfig
from einloom.sim.formats import golden_attention
from einloom.sim.rtl_core import run_core

_CFGS = {}


def _cfg(tmp_path_factory, rows, cols, e, f):
    key = (rows, cols, e, f)
    if key not in _CFGS:
        path = tmp_path_factory.mktemp("arch") / f"rtl-{rows}x{cols}.yaml"
        path.write_text(shaped(rows, cols, e, f, max_keys=32, max_queries=32, name=f"rtl-{rows}x{cols}-small"))
        _CFGS[key] = RtlConfig.from_yaml(path)
    return _CFGS[key]


def _inputs(cfg, p, m, seed, sd=1.0):
    rng = np.random.default_rng(seed)
    fmt = cfg.fmt
    return (fmt.quantize(rng.normal(0, sd, (cfg.head_dim, p))), fmt.quantize(rng.normal(0, sd, (cfg.head_dim, m))),
            fmt.quantize(rng.normal(0, 1.0, (cfg.value_dim, m))))


CASES = [
    # rows, cols, E, F, P, M, causal, gaps, backpressure
    (2, 2, 4, 4, 5, 7, False, 0.0, 0.0),
    (2, 2, 4, 4, 7, 9, True, 0.0, 0.0),
    (2, 2, 4, 4, 9, 3, True, 0.0, 0.0),        # P > M: a block sees no key (outputs 0, no tile)
    (3, 2, 4, 5, 5, 8, False, 0.3, 0.5),       # rows != cols, F != E, input gaps, output stalls
    (2, 3, 3, 4, 7, 9, True, 0.2, 0.6),
    (2, 4, 2, 2, 6, 5, False, 0.0, 0.0),       # F + R small against C: the old core refused this shape
    (1, 4, 1, 1, 5, 3, True, 0.0, 0.3),        # a single row, E = F = 1
    (4, 2, 2, 2, 3, 13, False, 0.0, 0.0),      # short products: the slot period is the 1D array's
]


@pytest.mark.parametrize("rows,cols,e,f,p,m,causal,gaps,bp", CASES)
def test_core_bit_and_cycle_exact(tmp_path_factory, rows, cols, e, f, p, m, causal, gaps, bp):
    cfg = _cfg(tmp_path_factory, rows, cols, e, f)
    q, k, v = _inputs(cfg, p, m, seed=rows * 100 + p * 10 + m)
    got, cycles, stalls = run_core_sim(cfg, q, k, v, causal, gaps=gaps, backpressure=bp, seed=p + m)
    want, _ = golden_attention(cfg.fmt, q, k, v, tile_m=rows, causal=causal)
    assert np.array_equal(got, want), f"got\n{got}\nwant\n{want}"
    expected = compute_cycles(cfg, p, m, causal)
    assert expected == run_core(core_params(cfg), p, m, causal).cycles
    if stalls == 0:
        assert cycles == expected
    else:
        assert cycles >= expected


def test_a_deeper_2d_multiply_stays_bit_and_cycle_exact(tmp_path):
    """The architecture's mac latency 5 (three fabric registers behind the DSP's two): the products
    reach the accumulators two cycles later, and the controller's and the model's schedules move with
    them (a core built one stage off would drain wrong or late)."""
    path = tmp_path / "rtl-2x2-deep.yaml"
    path.write_text(shaped(2, 2, 4, 4, max_keys=32, max_queries=32, name="rtl-2x2-deep").replace(
        "mac: {cycles: 1, latency: 3}", "mac: {cycles: 1, latency: 5}"))
    cfg = RtlConfig.from_yaml(path)
    assert core_params(cfg).mac_latency == 5
    for causal, bp in ((False, 0.0), (True, 0.4)):
        q, k, v = _inputs(cfg, 5, 7, seed=11 + causal)
        got, cycles, stalls = run_core_sim(cfg, q, k, v, causal, backpressure=bp, seed=3)
        want, _ = golden_attention(cfg.fmt, q, k, v, tile_m=2, causal=causal)
        assert np.array_equal(got, want), f"got\n{got}\nwant\n{want}"
        expected = compute_cycles(cfg, 5, 7, causal)
        assert expected == run_core(core_params(cfg), 5, 7, causal).cycles
        assert cycles == expected if stalls == 0 else cycles >= expected


def test_wrong_golden_order_is_caught(tmp_path_factory):
    """The comparison can fail: the same inputs against a golden model with another tile size differ."""
    cfg = _cfg(tmp_path_factory, 2, 2, 4, 4)
    q, k, v = _inputs(cfg, 5, 7, seed=3, sd=3.0)
    got, _, _ = run_core_sim(cfg, q, k, v)
    other, _ = golden_attention(cfg.fmt, q, k, v, tile_m=1)
    assert not np.array_equal(got, other)


WINDOW_CASES = [
    # rows, cols, E, F, P, M, window, sinks, gaps, backpressure: tiles skipped at both ends of the band
    (2, 2, 4, 4, 9, 13, 3, 0, 0.0, 0.0),
    (2, 2, 4, 4, 9, 13, 4, 2, 0.0, 0.0),       # sinks: the first tile, a gap, then the band
    (3, 2, 4, 4, 7, 16, 5, 1, 0.2, 0.4),       # ragged tiles (R = 3), P < M
    (2, 3, 3, 4, 8, 5, 2, 1, 0.0, 0.0),        # P > M: empty blocks, queries with no key
    (2, 2, 4, 4, 1, 15, 4, 3, 0.0, 0.0),       # decode: one query, band and sinks far apart
]


@pytest.mark.parametrize("rows,cols,e,f,p,m,window,sinks,gaps,bp", WINDOW_CASES)
def test_window_and_sinks_bit_and_cycle_exact(tmp_path_factory, rows, cols, e, f, p, m, window, sinks, gaps, bp):
    from einloom.rtl.tb.reference import golden_masked
    cfg = _cfg(tmp_path_factory, rows, cols, e, f)
    q, k, v = _inputs(cfg, p, m, seed=7 * p + m + window, sd=1.5)
    got, cycles, stalls = run_core_sim(cfg, q, k, v, True, window=window, sinks=sinks, gaps=gaps,
                                       backpressure=bp, seed=p)
    want = golden_masked(cfg.fmt, q, k, v, tile_m=rows, causal=True, window=window, sinks=sinks)
    assert np.array_equal(got, want), f"got\n{got}\nwant\n{want}"
    model = run_core(core_params(cfg), p, m, True, window=window, sinks=sinks, fmt=cfg.fmt, q=q, k=k, v=v)
    assert np.array_equal(model.output, want)
    assert model.tiles_skipped > 0
    if stalls == 0:
        assert cycles == model.cycles
    else:
        assert cycles >= model.cycles


def test_gqa_runs_as_more_query_columns_per_kv_head(tmp_path_factory):
    """GQA (the library's gqa: J K/V heads, G query heads each): core_form folds J into runs and G into
    query columns; the core run on each K/V head with its G x P queries (group-major) matches the float64
    gqa cascade within the format's bound and the golden model bit for bit."""
    from einloom.einsum import load_cascade
    from einloom.einsum.interpret import run_cascade
    from einloom.rtl.core_form import match_core
    from einloom.sim.formats import golden_attention
    cascade = load_cascade("gqa")
    roles = match_core(cascade, scale=True)
    assert (roles.heads, roles.query_groups) == (("J",), ("G",))
    cfg = _cfg(tmp_path_factory, 2, 2, 4, 4)
    fmt = cfg.fmt
    j_dim, g_dim, p_dim, m_dim = 2, 3, 3, 5
    rng = np.random.default_rng(17)
    q = fmt.quantize(rng.normal(0, 1.0, (j_dim, g_dim, 4, p_dim)))
    k = fmt.quantize(rng.normal(0, 1.0, (j_dim, 4, m_dim)))
    v = fmt.quantize(rng.normal(0, 1.0, (j_dim, 4, m_dim)))
    ref = run_cascade(cascade, {"Q": fmt.dequantize(q), "K": fmt.dequantize(k), "V": fmt.dequantize(v)},
                      {"J": j_dim, "G": g_dim, "P": p_dim, "M": m_dim, "E": 4, "F": 4, "M0": 2}).outputs["AV"]
    for j in range(j_dim):
        qj = q[j].transpose(1, 0, 2).reshape(4, g_dim * p_dim)         # column g*P + p
        got, cycles, _ = run_core_sim(cfg, qj, k[j], v[j])
        want, _ = golden_attention(fmt, qj, k[j], v[j], tile_m=2)
        assert np.array_equal(got, want)
        assert cycles == run_core(core_params(cfg), g_dim * p_dim, m_dim).cycles
        av = fmt.dequantize_output(got) if hasattr(fmt, "dequantize_output") else got * 2.0 ** -fmt.p.output_frac_bits
        err = np.abs(av.reshape(4, g_dim, p_dim).transpose(1, 0, 2) - ref[j]).max()
        assert err <= fmt.error_bound(np.abs(fmt.dequantize(v)).max()), err
