"""Fixed-point datapath units: the RTL twin of :class:`einloom.sim.formats.fixed.FixedFormat`."""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.units import register
from einloom.rtl.units.base import DatapathUnits
from einloom.sim.formats.fixed import FixedFormat


class FixedExp(wiring.Component):
    """``y = exp_diff(x, m)``: base-2 range reduction, LUT for 2**-fraction, shift for the integer part.

    Pipeline (latency 3, one operation per cycle)::

        stage 1: t = ((x - m) * EXP_CONST) >> exp_shift          (register)
        stage 2: i = -t >> exp_frac_bits; LUT read at (-t) mod 2**exp_frac_bits  (sync ROM)
        stage 3: y = 0 if i > prob_bits else LUT >> i            (register)

    Limits: ``x <= m`` is the caller's contract (a masked x > m gives an unspecified y).
    """

    latency = 3

    def __init__(self, fmt: FixedFormat):
        self.fmt = fmt
        super().__init__({"x": In(signed(fmt.acc_bits)), "m": In(signed(fmt.acc_bits)),
                          "y": Out(unsigned(fmt.prob_width))})

    def elaborate(self, platform):
        f, p = self.fmt, self.fmt.p
        m = Module()
        acc = f.acc_bits
        t = Signal(signed(acc + 2 + f.exp_const.bit_length()))
        m.d.sync += t.eq(((self.x - self.m) * Const(f.exp_const, unsigned(f.exp_const.bit_length())))
                         >> f.exp_shift)
        u = Signal(unsigned(len(t)))
        m.d.comb += u.eq(-t)
        lut = memory.Memory(shape=unsigned(f.prob_width), depth=1 << p.exp_frac_bits,
                            init=[int(v) for v in f.exp_lut])
        m.submodules.lut = lut
        rd = lut.read_port()
        m.d.comb += rd.addr.eq(u[:p.exp_frac_bits])
        shift_w = max(1, p.prob_bits.bit_length())
        i = Signal(unsigned(shift_w))
        big = Signal()
        m.d.sync += [i.eq(u[p.exp_frac_bits:]), big.eq(u[p.exp_frac_bits:] > p.prob_bits)]
        m.d.sync += self.y.eq(Mux(big, 0, rd.data >> i))
        return m


class FixedReciprocal(wiring.Component):
    """``y = reciprocal(x)``: leading-one normalize, LUT seed, ``recip_nr_steps`` Newton-Raphson steps.

    Pipeline (latency ``3 + 2 * recip_nr_steps``, one operation per cycle)::

        stage 1: s = index of the leading one of x                     (register x, s)
        stage 2: mant = top recip_bits bits of (x << (acc_bits-1-s))   (register); LUT read (sync ROM)
        stage 3: y0 = LUT[idx]                                         (register)
        per NR step: e = (mant*y) >> (N-1) (register); y = (y*(2**(N+1)-e)) >> N (register)

    Output code: ``y | s << (recip_bits+1)``.  Limits: x >= 1 (x = 0 gives an unspecified y).
    """

    def __init__(self, fmt: FixedFormat):
        self.fmt = fmt
        self.latency = 3 + 2 * fmt.p.recip_nr_steps
        super().__init__({"x": In(unsigned(fmt.acc_bits)), "y": Out(unsigned(fmt.recip_width))})

    def elaborate(self, platform):
        f, p = self.fmt, self.fmt.p
        n, lb, acc = p.recip_bits, p.recip_lut_bits, f.acc_bits
        m = Module()
        s_comb = Signal(unsigned(f.shift_bits))
        for bit in range(acc):
            with m.If(self.x[bit]):
                m.d.comb += s_comb.eq(bit)
        x1 = Signal(unsigned(acc))
        s1 = Signal(unsigned(f.shift_bits))
        m.d.sync += [x1.eq(self.x), s1.eq(s_comb)]
        normalized = Signal(unsigned(acc))
        m.d.comb += normalized.eq(x1 << ((acc - 1) - s1).as_unsigned())
        mant2 = Signal(unsigned(n))
        s2 = Signal(unsigned(f.shift_bits))
        m.d.sync += [mant2.eq(normalized[acc - n:]), s2.eq(s1)]
        lut = memory.Memory(shape=unsigned(n + 1), depth=1 << lb, init=[int(v) for v in f.recip_lut])
        m.submodules.lut = lut
        rd = lut.read_port()
        m.d.comb += rd.addr.eq(mant2[n - 1 - lb:n - 1])
        mant, s = Signal(unsigned(n)), Signal(unsigned(f.shift_bits))
        y = Signal(unsigned(n + 1))
        m.d.sync += [mant.eq(mant2), s.eq(s2)]
        m.d.comb += y.eq(rd.data)
        for step in range(p.recip_nr_steps):
            e = Signal(unsigned(n + 2), name=f"e{step}")
            y_e, mant_e, s_e = (Signal.like(y, name=f"y_e{step}"), Signal.like(mant, name=f"mant_e{step}"),
                                Signal.like(s, name=f"s_e{step}"))
            m.d.sync += [e.eq((mant * y) >> (n - 1)), y_e.eq(y), mant_e.eq(mant), s_e.eq(s)]
            y_n, mant_n, s_n = (Signal.like(y, name=f"y_n{step}"), Signal.like(mant, name=f"mant_n{step}"),
                                Signal.like(s, name=f"s_n{step}"))
            m.d.sync += [y_n.eq((y_e * ((1 << (n + 1)) - e)) >> n), mant_n.eq(mant_e), s_n.eq(s_e)]
            y, mant, s = y_n, mant_n, s_n
        m.d.comb += self.y.eq(y | (s << (n + 1)))
        # stage 3 register: y0 comes from the sync ROM (one register); with 0 NR steps add nothing
        return m


class FixedUnits(DatapathUnits):
    """Fixed-point arithmetic (two's complement); shapes follow the table in sim/formats/fixed.py."""

    def __init__(self, fmt: FixedFormat):
        self.fmt = fmt
        p = fmt.p
        self.input_shape = signed(p.input_bits)
        self.mult_shape = signed(max(p.input_bits, fmt.prob_width + 1))
        self.acc_shape = signed(fmt.acc_bits)
        self.prob_shape = unsigned(fmt.prob_width)
        self.den_shape = unsigned(fmt.acc_bits)
        self.recip_shape = unsigned(fmt.recip_width)
        self.output_shape = signed(p.output_bits)

    def input_to_mult(self, m, x):
        return x.as_signed() if hasattr(x, "as_signed") else x

    def prob_to_mult(self, m, w):
        return w.as_unsigned()

    def mac(self, m, base, a, b):
        return base + a * b

    def greater(self, m, a, b):
        return a > b

    def prob_add(self, m, den, prob):
        return den + prob

    def rescale_add(self, m, prm, old, new):
        return ((prm * old) >> self.fmt.p.prob_bits) + new

    def output(self, m, rnv, recip):
        f, p = self.fmt, self.fmt.p
        n = p.recip_bits
        y = recip[:n + 1]
        s = recip[n + 1:]
        const = n + p.frac_bits - p.output_frac_bits        # >= 1 - prob_bits; s >= prob_bits
        prod = Signal(signed(f.acc_bits + n + 2))
        m.d.comb += prod.eq(rnv * y)
        if const >= 0:
            shifted = (prod >> const) >> s
        else:
            shifted = (prod << (-const)) >> s
        lo, hi = -(1 << (p.output_bits - 1)), (1 << (p.output_bits - 1)) - 1
        sh = Signal(signed(len(prod) + max(0, -const)))
        m.d.comb += sh.eq(shifted)
        return Mux(sh > hi, hi, Mux(sh < lo, lo, sh))

    @property
    def exp_latency(self) -> int:
        return FixedExp.latency

    @property
    def recip_latency(self) -> int:
        return 3 + 2 * self.fmt.p.recip_nr_steps

    def exp_unit(self):
        return FixedExp(self.fmt)

    def recip_unit(self):
        return FixedReciprocal(self.fmt)


register("fixed", FixedUnits)
