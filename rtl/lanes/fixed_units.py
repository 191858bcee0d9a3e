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
FixedAddUnit   ``add`` (mode 0) / ``sub`` (mode 1): aligned to the larger ``f``,      1
               exact; a sentinel absorbs a finite operand; ``sub`` of equal
               infinities gives that infinity
FixedMaxUnit   ``maximum`` (mode 0) / ``minimum`` (mode 1), aligned, exact            1
FixedMulUnit   exact 128-bit product floored to ``max(fa, fb)`` fraction bits;        1
               a sentinel times non-zero is a signed sentinel
FixedExpUnit   ``exp(premul * x)``: the base-2 LUT datapath; ``b``'s code is the        1
               folded constant ``round(log2(e) |premul| 2**scale_bits)`` with
               premul's sign (:func:`exp_constant`); result at ``prob_bits``
FixedRecipUnit LUT seed + ``recip_nr_steps`` Newton-Raphson steps on ``|c|``,        1
               ``f = recip_bits + s - fa``; ``1/0 = +inf``, ``1/inf = 0``
FixedDivUnit   ``mul(a, recip(b))`` (the two units in series)                       2
=============  =================================================================  =======

These are the fixed-point lane's datapath; the lane and the lane core with fixed-point registers
(72-bit values, the 2D array's aligning MAC) are not built yet (docs/lane-core.md, Limits).  The units'
multipliers are full width (64 x 64 for ``mul``): correctness first, no pipelining.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

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
    latency = 1

    def __init__(self, params=None):
        self.params = params
        super().__init__({"a": In(VALUE_BITS), "b": In(VALUE_BITS), "mode": In(1), "result": Out(VALUE_BITS)})

    def elaborate(self, platform):
        m = Module()
        c, f = self.compute(m, self.a, self.b, self.mode)
        m.d.sync += self.result.eq(Cat(c[:CODE_BITS], f[:F_BITS]))
        return m

    def compute(self, m: Module, a, b, mode):          # -> (code, f) signals
        raise NotImplementedError


def _fields(m: Module, x, name: str):
    c, f = Signal(signed(CODE_BITS), name=f"{name}_c"), Signal(signed(F_BITS), name=f"{name}_f")
    m.d.comb += [c.eq(x[:CODE_BITS]), f.eq(x[CODE_BITS:VALUE_BITS])]
    return c, f


def _is_inf(c):
    return (c >= POS) | (c <= NEG)


def _aligned(m: Module, a, b, name: str):
    """Both codes at the larger fraction bits (sentinels unshifted), and that ``f``."""
    ca, fa = _fields(m, a, f"{name}a")
    cb, fb = _fields(m, b, f"{name}b")
    f = Signal(signed(F_BITS), name=f"{name}_f")
    m.d.comb += f.eq(Mux(fa > fb, fa, fb))
    out = []
    for c, fc, tag in ((ca, fa, "a"), (cb, fb, "b")):
        sh = Signal(range(256), name=f"{name}_sh{tag}")
        m.d.comb += sh.eq((f - fc)[:8])
        al = Signal(signed(CODE_BITS), name=f"{name}_al{tag}")
        m.d.comb += al.eq(Mux(_is_inf(c), c, Mux(sh >= CODE_BITS, 0, (c << sh[:6])[:CODE_BITS])))
        out.append(al)
    return out[0], out[1], f, (ca, fa), (cb, fb)


def _add(m: Module, a, b, name: str):
    """``FixedArith.add`` of two words: (code, f, a's code, a's f)."""
    ca, cb, f, (ra, fa), _ = _aligned(m, a, b, name)
    c = Signal(signed(CODE_BITS), name=f"{name}_sum")
    m.d.comb += c.eq(Mux(_is_inf(ca), ca, Mux(_is_inf(cb), cb, ca + cb)))
    return c, f, ra, fa


def fixed_add(m: Module, a, b, name: str):
    """``FixedArith.add`` of two value words, combinational: ``(code, f)`` signals."""
    c, f, _, _ = _add(m, a, b, name)
    return c, f


class FixedAddUnit(_FixedUnit):
    """``add`` (mode 0) and ``sub`` (mode 1) as ``FixedArith``."""

    def compute(self, m, a, b, mode):
        cb0, fb0 = _fields(m, b, "negb")
        nb = Signal(VALUE_BITS, name="nb")
        m.d.comb += nb.eq(Mux(mode, Cat((-cb0)[:CODE_BITS], fb0), b))
        c, f, ra, fa = _add(m, a, nb, "add")
        same_inf = mode & _is_inf(ra) & (ra == cb0)
        rc, rf = Signal(signed(CODE_BITS), name="add_c"), Signal(signed(F_BITS), name="add_f")
        m.d.comb += [rc.eq(Mux(same_inf, ra, c)), rf.eq(Mux(same_inf, fa, f))]
        return rc, rf


class FixedMaxUnit(_FixedUnit):
    """``maximum`` (mode 0) and ``minimum`` (mode 1), aligned."""

    def compute(self, m, a, b, mode):
        ca, cb, f, _, _ = _aligned(m, a, b, "max")
        c = Signal(signed(CODE_BITS), name="max_c")
        m.d.comb += c.eq(Mux(mode, Mux(ca < cb, ca, cb), Mux(ca > cb, ca, cb)))
        return c, f


def _mul(m: Module, ca, fa, cb, fb, name: str, exact=Const(0, 1)):
    """``FixedArith.mul`` (floored to ``max(fa, fb)``), or where ``exact`` ``FixedArith.product``."""
    inf = _is_inf(ca) | _is_inf(cb)
    zero = (ca == 0) | (cb == 0)
    neg = ca[-1] ^ cb[-1]
    prod = Signal(signed(2 * CODE_BITS), name=f"{name}_prod")
    m.d.comb += prod.eq(Mux(inf, 1, ca) * Mux(inf, 1, cb))
    f = Signal(signed(F_BITS), name=f"{name}_f")
    drop = Signal(signed(F_BITS), name=f"{name}_drop")
    m.d.comb += [f.eq(Mux(exact, fa + fb, Mux(fa > fb, fa, fb))), drop.eq(Mux(exact, 0, Mux(fa > fb, fb, fa)))]
    shifted = Signal(signed(2 * CODE_BITS), name=f"{name}_shifted")
    with m.If(drop >= 0):
        m.d.comb += shifted.eq(prod >> drop.as_unsigned()[:7])
    with m.Else():
        m.d.comb += shifted.eq(prod << (-drop).as_unsigned()[:6])
    c = Signal(signed(CODE_BITS), name=f"{name}_c")
    m.d.comb += c.eq(Mux(inf & ~zero, Mux(neg, NEG, POS), shifted[:CODE_BITS]))
    return c, f


class FixedMulUnit(_FixedUnit):
    """``mul`` (mode 0): exact product floored to ``max(fa, fb)`` fraction bits; mode 1 (``mulx``, the
    term a lane mac chain adds): the exact product at ``fa + fb`` fraction bits (``FixedArith.product``)."""

    def compute(self, m, a, b, mode):
        ca, fa = _fields(m, a, "mula")
        cb, fb = _fields(m, b, "mulb")
        c, f = _mul(m, ca, fa, cb, fb, "mul", exact=mode)
        return c, f


class FixedExpUnit(_FixedUnit):
    """``exp(premul * x)``: ``b``'s code is :func:`exp_constant` of premul (1 when the cascade has none)."""

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
        prod = Signal(signed(42 + 33), name="exp_prod")
        m.d.comb += prod.eq(dd * k[:32])
        t = Signal(signed(128), name="exp_t")
        lim = 1 << (p.exp_frac_bits + EXP_T_SAT_BITS)
        with m.If(shift >= 0):
            m.d.comb += t.eq(prod >> Mux(shift > 63, 63, shift).as_unsigned()[:6])
        with m.Else():                      # a coarse input scale: saturate as exp2_lut does
            k = Signal(range(128), name="exp_left")
            m.d.comb += k.eq((-shift).as_unsigned())
            mag = Signal(75, name="exp_prod_mag")
            m.d.comb += mag.eq(Mux(prod < 0, -prod, prod))
            over = Signal(name="exp_over")
            m.d.comb += over.eq(Mux(k >= 62, prod != 0, mag > (Const(lim, 64) >> k[:6])))
            m.d.comb += t.eq(Mux(over, Mux(prod < 0, -lim, lim), prod << k[:6]))
        u = Signal(signed(129), name="exp_u")
        m.d.comb += u.eq(-t)
        i = Signal(signed(129), name="exp_i")
        m.d.comb += i.eq(u >> p.exp_frac_bits)
        fr = u[:p.exp_frac_bits]
        entry = Signal(p.prob_bits + 1, name="exp_lut")
        m.d.comb += entry.eq(Array([Const(int(v), p.prob_bits + 1) for v in lut])[fr])
        small = Signal(p.prob_bits + 1, name="exp_small")
        m.d.comb += small.eq(entry >> Mux(i < 0, 0, Mux(i > 63, 63, i))[:6])
        grown = Signal(signed(CODE_BITS), name="exp_grown")
        m.d.comb += grown.eq(Mux(i < -40, POS, (entry << Mux(i < -40, 0, -i)[:6])[:CODE_BITS]))
        r = Signal(signed(CODE_BITS), name="exp_r")
        m.d.comb += r.eq(Mux(i > p.prob_bits, 0, Mux(i < 0, grown, small)))
        c = Signal(signed(CODE_BITS), name="exp_c")
        m.d.comb += c.eq(Mux(d_inf <= NEG, 0, Mux(d_inf >= POS, POS, r)))
        f = Signal(signed(F_BITS), name="exp_f")
        m.d.comb += f.eq(p.prob_bits)
        return c, f


def _recip(m: Module, params, c, fc, name: str):
    """``FixedArith.recip`` of ``(c, fc)``: LUT seed and Newton-Raphson on ``|c|`` (see recip_nr)."""
    from einloom.sim.formats.arith.fixed import recip_lut_table
    n, lb = params.recip_bits, params.recip_lut_bits
    lut = recip_lut_table(n, lb)
    mag = Signal(CODE_BITS, name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(c < 0, -c, c))
    ok = (mag >= 1) & (mag < POS)
    x = Signal(CODE_BITS, name=f"{name}_x")
    m.d.comb += x.eq(Mux(ok, mag, 1))
    s = Signal(range(CODE_BITS), name=f"{name}_s")
    for k in range(CODE_BITS):
        with m.If(x[k]):
            m.d.comb += s.eq(k)
    mant = Signal(n + 1, name=f"{name}_mant")
    up, down = Signal(range(CODE_BITS), name=f"{name}_up"), Signal(range(CODE_BITS), name=f"{name}_down")
    m.d.comb += [up.eq(n - 1 - s), down.eq(s - (n - 1))]
    with m.If(s <= n - 1):
        m.d.comb += mant.eq(x << up)
    with m.Else():
        m.d.comb += mant.eq(x >> down)
    idx = Signal(lb, name=f"{name}_idx")
    m.d.comb += idx.eq(mant >> (n - 1 - lb))
    y = Signal(n + 2, name=f"{name}_y0")
    m.d.comb += y.eq(Array([Const(int(v), n + 2) for v in lut])[idx])
    for step in range(params.recip_nr_steps):
        e = Signal(2 * n + 4, name=f"{name}_e{step}")
        m.d.comb += e.eq((mant * y) >> (n - 1))
        y2 = Signal(n + 2, name=f"{name}_y{step + 1}")
        m.d.comb += y2.eq((y * ((1 << (n + 1)) - e)) >> n)
        y = y2
    rc = Signal(signed(CODE_BITS), name=f"{name}_c")
    m.d.comb += rc.eq(Mux(mag == 0, POS, Mux(mag >= POS, 0, Mux(c < 0, -y, y))))
    rf = Signal(signed(F_BITS), name=f"{name}_f")
    m.d.comb += rf.eq(Mux(ok, n + s - fc, 0))
    return rc, rf


class FixedRecipUnit(_FixedUnit):
    """``recip`` as ``FixedArith.recip``."""

    def compute(self, m, a, b, mode):
        c, f = _fields(m, a, "rca")
        return _recip(m, self.params, c, f, "recip")


class FixedDivUnit(_FixedUnit):
    """``div = mul(a, recip(b))``: the reciprocal registered, then the multiply."""

    latency = 2

    def compute(self, m, a, b, mode):
        cb, fb = _fields(m, b, "divb")
        rc, rf = _recip(m, self.params, cb, fb, "recip")
        rc_q, rf_q = Signal.like(rc, name="recip_c_q"), Signal.like(rf, name="recip_f_q")
        a_q = Signal(VALUE_BITS, name="a_q")
        m.d.sync += [rc_q.eq(rc), rf_q.eq(rf), a_q.eq(a)]
        ca, fa = _fields(m, a_q, "diva")
        return _mul(m, ca, fa, rc_q, rf_q, "mul")


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
    in series, one registered stage each (latency 3).  ``b`` and ``mode`` are unused."""

    latency = FixedExpUnit.latency + FixedAddUnit.latency + FixedRecipUnit.latency

    def __init__(self, params):
        self.params = params
        self.exp, self.add, self.recip = FixedExpUnit(params), FixedAddUnit(), FixedRecipUnit(params)
        super().__init__({"a": In(VALUE_BITS), "b": In(VALUE_BITS), "mode": In(1), "result": Out(VALUE_BITS)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.exp, m.submodules.add, m.submodules.recip = self.exp, self.add, self.recip
        m.d.comb += [self.exp.a.eq(self.a), self.exp.b.eq(pack_value(exp_constant(-1.0, self.params.scale_bits), 0)),
                     self.add.a.eq(pack_value(1, 0)), self.add.b.eq(self.exp.result),
                     self.recip.a.eq(self.add.result), self.result.eq(self.recip.result)]
        return m


class FixedLogUnit(wiring.Component):
    """Natural log as ``FixedArith.log`` (:mod:`einloom.sim.formats.arith.fixed_fn`): stage 0 finds the
    code's leading one ``s`` and takes the 23 bits below it, ``E = s - f``; stages 1-3 are the fp32 log
    unit's table, series and 60-fraction-bit sum (:func:`~einloom.rtl.lanes.fn_units.log_q60_stages`);
    stage 4 rounds ``L`` to nearest at ``prob_bits``.  ``x <= 0`` -> ``-inf``, ``+inf`` -> ``+inf``.
    Latency 5; ``b`` and ``mode`` are unused."""

    latency = 5

    def __init__(self, params):
        self.params = params
        super().__init__({"a": In(VALUE_BITS), "b": In(VALUE_BITS), "mode": In(1), "result": Out(VALUE_BITS)})

    def elaborate(self, platform):
        from einloom.rtl.lanes.fn_units import log_q60_stages
        from einloom.sim.formats.arith.fp32_fn import LOG_FRAC
        m = Module()
        pb = self.params.prob_bits
        c, f = _fields(m, self.a, "log")
        # ---- stage 0: leading one, the 23 bits below it, E = s - f; the specials
        s = Signal(range(CODE_BITS), name="log_s")
        for k in range(62):
            with m.If(c[k]):
                m.d.comb += s.eq(k)
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
        # ---- stage 4: round to nearest (half up) at prob_bits
        shift = LOG_FRAC - pb
        code = Signal(signed(CODE_BITS), name="log_code")
        m.d.comb += code.eq((big_l + (1 << (shift - 1))) >> shift)
        m.d.sync += self.result.eq(Cat(Mux(sp3, sv3, code)[:CODE_BITS], Const(pb, F_BITS)))
        return m


FIXED_UNITS = {"add": FixedAddUnit, "max": FixedMaxUnit, "mul": FixedMulUnit, "exp": FixedExpUnit,
               "recip": FixedRecipUnit, "div": FixedDivUnit, "log": FixedLogUnit}
