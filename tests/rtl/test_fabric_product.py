"""``fabric_product`` (shift-and-add in logic) is the exact product, and ``Fp32Mul`` spends one hard
multiplier: its 17 x 17 partial product; the three with a 7-bit piece are logic."""
import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from einloom.rtl.float import Fp32Mul
from einloom.rtl.float.pipeline import fabric_product, partial_products
from einloom.rtl.generate import to_verilog


@pytest.mark.parametrize("wx,wy", [(17, 7), (7, 7), (5, 3), (9, 1)])
def test_fabric_product_is_the_product(wx, wy):
    x, y = Signal(wx), Signal(wy)
    out = Signal(wx + wy)
    m = Module()
    m.d.comb += out.eq(fabric_product(x, y))
    rng = np.random.default_rng(wx * 100 + wy)
    xs = [0, (1 << wx) - 1] + [int(v) for v in rng.integers(0, 1 << wx, 150)]
    ys = [0, (1 << wy) - 1] + [int(v) for v in rng.integers(0, 1 << wy, 150)]
    bad = []

    async def bench(ctx):
        for a, b in zip(xs, ys):
            ctx.set(x, a)
            ctx.set(y, b)
            await ctx.delay(1e-9)
            if ctx.get(out) != a * b:
                bad.append((a, b, ctx.get(out)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad
    assert len(fabric_product(x, y)) == wx + wy


def test_partial_products_put_the_narrow_ones_in_logic():
    a, b = Signal(24), Signal(24)
    pps = partial_products(a, b, fabric_width=7)
    # the 17 x 17 product stays a multiply (Amaranth's Operator "*"); the others are not
    ops = {name: getattr(v, "operator", None) for name, v in pps.items()}
    assert ops["pp0_0"] == "*"
    assert all(op != "*" for name, op in ops.items() if name != "pp0_0"), ops
    assert all(op == "*" for op in (getattr(v, "operator", None) for v in partial_products(a, b).values()))


@pytest.mark.slow
def test_fp32_mul_takes_one_mult18x18d(tmp_path):
    from yosys_netlist import synth_netlist
    module = synth_netlist(tmp_path, to_verilog(Fp32Mul(), "fp32mul"), "fp32mul")
    assert len([c for c in module["cells"].values() if c["type"] == "MULT18X18D"]) == 1
