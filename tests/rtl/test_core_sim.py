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
