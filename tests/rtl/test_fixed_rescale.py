"""The fixed-point rescale unit's ``first`` port (rescale 0 inside the unit, so the 1D PE puts no
select in front of its multipliers): Amaranth simulation against the golden ``rescale_add``, a new
operation every cycle, at the unit's latency."""
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from einloom.rtl.config import RtlConfig
from einloom.rtl.units import units_for

ARCH = Path(__file__).resolve().parents[2] / "examples" / "archs" / "rtl-4x4-int8.yaml"


@pytest.mark.parametrize("kind", ["acc", "den"])
def test_rescale_first_is_rescale_of_zero(kind):
    fmt = RtlConfig.from_yaml(ARCH).fmt
    units = units_for(fmt)
    dut = units.rescale_unit(kind)
    assert hasattr(dut, "first") and dut.latency == units.rescale_latency
    rng = np.random.default_rng(5)
    a, pb, n = fmt.acc_bits, fmt.p.prob_bits, 300
    lo = -(1 << (a - 3)) if kind == "acc" else 0
    prm = rng.integers(0, (1 << pb) + 1, n)
    old = rng.integers(lo, 1 << (a - 3), n)
    new = rng.integers(lo, 1 << (a - 3), n)
    first = rng.integers(0, 2, n)
    first[:4] = [1, 0, 1, 1]
    want = fmt.rescale_add(prm, np.where(first == 1, 0, old), new)
    assert not np.array_equal(want, fmt.rescale_add(prm, old, new))     # the flag matters here
    got = []

    async def bench(ctx):
        for i in range(n + dut.latency):
            if i < n:
                ctx.set(dut.prm, int(prm[i]))
                ctx.set(dut.old, int(old[i]))
                ctx.set(dut.addend, int(new[i]))
                ctx.set(dut.first, int(first[i]))
            await ctx.tick()
            if i + 1 >= dut.latency:
                got.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got[:n] == [int(x) for x in want]
