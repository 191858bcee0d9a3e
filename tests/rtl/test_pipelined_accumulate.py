"""The pipelined fp32 accumulate inside the 2D array and the bf16 core (Amaranth's simulator, no
Verilator): the PEs' interleaved partial sums combined at the array's bottom are the golden ``dot``'s
order (and not the single-cycle order), the weight-stationary psum chain with V skewed L per row is
the golden column MAC, ``Fp32PartialSum`` is the golden combine, and the bf16 core at acc_latency 4
is bit- and cycle-exact against the golden cascade and the cycle model."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from core_sim import run_core_sim

from einloom.rtl.attention import compute_cycles, core_params
from einloom.rtl.config import RtlConfig
from einloom.rtl.float.accumulate import Fp32PartialSum
from einloom.rtl.mesh import SystolicArray
from einloom.rtl.units import units_for
from einloom.sim.formats import golden_attention
from einloom.sim.formats.arith.fp32 import fp32_sum_interleaved
from einloom.sim.formats.bf16 import Bf16Format
from einloom.sim.rtl_core import run_core

from rtl_archs import ARCHS

BF16_ARCH = ARCHS / "rtl-4x4-bf16.yaml"


def _wide(rng, shape, fmt):
    """bf16 values over a wide exponent range: their products' sums round, so the order shows."""
    return fmt.quantize(rng.normal(0, 1, shape) * 2.0 ** rng.integers(-9, 3, shape))


def _run_array(fmt: Bf16Format, rows: int, cols: int, k: np.ndarray, q: np.ndarray, w: np.ndarray,
               v: np.ndarray):
    """One QK tile (K [E, rows], Q [E, cols]) output-stationary, then the weights ``w`` [rows, cols]
    loaded into the shadow registers and one V tile (V [F, rows]) weight-stationary.  Returns the
    drained QK [rows, cols] (bottom row first, as the 1D array takes it) and the column sums [F, cols]."""
    units = units_for(fmt)
    dut = SystolicArray(units, rows, cols)
    e_dim, f_dim = k.shape[0], v.shape[0]
    lat = dut.acc_latency
    drain_at = dut.drain_offset(e_dim)                 # column 0: bottom row's combined QK in shd_out
    shift_at = drain_at - dut.combine_latency          # the drain registers start shifting
    v_start = drain_at + rows + 4                      # the WS tile, well after the drain
    horizon = v_start + f_dim + dut.ws_latency + cols + 4
    qk = np.zeros((rows, cols), dtype=np.int64)
    psum = np.zeros((f_dim, cols), dtype=np.int64)

    async def bench(ctx):
        for t in range(horizon):
            for r in range(rows):
                tag = {"os": 0, "ws": 0, "first": 0, "last": 0}
                a = 0
                e = t - r
                f = t - v_start - lat * r
                if 0 <= e < e_dim:
                    tag.update(os=1, first=int(e == 0), last=int(e == e_dim - 1))
                    a = int(k[e, r])
                elif 0 <= f < f_dim:
                    tag.update(ws=1, first=int(f == 0))
                    a = int(v[f, r])
                ctx.set(dut.a_in[r], a)
                ctx.set(dut.tag_in[r], tag)
            for c in range(cols):
                e = t - c
                ctx.set(dut.b_in[c], int(q[e, c]) if 0 <= e < e_dim else 0)
                ctx.set(dut.drain[c], int(shift_at + c <= t < shift_at + c + rows - 1))
                # shadow weights: row rows-1's weight enters first, the column's shift runs `rows` cycles
                j = t - (drain_at + 1) - c
                ctx.set(dut.w_shift[c], int(0 <= j < rows))
                ctx.set(dut.w_in[c], int(w[rows - 1 - j, c]) if 0 <= j < rows else 0)
                i = t - drain_at - c
                if 0 <= i < rows:
                    qk[rows - 1 - i, c] = ctx.get(dut.shd_out[c])
                f = t - v_start - dut.ws_latency - c
                if 0 <= f < f_dim:
                    psum[f, c] = ctx.get(dut.psum_out[c])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return qk, psum


@pytest.mark.parametrize("lat,rows,cols,e_dim,seed", [(4, 4, 3, 8, 0), (2, 3, 2, 6, 5), (3, 2, 2, 9, 2)])
def test_array_partial_sums_and_psum_chain_are_the_golden_order(lat, rows, cols, e_dim, seed):
    fmt = Bf16Format(head_dim=e_dim, acc_latency=lat)
    single = Bf16Format(head_dim=e_dim, acc_latency=1)
    rng = np.random.default_rng(seed)
    k, q = _wide(rng, (e_dim, rows), fmt), _wide(rng, (e_dim, cols), fmt)
    w = fmt.quantize(rng.random((rows, cols))).astype(np.int64) << 16      # fp32 weights (probabilities)
    v = _wide(rng, (5, rows), fmt)
    qk, psum = _run_array(fmt, rows, cols, k, q, w, v)
    want = fmt.dot(q, k.T)                                                  # [rows, cols]
    assert np.array_equal(qk, want), f"QK\n{qk}\nwant\n{want}"
    assert not np.array_equal(single.dot(q, k.T), want), "inputs too tame: both orders agree"
    col = fmt.acc_zero((5, cols))
    for r in range(rows):
        col = fmt.column_mac(col, w[r][None, :], v[:, r][:, None])
    assert np.array_equal(psum, col), f"psum\n{psum}\nwant\n{col}"


@pytest.mark.parametrize("lat", [2, 3, 4])
def test_partial_sum_unit_is_the_golden_combine(lat):
    """Fp32PartialSum, one sum per cycle: partials that each hold one term (E = L) combine exactly as
    ``fp32_sum_interleaved`` (its -0 and subnormal-free partials from +0 included)."""
    rng = np.random.default_rng(lat)
    vals = rng.normal(0, 1, (20, lat)) * 2.0 ** rng.integers(-30, 30, (20, lat))
    parts = vals.astype(np.float32).view(np.uint32)
    parts[0, 0] = 0x80000000                     # -0 reads as +0
    parts[1, :] = 0x80000000
    dut = Fp32PartialSum(latency=lat)
    got = []

    async def bench(ctx):
        for t in range(len(parts) + dut.latency + 1):
            if t < len(parts):
                for j in range(lat):
                    ctx.set(dut.parts[j], int(parts[t, j]))
            if t >= dut.latency and t - dut.latency < len(parts):
                got.append(ctx.get(dut.sum))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = [int(fp32_sum_interleaved(p, lat)) for p in parts]
    assert got == want


BF16_CASES = [
    # P, M, causal, gaps, backpressure
    (5, 7, False, 0.0, 0.0),
    (7, 9, True, 0.2, 0.4),        # causal, ragged, input gaps and output stalls
    (9, 3, True, 0.0, 0.0),        # P > M: a block sees no key
]


@pytest.mark.parametrize("p,m,causal,gaps,bp", BF16_CASES)
def test_bf16_core_with_pipelined_accumulate_is_bit_and_cycle_exact(p, m, causal, gaps, bp):
    cfg = RtlConfig.from_yaml(BF16_ARCH)
    assert cfg.fmt.acc_latency == 4
    rng = np.random.default_rng(p * 10 + m)
    q, k = _wide(rng, (cfg.head_dim, p), cfg.fmt), _wide(rng, (cfg.head_dim, m), cfg.fmt)
    v = cfg.fmt.quantize(rng.normal(0, 1, (cfg.value_dim, m)))
    got, cycles, stalls = run_core_sim(cfg, q, k, v, causal, gaps=gaps, backpressure=bp, seed=p + m)
    want, _ = golden_attention(cfg.fmt, q, k, v, tile_m=cfg.rows, causal=causal)
    assert np.array_equal(got, want), f"got\n{got}\nwant\n{want}"
    expected = compute_cycles(cfg, p, m, causal)
    assert expected == run_core(core_params(cfg), p, m, causal).cycles
    assert cycles == expected if stalls == 0 else cycles >= expected
