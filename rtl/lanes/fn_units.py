"""The lanes' sigmoid and natural-log units (bf16 format: fp32 values), bit-exact with
:mod:`einloom.sim.formats.arith.fp32_fn` (``fp32_sigmoid``, ``fp32_log``).

Both have the lane unit interface of :mod:`.units` (``a``, ``b``, ``mode`` in, ``result`` ``latency``
cycles later, one operation per cycle); ``b`` and ``mode`` are unused.

* :class:`SigmoidUnit`: the sign flip of ``a``, then ``Fp32Exp``, ``Fp32Add`` (1.0 + e**-a) and
  ``Fp32Recip`` in series: latency 8 + 4 + 6 = 18.  Error <= ``SIGMOID_MAX_ULP`` (2.25) fp32 ulps.
* :class:`LogUnit`: the table-driven datapath of ``fp32_log`` (a 256-entry table of ``RI[i]`` and
  ``-ln RI[i]``, the series ``r * (1 - r/2 + r**2/3)``, ``E * ln2`` added in 60 fraction bits, one
  rounding): six registered stages (table and ``r``; ``r**2``; ``Q``; ``r * Q`` and ``E * ln2``; the
  sum; normalize and round), at most one multiplier product in series per stage.  Error
  <= ``LOG_MAX_ULP`` (0.75) fp32 ulps.  Multipliers: 24x15 (``m * RI``), 31x31 (``r**2``), 26x23
  (``/3``), 31x42 (``r * Q``), 9x60 (``E * ln2``).
"""
from __future__ import annotations

import inspect

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float import Fp32Add, Fp32Exp, Fp32Recip
from einloom.sim.formats.arith.fp32 import FP32_NAN, FP32_NEG_INF, FP32_ONE, FP32_POS_INF
from einloom.sim.formats.arith.fp32_fn import LOG_FRAC, LOG_LN2_Q60, LOG_RECIP_TABLE, LOG_TABLE, LOG_THIRD_Q24


def _signed(x):
    """An unsigned value as a signed one of one more bit (same number)."""
    return Cat(x, Const(0, 1)).as_signed()


class _FnUnit(wiring.Component):
    latency: int = 0

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "mode": In(1), "result": Out(32)})


def _default_latency(cls) -> int:
    return inspect.signature(cls.__init__).parameters["latency"].default


class SigmoidUnit(_FnUnit):
    """``1 / (1 + e**-a)`` as ``fp32_sigmoid``: exp, add and reciprocal units in series."""

    latency = _default_latency(Fp32Exp) + _default_latency(Fp32Add) + _default_latency(Fp32Recip)

    def __init__(self):
        super().__init__()
        self.exp, self.add, self.recip = Fp32Exp(), Fp32Add(), Fp32Recip()

    def elaborate(self, platform):
        m = Module()
        m.submodules.exp, m.submodules.add, m.submodules.recip = self.exp, self.add, self.recip
        m.d.comb += [self.exp.a.eq(self.a ^ 0x80000000), self.add.a.eq(FP32_ONE), self.add.b.eq(self.exp.result),
                     self.recip.a.eq(self.add.result), self.result.eq(self.recip.result)]
        return m


def leading_one(m: Module, x, name: str) -> Signal:
    """The index of ``x``'s highest set bit (0 when ``x`` is 0): ``x`` padded to a power-of-two width
    ``w``, :func:`~einloom.rtl.float.add.leading_zeros`' balanced tree, the index ``w - 1 - count`` =
    the count's complement (a loop of ``m.If`` per bit builds a priority chain as deep as the width)."""
    from einloom.rtl.float.add import leading_zeros
    x = Value.cast(x)
    width = 1 << max(1, (x.shape().width - 1).bit_length())
    zero, count = leading_zeros(m, Cat(x, Const(0, width - x.shape().width)), f"{name}_lz")
    out = Signal(range(width), name=name)
    m.d.comb += out.eq(Mux(zero, 0, ~count))
    return out


def _reg(m: Module, x, name: str, shape=None):
    q = Signal(shape if shape is not None else x.shape(), name=name, reset_less=True)
    m.d.sync += q.eq(x)
    return q


#: register stages of :func:`log_q60_stages`
LOG_Q60_STAGES = 5


def log_q60_stages(m: Module, big_e, frac, side: list, prefix: str = "") -> tuple:
    """``log_q60(big_e, frac)`` (:mod:`einloom.sim.formats.arith.fp32_fn`) as :data:`LOG_Q60_STAGES`
    registered stages, at most one multiplier product in series per stage: (1) the table and ``r``;
    (2) ``r**2``; (3) ``Q = 1 - r/2 + r**2/3``; (4) ``r * Q`` and ``E * ln2``; (5) their sum with the
    table's ``-ln RI`` (``L``, 60 fraction bits).  Returns ``(L, side)``: ``L`` a signed 72-bit register
    five cycles after ``big_e`` (signed, at most 10 bits) and ``frac`` (23 bits), ``side`` the given
    signals delayed as much.  Shared by the fp32 :class:`LogUnit` and the fixed-point
    ``FixedLogUnit`` (:mod:`.fixed_units`)."""
    def reg(x, name, shape=None):
        return _reg(m, x, prefix + name, shape)

    def delay(xs, stage):
        return [reg(x, f"side{k}_s{stage}") for k, x in enumerate(xs)]

    # ---- stage 1: table, r = m * RI - 1 (37 fraction bits)
    i = frac[15:23]
    mant = Cat(frac, Const(1, 1))
    ri = Array([Const(v, 15) for v in LOG_RECIP_TABLE])[i]
    tv = Array([Const(v, 60) for v in LOG_TABLE])[i]
    r = Signal(signed(40), name=prefix + "r")
    e_adj = Signal(signed(11), name=prefix + "big_e")
    m.d.comb += e_adj.eq(big_e)
    with m.If(i == 0):
        m.d.comb += r.eq((_signed(mant) - (1 << 23)) << 14)
    with m.Elif(i == 255):
        m.d.comb += [r.eq((_signed(mant) - (1 << 24)) << 13), e_adj.eq(big_e + 1)]
    with m.Else():
        m.d.comb += r.eq(_signed(mant * ri) - (1 << 37))
    r1, e1, t1 = reg(r, "r_s1"), reg(e_adj, "e_s1"), reg(Mux((i == 0) | (i == 255), 0, tv), "t_s1", 60)
    side = delay(side, 1)

    # ---- stage 2: r**2 (34 fraction bits dropped)
    r2 = Signal(32, name=prefix + "r2")
    m.d.comb += r2.eq((r1 * r1) >> 34)
    r2q, rq, e2, t2 = reg(r2, "r2_s2"), reg(r1, "r_s2"), reg(e1, "e_s2"), reg(t1, "t_s2")
    side = delay(side, 2)

    # ---- stage 3: Q = 1 - r/2 + r**2/3 (40 fraction bits)
    q = Signal(signed(44), name=prefix + "q")
    m.d.comb += q.eq((1 << 40) - (rq << 2) + ((r2q * LOG_THIRD_Q24) >> 24))
    r3, q3, e3, t3 = reg(rq, "r_s3"), reg(q, "q_s3"), reg(e2, "e_s3"), reg(t2, "t_s3")
    side = delay(side, 3)

    # ---- stage 4: r * Q >> 17 and E * ln2 (60 fraction bits), apart
    p = Signal(signed(64), name=prefix + "p")
    m.d.comb += p.eq((r3 * q3) >> 17)
    eln = Signal(signed(72), name=prefix + "eln2")
    m.d.comb += eln.eq(e3 * LOG_LN2_Q60)
    p4, eln4, t4 = reg(p, "p_s4"), reg(eln, "eln2_s4"), reg(t3, "t_s4")
    side = delay(side, 4)

    # ---- stage 5: L = E * ln2 + T + (r * Q >> 17)
    big_l = Signal(signed(72), name=prefix + "L")
    m.d.comb += big_l.eq(eln4 + t4 + p4)
    return reg(big_l, "L_s5"), delay(side, 5)


class LogUnit(_FnUnit):
    """Natural log as ``fp32_log`` (see the module docstring): the specials, :func:`log_q60_stages`,
    then normalize and round in the result stage."""

    latency = LOG_Q60_STAGES + 1

    def elaborate(self, platform):
        m = Module()

        # ---- fields and specials, then the shared stages 1-3
        a = self.a
        s, e, f = a[31], a[23:31], a[0:23]
        special = Signal(name="special")
        sval = Signal(32, name="special_value")
        with m.If(e == 255):
            m.d.comb += [special.eq(1), sval.eq(Mux((f != 0) | s, FP32_NAN, FP32_POS_INF))]
        with m.Elif(e == 0):
            m.d.comb += [special.eq(1), sval.eq(FP32_NEG_INF)]
        with m.Elif(s):
            m.d.comb += [special.eq(1), sval.eq(FP32_NAN)]
        big_e = Signal(signed(10), name="big_e_in")
        m.d.comb += big_e.eq(_signed(e) - 127)
        l3, (sp3, sv3) = log_q60_stages(m, big_e, f, [special, sval])          # stages 1-5

        # ---- result stage: normalize, round the 24-bit significand half up, pack
        neg = l3[71]
        mag = Signal(72, name="mag")
        m.d.comb += mag.eq(Mux(neg, -l3, l3))
        lead = leading_one(m, mag, "lead")
        sh, half_at, up = Signal(6, name="sh"), Signal(6, name="half_at"), Signal(5, name="up")
        m.d.comb += [sh.eq(lead - 23), half_at.eq(lead - 24), up.eq(23 - lead)]
        sig = Signal(26, name="sig")
        with m.If(lead >= 24):
            rounded = Signal(73, name="rounded")
            m.d.comb += rounded.eq(mag + (Const(1, 73) << half_at))
            m.d.comb += sig.eq(rounded >> sh)
        with m.Else():
            m.d.comb += sig.eq(mag << up)
        over = sig[24]
        exp = Signal(9, name="exp")
        m.d.comb += exp.eq(lead + (127 - LOG_FRAC) + over)
        frac = Mux(over, sig[1:24], sig[0:23])
        packed = Mux(mag == 0, 0, Cat(frac, exp[0:8], neg))
        m.d.sync += self.result.eq(Mux(sp3, sv3, packed))
        return m
