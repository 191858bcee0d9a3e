"""The lanes' sigmoid and log units (rtl/lanes/fn_units.py) bit-exact with their format models
(einloom.sim.formats.arith.fp32_fn) in Amaranth's simulator: edge cases and random inputs, one input
per cycle through the pipeline."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from einloom.rtl.lanes.fn_units import LogUnit, SigmoidUnit
from einloom.sim.formats.arith.fp32 import fp32_bits
from einloom.sim.formats.arith.fp32_fn import fp32_log, fp32_sigmoid

EDGES = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x3F800000, 0xBF800000, 0x7F800000,
         0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F7FFFFF, 0x3F800001, 0x3F7F8000,
         0x3F808000, 0x3F807FFF, 0x3FFFFFFF, 0x40000000, 0x42B00000, 0xC2B00000, 0x42AE0000, 0xC2AE0000,
         0x3F000000, 0x3FB504F3, 0x3F3504F3, 0x33800000, 0xB3800000, 0x4C000000]


def run_unit(unit, inputs: np.ndarray) -> np.ndarray:
    """Stream ``inputs`` into ``unit.a`` one per cycle; collect ``result`` ``latency`` cycles later."""
    out: list[int] = []
    lat = unit.latency
    xs = [int(x) for x in inputs]

    async def bench(ctx):
        for t in range(len(xs) + lat):
            if t < len(xs):
                ctx.set(unit.a, xs[t])
            await ctx.tick()
            if t + 1 - lat >= 0 and len(out) < len(xs):
                out.append(ctx.get(unit.result))

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.asarray(out, dtype=np.uint32)


def _inputs(rng, n: int, lo: float, hi: float) -> np.ndarray:
    rand = fp32_bits(rng.uniform(lo, hi, n))
    raw = rng.integers(0, 1 << 32, n // 2, dtype=np.int64).astype(np.uint32)   # any bit pattern
    return np.concatenate([np.asarray(EDGES, dtype=np.uint32), rand, raw])


@pytest.mark.parametrize("unit,model,lo,hi", [(SigmoidUnit, fp32_sigmoid, -90.0, 90.0),
                                              (LogUnit, fp32_log, 0.0, 1e4)])
def test_unit_bit_exact_with_its_model(unit, model, lo, hi):
    rng = np.random.default_rng(11)
    xs = _inputs(rng, 600, lo, hi)
    if unit is LogUnit:                       # next to 1, where the table's ends take over
        xs = np.concatenate([xs, np.arange(0x3F7F0000, 0x3F810000, 257, dtype=np.uint32)])
    got = run_unit(unit(), xs)
    want = model(xs)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, [(hex(xs[i]), hex(got[i]), hex(want[i])) for i in bad[:5]]


def test_unit_latencies_match_the_schedule():
    from einloom.rtl.lanes.units import schedule_latency
    lat = schedule_latency()
    assert SigmoidUnit.latency == 18 and lat["fn:sigmoid"] == 18 + 2      # exp 8 + add 4 + recip 6
    assert LogUnit.latency == 6 and lat["log"] == 6 + 2                   # log_q60's 5 stages + round
    unit = SigmoidUnit()                         # the instance's parts add up to the class figure
    assert unit.exp.latency + unit.add.latency + unit.recip.latency == SigmoidUnit.latency
    unit._MustUse__silence = True


@pytest.mark.parametrize("width", [5, 8, 62])
def test_leading_one_is_the_highest_set_bit(width):
    """The balanced select tree the log and reciprocal units normalize with: every single bit, random
    values and zero (index 0)."""
    from amaranth.hdl import Module, Signal

    from einloom.rtl.lanes.fn_units import leading_one
    m = Module()
    x = Signal(width)
    out = leading_one(m, x, "lead")
    rng = np.random.default_rng(width)
    values = [0] + [1 << k for k in range(width)] + [int(v) for v in rng.integers(1, 1 << min(width, 62), 200)]
    got = []

    async def bench(ctx):
        for v in values:
            ctx.set(x, v)
            got.append(ctx.get(out))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [max(v.bit_length() - 1, 0) for v in values]
