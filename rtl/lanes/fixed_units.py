"""Fixed-point op-class units for the lanes, bit-exact with :class:`~einloom.sim.formats.arith.fixed.FixedArith`.

A fixed-point lane value is what the format model calls a self-describing value: a two's-complement
code ``c`` and its fraction bits ``f`` (value ``c * 2**-f``); ``+-2**62`` are the infinity sentinels.
On a wire it is one word of :data:`VALUE_BITS` bits, ``c`` in bits 0..63 and ``f`` (signed) in bits
64..71 (:func:`pack_value` / :func:`unpack_value`).  Each unit below computes one op class exactly as
``FixedArith`` does (its rounding rules are in :mod:`einloom.sim.formats.arith.fixed`), for every input
on which the model does not raise ``OverflowError`` (an alignment or product beyond 62 bits):

=============  =================================================================  =======
unit           computes                                                           latency
=============  =================================================================  =======
FixedAddUnit   ``add`` (mode 0) / ``sub`` (mode 1): aligned to the larger ``f``,      2
               exact; a sentinel absorbs a finite operand; ``sub`` of equal
               infinities gives that infinity
FixedMaxUnit   ``maximum`` (mode 0) / ``minimum`` (mode 1), aligned, exact            2
FixedMulUnit   exact 128-bit product floored to ``max(fa, fb)`` fraction bits;        4
               a sentinel times non-zero is a signed sentinel
FixedExpUnit   ``exp(premul * x)``: the base-2 LUT datapath; ``b``'s code is the        7
               folded constant ``round(log2(e) |premul| 2**scale_bits)`` with
               premul's sign (:func:`exp_constant`); result at ``prob_bits``
FixedRecipUnit LUT seed + ``recip_nr_steps`` Newton-Raphson steps on ``|c|``,        5 + 3 x steps
               ``f = recip_bits + s - fa``; ``1/0 = +inf``, ``1/inf = 0``            (8)
FixedDivUnit   ``mul(a, recip(b))`` (the two units in series)                       recip + 4 (12)
FixedLogUnit   ``FixedArith.log``: the fp32 log datapath on the code's 24 leading     7
               bits, rounded at ``prob_bits``
=============  =================================================================  =======

Pipelining (each unit one operation per cycle; its latency is its own declared constant,
:meth:`_FixedUnit.stages` / ``latency_for``, which the lane's schedule reads through
:func:`~einloom.rtl.lanes.units.schedule_latency` and elaboration checks against the stages it builds):
at most one wide multiply, one barrel shift or one wide carry chain in series per stage.  The wide
products (``mul``'s 64 x 64, ``exp``'s 42 x 32) are :func:`pipelined_product`: 17-bit partial products
(one ECP5 MULT18X18D each), their rows summed, the rows summed, a register after each.  The
reciprocal's Newton step is three stages (``mant * y``; ``2**(N+1) - e``; ``y * (2**(N+1) - e)``).
Post-route figures per unit: ``benchmarks/lane_unit_fmax.py`` (docs/lane-core.md).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.pipeline import PIECE, Pipeline, partial_products, pieces
from einloom.rtl.lanes.fn_units import leading_one

CODE_BITS, F_BITS = 64, 8
VALUE_BITS = CODE_BITS + F_BITS
POS = 1 << 62
NEG = -POS


def pack_value(c: int, f: int) -> int:
    """``(code, fraction bits)`` -> the unit word."""
    return (int(c) & ((1 << CODE_BITS) - 1)) | ((int(f) & ((1 << F_BITS) - 1)) << CODE_BITS)


def unpack_value(word: int) -> tuple[int, int]:
    """The unit word -> ``(code, fraction bits)``."""
    c = word & ((1 << CODE_BITS) - 1)
    f = (word >> CODE_BITS) & ((1 << F_BITS) - 1)
    return (c - (1 << CODE_BITS) if c >> (CODE_BITS - 1) else c), (f - (1 << F_BITS) if f >> (F_BITS - 1) else f)


def exp_constant(premul: float | None, scale_bits: int) -> int:
    """The exp unit's folded constant as ``FixedArith.exp`` forms it, carrying premul's sign."""
    c = 1.0 if premul is None else float(premul)
    k = int(round(1.4426950408889634 * abs(c) * (1 << scale_bits)))
    return -k if c < 0 else k


class _FixedUnit(wiring.Component):
    """Two value words and a mode in, a value word ``latency`` cycles later, one operation per cycle.

    :meth:`compute` builds the datapath and registers its pipeline stages with :meth:`stage`; the
    result register behind it is the last stage.  ``latency`` = :meth:`stages` + 1 is the unit's
    declared constant (what the lane's schedule and the cycle model read, :func:`..units.schedule_latency`);
    elaboration checks that the datapath has exactly that many stages."""

    #: register stages inside the unit, before its result register
    STAGES = 0

    def __init__(self, params=None):
        self.params = params
        self.latency = self.latency_for(params)
        super().__init__({"a": In(VALUE_BITS), "b": In(VALUE_BITS), "mode": In(1), "result": Out(VALUE_BITS)})

    @classmethod
    def stages(cls, params) -> int:
        """Register stages before the result register for ``params`` (the ``FixedParams``)."""
        return cls.STAGES

    @classmethod
    def latency_for(cls, params) -> int:
        """The unit's latency with ``params`` (without building it)."""
        return cls.stages(params) + 1

    def elaborate(self, platform):
        m = Module()
        declared = self.latency - 1
        self._pipe = Pipeline(m, declared, declared)          # every boundary registered
        c, f = self.compute(m, self.a, self.b, self.mode)
        if self._pipe.remaining:
            raise AssertionError(f"{type(self).__name__}: {declared - self._pipe.remaining} stages built, "
                                 f"{declared} declared")
        m.d.sync += self.result.eq(Cat(c[:CODE_BITS], f[:F_BITS]))
        return m

    def stage(self, **values) -> SimpleNamespace:
        """One pipeline stage (:meth:`~einloom.rtl.float.pipeline.Pipeline.stage`): each value
        registered, returned by name; more stages than declared raise."""
        return self._pipe.stage(**values)

    def compute(self, m: Module, a, b, mode):          # -> (code, f) signals
        raise NotImplementedError


def unit_latency(cls: type, params) -> int:
    """The latency of the fixed-point unit class ``cls`` built with ``params``: its ``latency_for``, or
    for a user's unit (``register_fn_unit(..., fixed=True)``) its ``latency`` attribute."""
    return cls.latency_for(params) if hasattr(cls, "latency_for") else cls.latency


def pipelined_product(unit: _FixedUnit, m: Module, a, b, name: str, **side) -> tuple:
    """``a * b`` (Amaranth's product of the two values, signed if either is) in three stages: the
    17-bit :func:`~einloom.rtl.float.pipeline.partial_products` (one hard multiplier each), each row
    of them summed, the rows summed.  ``side``: values delayed beside it.  Returns ``(product, side
    namespace)``."""
    a, b = Value.cast(a), Value.cast(b)
    shape = (a * b).shape()
    st = unit.stage(**partial_products(a, b), **side)
    keep = lambda st: {k: getattr(st, k) for k in side}                                  # noqa: E731
    rows = {}
    for j in range(len(pieces(b))):
        row = Signal(shape, name=f"{name}_row{j}")
        m.d.comb += row.eq(sum(getattr(st, f"pp{i}_{j}") << (PIECE * i) for i in range(len(pieces(a)))))
        rows[f"row{j}"] = row
    st = unit.stage(**rows, **keep(st))
    total = Signal(shape, name=f"{name}_sum")
    m.d.comb += total.eq(sum(getattr(st, f"row{j}") << (PIECE * j) for j in range(len(rows))))
    st = unit.stage(product=total, **keep(st))
    return st.product, st


def _fields(m: Module, x, name: str):
    c, f = Signal(signed(CODE_BITS), name=f"{name}_c"), Signal(signed(F_BITS), name=f"{name}_f")
    m.d.comb += [c.eq(x[:CODE_BITS]), f.eq(x[CODE_BITS:VALUE_BITS])]
    return c, f


def _is_inf(c):
    return (c >= POS) | (c <= NEG)


def _aligned(m: Module, a, b, name: str):
    """Both codes at the larger fraction bits (sentinels unshifted), and that ``f``.

    Each code's left shift is ``max(0, f_other - f_own)``: one 9-bit subtract and its sign, in parallel
    for the two codes (not a compare, a select of the larger ``f`` and a subtract in series)."""
    ca, fa = _fields(m, a, f"{name}a")
    cb, fb = _fields(m, b, f"{name}b")
    f = Signal(signed(F_BITS), name=f"{name}_f")
    m.d.comb += f.eq(Mux(fa > fb, fa, fb))
    out = []
    for c, fc, fo, tag in ((ca, fa, fb, "a"), (cb, fb, fa, "b")):
        up = Signal(signed(F_BITS + 1), name=f"{name}_up{tag}")
        m.d.comb += up.eq(fo - fc)
        sh = Signal(range(256), name=f"{name}_sh{tag}")
        m.d.comb += sh.eq(Mux(up < 0, 0, up[:8]))
        al = Signal(signed(CODE_BITS), name=f"{name}_al{tag}")
        m.d.comb += al.eq(Mux(_is_inf(c), c, Mux(sh >= CODE_BITS, 0, (c << sh[:6])[:CODE_BITS])))
        out.append(al)
    return out[0], out[1], f, (ca, fa), (cb, fb)


def _add(m: Module, a, b, name: str):
    """``FixedArith.add`` of two words: (code, f, a's code, a's f).

    The sentinel tests read the codes before the alignment, beside it rather than after it: the same
    bits wherever ``FixedArith`` does not raise (an aligned finite code stays below ``2**62``, a
    sentinel is not shifted)."""
    ca, cb, f, (ra, fa), (rb, _) = _aligned(m, a, b, name)
    c = Signal(signed(CODE_BITS), name=f"{name}_sum")
    m.d.comb += c.eq(Mux(_is_inf(ra), ca, Mux(_is_inf(rb), cb, ca + cb)))
    return c, f, ra, fa


def fixed_add(m: Module, a, b, name: str):
    """``FixedArith.add`` of two value words, combinational: ``(code, f)`` signals."""
    c, f, _, _ = _add(m, a, b, name)
    return c, f


class FixedAddUnit(_FixedUnit):
    """``add`` (mode 0) and ``sub`` (mode 1) as ``FixedArith``: stage 1 negates ``b`` (sub) and aligns
    both codes; the result stage adds (the sentinels absorbing)."""

    STAGES = 1

    def compute(self, m, a, b, mode):
        cb0, fb0 = _fields(m, b, "negb")
        nb = Signal(VALUE_BITS, name="nb")
        m.d.comb += nb.eq(Mux(mode, Cat((-cb0)[:CODE_BITS], fb0), b))
        ca, cb, f, (ra, fa), _ = _aligned(m, a, nb, "add")
        st = self.stage(ca=ca, cb=cb, f=f, ra=ra, fa=fa, same_inf=mode & _is_inf(ra) & (ra == cb0))
        c = Signal(signed(CODE_BITS), name="add_sum")
        m.d.comb += c.eq(Mux(_is_inf(st.ca), st.ca, Mux(_is_inf(st.cb), st.cb, st.ca + st.cb)))
        rc, rf = Signal(signed(CODE_BITS), name="add_c"), Signal(signed(F_BITS), name="add_f")
        m.d.comb += [rc.eq(Mux(st.same_inf, st.ra, c)), rf.eq(Mux(st.same_inf, st.fa, st.f))]
        return rc, rf


class FixedMaxUnit(_FixedUnit):
    """``maximum`` (mode 0) and ``minimum`` (mode 1): stage 1 aligns, the result stage compares."""

    STAGES = 1

    def compute(self, m, a, b, mode):
        ca, cb, f, _, _ = _aligned(m, a, b, "max")
        st = self.stage(ca=ca, cb=cb, f=f, mode=mode)
        c = Signal(signed(CODE_BITS), name="max_c")
        m.d.comb += c.eq(Mux(st.mode, Mux(st.ca < st.cb, st.ca, st.cb), Mux(st.ca > st.cb, st.ca, st.cb)))
        return c, st.f


#: register stages of :func:`_mul` (the product's three; the shift is in the stage after it)
MUL_STAGES = 3


def _mul(unit: _FixedUnit, m: Module, ca, fa, cb, fb, name: str, exact=Const(0, 1)):
    """``FixedArith.mul`` (floored to ``max(fa, fb)``), or where ``exact`` ``FixedArith.product`` (the
    exact product at ``fa + fb`` fraction bits): the exact signed product in :func:`pipelined_product`'s
    three stages, then (in the caller's next stage) the floor shift; a sentinel times non-zero is a
    signed sentinel.  The operands go into the multipliers as they are (no select in front of them): a
    sentinel times zero, which the format model computes as ``1 * 1`` (floored), is formed from the
    constant 1 beside the product."""
    inf = _is_inf(ca) | _is_inf(cb)
    zero = (ca == 0) | (cb == 0)
    f = Signal(signed(F_BITS), name=f"{name}_f")
    drop = Signal(signed(F_BITS), name=f"{name}_drop")
    m.d.comb += [f.eq(Mux(exact, fa + fb, Mux(fa > fb, fa, fb))), drop.eq(Mux(exact, 0, Mux(fa > fb, fb, fa)))]
    prod, st = pipelined_product(unit, m, ca, cb, name, sentinel=inf & ~zero, one=inf & zero,
                                 neg=ca[-1] ^ cb[-1], f=f, drop=drop)
    shifted = Signal(signed(2 * CODE_BITS), name=f"{name}_shifted")
    one = Signal(signed(2 * CODE_BITS), name=f"{name}_one_shifted")     # the model's 1 * 1, floored
    with m.If(st.drop >= 0):
        m.d.comb += [shifted.eq(prod >> st.drop.as_unsigned()[:7]), one.eq(st.drop == 0)]
    with m.Else():
        m.d.comb += [shifted.eq(prod << (-st.drop).as_unsigned()[:6]),
                     one.eq(Const(1, signed(2 * CODE_BITS)) << (-st.drop).as_unsigned()[:6])]
    c = Signal(signed(CODE_BITS), name=f"{name}_c")
    m.d.comb += c.eq(Mux(st.sentinel, Mux(st.neg, NEG, POS), Mux(st.one, one, shifted)[:CODE_BITS]))
    return c, st.f


class FixedMulUnit(_FixedUnit):
    """``mul`` (mode 0): exact product floored to ``max(fa, fb)`` fraction bits; mode 1 (``mulx``, the
    term a lane mac chain adds): the exact product at ``fa + fb`` fraction bits (``FixedArith.product``).
    Three product stages, then the shift in the result stage."""

    STAGES = MUL_STAGES

    def compute(self, m, a, b, mode):
        ca, fa = _fields(m, a, "mula")
        cb, fb = _fields(m, b, "mulb")
        return _mul(self, m, ca, fa, cb, fb, "mul", exact=mode)


class FixedExpUnit(_FixedUnit):
    """``exp(premul * x)``: ``b``'s code is :func:`exp_constant` of premul (1 when the cascade has none).

    Stages: (1) the constant's magnitude, the input's sign and clamp; (2-4) the product ``d * |k|``
    (:func:`pipelined_product`); (5) the shift to ``t`` (or its saturation); (6) ``u = -t`` split into
    its integer part ``i`` (clamped to the range that matters) and fraction ``fr``; result: the table
    entry ``EXP_LUT[fr]`` shifted by ``i``."""

    STAGES = 6

    def compute(self, m, a, b, mode):
        p = self.params
        from einloom.sim.formats.arith.fixed import EXP_T_SAT_BITS, exp_lut_table
        lut = exp_lut_table(p.exp_frac_bits, p.prob_bits)
        ca, fa = _fields(m, a, "expa")
        kc, _ = _fields(m, b, "expk")
        k = Signal(CODE_BITS, name="exp_k")                 # |constant|; its sign negates x
        m.d.comb += k.eq(Mux(kc < 0, -kc, kc))
        d = Signal(signed(CODE_BITS + 1), name="exp_d")
        m.d.comb += d.eq(Mux(kc < 0, -ca, ca))
        d_inf = Signal(signed(CODE_BITS + 1), name="exp_dinf")
        m.d.comb += d_inf.eq(Mux(_is_inf(ca), Mux(d < 0, NEG, POS), d))
        lim = 1 << 40
        dd = Signal(signed(42), name="exp_dd")
        m.d.comb += dd.eq(Mux(_is_inf(ca), 0, Mux(d > lim, lim, Mux(d < -lim, -lim, d))))
        shift = Signal(signed(F_BITS + 2), name="exp_shift")
        m.d.comb += shift.eq(p.scale_bits - p.exp_frac_bits + fa)
        st = self.stage(dd=dd, k32=k[:32], shift=shift, zero=d_inf <= NEG, inf=d_inf >= POS)
        prod, st = pipelined_product(self, m, st.dd, st.k32, "exp", shift=st.shift, zero=st.zero, inf=st.inf)
        t = Signal(signed(76), name="exp_t")                 # |t| <= max(|prod|, 2**58) < 2**75
        lim = 1 << (p.exp_frac_bits + EXP_T_SAT_BITS)
        with m.If(st.shift >= 0):
            m.d.comb += t.eq(prod >> Mux(st.shift > 63, 63, st.shift).as_unsigned()[:6])
        with m.Else():                      # a coarse input scale: saturate as exp2_lut does
            left = Signal(range(128), name="exp_left")
            m.d.comb += left.eq((-st.shift).as_unsigned())
            mag = Signal(75, name="exp_prod_mag")
            m.d.comb += mag.eq(Mux(prod < 0, -prod, prod))
            over = Signal(name="exp_over")
            m.d.comb += over.eq(Mux(left >= 62, prod != 0, mag > (Const(lim, 64) >> left[:6])))
            m.d.comb += t.eq(Mux(over, Mux(prod < 0, -lim, lim), prod << left[:6]))
        st = self.stage(t=t, zero=st.zero, inf=st.inf)
        u = Signal(signed(77), name="exp_u")
        m.d.comb += u.eq(-st.t)
        i = Signal(signed(77), name="exp_i")
        m.d.comb += i.eq(u >> p.exp_frac_bits)
        ic = Signal(signed(8), name="exp_ic")                # i clamped: the result is the same
        m.d.comb += ic.eq(Mux(i < -41, -41, Mux(i > 64, 64, i)))
        st = self.stage(ic=ic, fr=u[:p.exp_frac_bits], zero=st.zero, inf=st.inf)
        i, fr = st.ic, st.fr
        entry = Signal(p.prob_bits + 1, name="exp_lut")
        m.d.comb += entry.eq(Array([Const(int(v), p.prob_bits + 1) for v in lut])[fr])
        small = Signal(p.prob_bits + 1, name="exp_small")
        m.d.comb += small.eq(entry >> Mux(i < 0, 0, Mux(i > 63, 63, i))[:6])
        grown = Signal(signed(CODE_BITS), name="exp_grown")
        m.d.comb += grown.eq(Mux(i < -40, POS, (entry << Mux(i < -40, 0, -i)[:6])[:CODE_BITS]))
        r = Signal(signed(CODE_BITS), name="exp_r")
        m.d.comb += r.eq(Mux(i > p.prob_bits, 0, Mux(i < 0, grown, small)))
        c = Signal(signed(CODE_BITS), name="exp_c")
        m.d.comb += c.eq(Mux(st.zero, 0, Mux(st.inf, POS, r)))
        f = Signal(signed(F_BITS), name="exp_f")
        m.d.comb += f.eq(p.prob_bits)
        return c, f


class FixedRecipUnit(_FixedUnit):
    """``recip`` as ``FixedArith.recip``: LUT seed and ``recip_nr_steps`` Newton-Raphson steps on ``|c|``.

    Stages: (1) the magnitude and the specials; (2) the leading one ``s`` (:func:`leading_one`); (3)
    the ``N+1``-bit mantissa; (4) the seed ``y0`` from the table; per Newton step (5) ``e = mant * y >>
    (N-1)``, (6) ``2**(N+1) - e``, (7) ``y * (2**(N+1) - e) >> N``: one hard multiplier product per
    stage; result: the sign and ``f = N + s - fa``."""

    @classmethod
    def stages(cls, params) -> int:
        return 4 + 3 * params.recip_nr_steps

    def compute(self, m, a, b, mode):
        from einloom.sim.formats.arith.fixed import recip_lut_table
        params = self.params
        n, lb = params.recip_bits, params.recip_lut_bits
        lut = recip_lut_table(n, lb)
        c, fc = _fields(m, a, "rca")
        mag = Signal(CODE_BITS, name="recip_mag")
        m.d.comb += mag.eq(Mux(c < 0, -c, c))
        ok = (c != 0) & (c > NEG) & (c < POS)                # = 1 <= |c| < POS, from c beside the negation
        x = Signal(CODE_BITS, name="recip_x")
        m.d.comb += x.eq(Mux(ok, mag, 1))
        side = dict(zero=c == 0, big=_is_inf(c), ok=ok, neg=c < 0, fc=fc)
        st = self.stage(x=x, **side)
        keep = lambda st: {k: getattr(st, k) for k in side}                            # noqa: E731
        s = leading_one(m, st.x, "recip_s")
        st = self.stage(x=st.x, s=s, **keep(st))
        mant = Signal(n + 1, name="recip_mant")
        up, down = Signal(range(CODE_BITS), name="recip_up"), Signal(range(CODE_BITS), name="recip_down")
        m.d.comb += [up.eq(n - 1 - st.s), down.eq(st.s - (n - 1))]
        with m.If(st.s <= n - 1):
            m.d.comb += mant.eq(st.x << up)
        with m.Else():
            m.d.comb += mant.eq(st.x >> down)
        s = st.s
        st = self.stage(mant=mant, s=s, **keep(st))
        side["s"] = s
        idx = Signal(lb, name="recip_idx")
        m.d.comb += idx.eq(st.mant >> (n - 1 - lb))
        y = Signal(n + 2, name="recip_y0")
        m.d.comb += y.eq(Array([Const(int(v), n + 2) for v in lut])[idx])
        st = self.stage(y=y, mant=st.mant, **keep(st))
        for step in range(params.recip_nr_steps):
            e = Signal(2 * n + 4, name=f"recip_e{step}")
            m.d.comb += e.eq((st.mant * st.y) >> (n - 1))
            st = self.stage(e=e, y=st.y, mant=st.mant, **keep(st))
            t = Signal(signed(n + 6), name=f"recip_t{step}")          # e < 2**(N+4): t fits N+6 bits
            m.d.comb += t.eq((1 << (n + 1)) - st.e)
            st = self.stage(t=t, y=st.y, mant=st.mant, **keep(st))
            y2 = Signal(n + 2, name=f"recip_y{step + 1}")
            m.d.comb += y2.eq((st.y * st.t) >> n)
            st = self.stage(y=y2, mant=st.mant, **keep(st))
        rc = Signal(signed(CODE_BITS), name="recip_c")
        m.d.comb += rc.eq(Mux(st.zero, POS, Mux(st.big, 0, Mux(st.neg, -st.y, st.y))))
        rf = Signal(signed(F_BITS), name="recip_f")
        m.d.comb += rf.eq(Mux(st.ok, n + st.s - st.fc, 0))
        return rc, rf


class FixedDivUnit(wiring.Component):
    """``div = mul(a, recip(b))``: :class:`FixedRecipUnit` on ``b``, then :class:`FixedMulUnit` with ``a``
    delayed beside it (latency: the two units' together)."""

    def __init__(self, params):
        self.params = params
        self.recip, self.mul = FixedRecipUnit(params), FixedMulUnit(params)
        self.latency = self.latency_for(params)
        super().__init__({"a": In(VALUE_BITS), "b": In(VALUE_BITS), "mode": In(1), "result": Out(VALUE_BITS)})

    @classmethod
    def latency_for(cls, params) -> int:
        return FixedRecipUnit.latency_for(params) + FixedMulUnit.latency_for(params)

    def elaborate(self, platform):
        m = Module()
        m.submodules.recip, m.submodules.mul = self.recip, self.mul
        delay = Pipeline(m, self.recip.latency, self.recip.latency)      # a beside the reciprocal
        late_a = self.a
        for _ in range(self.recip.latency):
            late_a = delay.stage(div_a=late_a).div_a
        m.d.comb += [self.recip.a.eq(self.b), self.mul.a.eq(late_a), self.mul.b.eq(self.recip.result),
                     self.result.eq(self.mul.result)]
        return m


class FixedReluUnit(_FixedUnit):
    """``relu`` as the golden model computes a map operator in fixed point (``FixedArith.apply_float``):
    ``max(x, 0)`` rounded once to ``prob_bits`` fraction bits, to nearest with ties to even (NumPy's
    ``round``); a negative value gives ``(0, prob_bits)``, ``+inf`` stays ``+inf``.  The example of a
    user operator's fixed-point unit (``register_fn_unit(name, cls, fixed=True)``)."""

    def compute(self, m, a, b, mode):
        pb = self.params.prob_bits
        c, f = _fields(m, a, "relu")
        up, down = Signal(range(256), name="relu_up"), Signal(range(256), name="relu_down")
        m.d.comb += [up.eq((pb - f)[:8]), down.eq((f - pb)[:8])]
        q = Signal(signed(CODE_BITS), name="relu_q")
        rem = Signal(CODE_BITS, name="relu_rem")
        half = Signal(CODE_BITS + 1, name="relu_half")
        grown = Signal(signed(2 * CODE_BITS), name="relu_grown")
        m.d.comb += grown.eq(c << Mux(up > 63, 63, up)[:6])
        r = Signal(signed(CODE_BITS), name="relu_r")
        with m.If(f <= pb):
            m.d.comb += r.eq(Mux((up > 62) | (grown >= POS), POS, grown))
        with m.Elif(down > 62):
            m.d.comb += r.eq(0)
        with m.Else():
            down1 = Signal(6, name="relu_down1")
            m.d.comb += down1.eq(down[:6] - 1)
            m.d.comb += [q.eq(c >> down[:6]), rem.eq(c & ((Const(1, CODE_BITS + 1) << down[:6]) - 1)),
                         half.eq(Const(1, CODE_BITS + 1) << down1)]
            m.d.comb += r.eq(q + ((rem > half) | ((rem == half) & q[0])))
        out_c = Signal(signed(CODE_BITS), name="relu_c")
        m.d.comb += out_c.eq(Mux(c >= POS, POS, Mux(c <= 0, 0, r)))
        out_f = Signal(signed(F_BITS), name="relu_f")
        m.d.comb += out_f.eq(pb)
        return out_c, out_f


class FixedSigmoidUnit(wiring.Component):
    """``sigmoid(a) = recip(add(1, exp(-a)))`` as ``FixedArith.sigmoid``: :class:`FixedExpUnit` (its
    constant :func:`exp_constant` of -1), :class:`FixedAddUnit` (``+ 1``) and :class:`FixedRecipUnit`
    in series, each pipelined (latency: the three units' together).  ``b`` and ``mode`` are unused."""

    def __init__(self, params):
        self.params = params
        self.exp, self.add, self.recip = FixedExpUnit(params), FixedAddUnit(), FixedRecipUnit(params)
        self.latency = self.latency_for(params)
        super().__init__({"a": In(VALUE_BITS), "b": In(VALUE_BITS), "mode": In(1), "result": Out(VALUE_BITS)})

    @classmethod
    def latency_for(cls, params) -> int:
        return FixedExpUnit.latency_for(params) + FixedAddUnit.latency_for(params) + \
            FixedRecipUnit.latency_for(params)

    def elaborate(self, platform):
        m = Module()
        m.submodules.exp, m.submodules.add, m.submodules.recip = self.exp, self.add, self.recip
        m.d.comb += [self.exp.a.eq(self.a), self.exp.b.eq(pack_value(exp_constant(-1.0, self.params.scale_bits), 0)),
                     self.add.a.eq(pack_value(1, 0)), self.add.b.eq(self.exp.result),
                     self.recip.a.eq(self.add.result), self.result.eq(self.recip.result)]
        return m


class FixedLogUnit(wiring.Component):
    """Natural log as ``FixedArith.log`` (:mod:`einloom.sim.formats.arith.fixed_fn`): stage 0 finds the
    code's leading one ``s`` and takes the 23 bits below it, ``E = s - f``; stages 1-5 are the fp32 log
    unit's table, series and 60-fraction-bit sum (:func:`~einloom.rtl.lanes.fn_units.log_q60_stages`);
    the result stage rounds ``L`` to nearest at ``prob_bits``.  ``x <= 0`` -> ``-inf``, ``+inf`` ->
    ``+inf``.  ``b`` and ``mode`` are unused."""

    def __init__(self, params):
        self.params = params
        self.latency = self.latency_for(params)
        super().__init__({"a": In(VALUE_BITS), "b": In(VALUE_BITS), "mode": In(1), "result": Out(VALUE_BITS)})

    @classmethod
    def latency_for(cls, params) -> int:
        """Stage 0, :func:`~einloom.rtl.lanes.fn_units.log_q60_stages`, the result stage."""
        from einloom.rtl.lanes.fn_units import LOG_Q60_STAGES
        return 1 + LOG_Q60_STAGES + 1

    def elaborate(self, platform):
        from einloom.rtl.lanes.fn_units import log_q60_stages
        from einloom.sim.formats.arith.fp32_fn import LOG_FRAC
        m = Module()
        pb = self.params.prob_bits
        c, f = _fields(m, self.a, "log")
        # ---- stage 0: leading one, the 23 bits below it, E = s - f; the specials
        s = leading_one(m, c[:62], "log_s")
        norm = Signal(CODE_BITS, name="log_norm")
        with m.If(s >= 23):
            m.d.comb += norm.eq(c.as_unsigned() >> (s - 23)[:6])
        with m.Else():
            m.d.comb += norm.eq(c.as_unsigned() << (23 - s)[:5])
        special = Signal(name="log_special")
        sval = Signal(signed(CODE_BITS), name="log_special_c")
        m.d.comb += [special.eq((c <= 0) | (c >= POS)), sval.eq(Mux(c >= POS, POS, NEG))]
        big_e = Signal(signed(10), name="log_e")
        m.d.comb += big_e.eq(s - f)
        regs = []
        for x, name in ((big_e, "log_e_s0"), (norm[:23], "log_frac_s0"), (special, "log_special_s0"),
                        (sval, "log_special_c_s0")):
            q = Signal(x.shape(), name=name, reset_less=True)
            m.d.sync += q.eq(x)
            regs.append(q)
        e0, frac0, sp0, sv0 = regs
        big_l, (sp3, sv3) = log_q60_stages(m, e0, frac0, [sp0, sv0], prefix="log_")
        # ---- result stage: round to nearest (half up) at prob_bits
        shift = LOG_FRAC - pb
        code = Signal(signed(CODE_BITS), name="log_code")
        m.d.comb += code.eq((big_l + (1 << (shift - 1))) >> shift)
        m.d.sync += self.result.eq(Cat(Mux(sp3, sv3, code)[:CODE_BITS], Const(pb, F_BITS)))
        return m


FIXED_UNITS = {"add": FixedAddUnit, "max": FixedMaxUnit, "mul": FixedMulUnit, "exp": FixedExpUnit,
               "recip": FixedRecipUnit, "div": FixedDivUnit, "log": FixedLogUnit}
