"""Every latency setting of the float units (Amaranth's simulator): same results, delayed by ``latency``.

The attention datapath uses the combinational (``latency=0``) adders, multipliers and converters inside
its PEs; the Verilator tests (test_float_units.py) cover the default, fully pipelined settings.
"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from einloom.rtl.float import Bf16Mul, Fp32Add, Fp32Exp, Fp32Max, Fp32Mul, Fp32Recip, Fp32ToBf16
from einloom.sim.formats import bf16 as B

RNG = np.random.default_rng(5)
N = 120


def fp32_vectors(n):
    s = RNG.integers(0, 2, n, dtype=np.uint32) << 31
    e = RNG.integers(100, 160, n, dtype=np.uint32) << 23
    return s | e | RNG.integers(0, 1 << 23, n, dtype=np.uint32)


CASES = {
    "Fp32Add": (Fp32Add, B.fp32_add, 2, 32),
    "Fp32Mul": (Fp32Mul, B.fp32_mul, 2, 32),
    "Bf16Mul": (Bf16Mul, B.bf16_mul, 2, 16),
    "Fp32ToBf16": (Fp32ToBf16, B.fp32_to_bf16, 1, 32),
    "Fp32Max": (Fp32Max, B.fp32_max, 2, 32),
    "Fp32Exp": (Fp32Exp, B.fp32_exp, 1, 32),
    "Fp32Recip": (Fp32Recip, B.fp32_recip, 1, 32),
}


def run(unit, ins):
    got = []
    lat = unit.latency
    ports = [unit.a] + ([unit.b] if len(ins) == 2 else [])

    async def bench(ctx):
        for i in range(len(ins[0]) + lat):
            if i < len(ins[0]):
                for p, col in zip(ports, ins):
                    ctx.set(p, int(col[i]))
            if lat == 0:
                await ctx.delay(1e-9)
                got.append(ctx.get(unit.result))
            else:
                await ctx.tick()
                if i >= lat - 1 and len(got) < len(ins[0]):
                    got.append(ctx.get(unit.result))

    sim = Simulator(unit)
    if lat:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got[:len(ins[0])], dtype=np.int64)


@pytest.mark.parametrize("name", list(CASES))
def test_every_latency_matches_golden(name):
    cls, golden, n_in, bits = CASES[name]
    ins = [fp32_vectors(N) for _ in range(n_in)]
    if bits == 16:
        ins = [B.fp32_to_bf16(x) for x in ins]
    want = np.asarray(golden(*ins)).astype(np.int64)
    lats = sorted({0, 1, cls.BOUNDARIES // 2, cls.BOUNDARIES})
    for lat in lats:
        unit = cls(latency=lat)
        assert unit.latency == lat
        np.testing.assert_array_equal(run(unit, ins), want, err_msg=f"{name} latency {lat}")


def test_latency_out_of_range_is_rejected_with_the_range():
    with pytest.raises(ValueError, match=r"latency must be 0\.\.4, not 5"):
        Fp32Add(latency=5)
    with pytest.raises(ValueError, match=r"latency must be 0\.\.8, not -1"):
        Fp32Exp(latency=-1)


@pytest.mark.parametrize("scale", [True, False])
def test_bf16_units_latencies_match_their_components(scale):
    from amaranth.hdl import Fragment

    from einloom.rtl.units import units_for
    units = units_for(B.Bf16Format(head_dim=8, scale=scale))
    exp, recip = units.exp_unit(), units.recip_unit()
    assert (units.exp_latency, units.recip_latency) == (exp.latency, recip.latency) == (15 if scale else 12, 6)
    Fragment.get(exp, None), Fragment.get(recip, None)      # they elaborate
