"""Two's-complement fixed-point arithmetic: the exp and reciprocal datapaths, and the op-class view.

The two functions :func:`exp2_lut` and :func:`recip_nr` are the bit-exact models of ``rtl/units/fixed.py``'s
exp and reciprocal units (documented in :mod:`einloom.sim.formats.fixed`, which uses them for
``FixedFormat.exp_diff`` / ``reciprocal``).  :class:`FixedArith` is the same arithmetic as op-class
primitives over *self-describing* fixed-point values: every element carries its code ``c`` and its
fraction bits ``f`` (value ``c * 2**-f``), so a cascade's tensors can live at the scales the hardware
gives them (QK at ``2*frac_bits``, probabilities at ``prob_bits``, SLNV at ``prob_bits + frac_bits``,
a reciprocal at a per-query exponent) without a hand-written scale per tensor.

Rounding rules of :class:`FixedArith`
-------------------------------------
========  ==================================================================================
add/sub   exact: operands aligned to the finer scale (left shifts), integer add
mul       exact product at ``fa + fb`` fraction bits, then floored (arithmetic shift right) to
          ``max(fa, fb)`` -- the rescale ``(PRM * RD) >> prob_bits`` of the datapath
mac       ``acc + a * b`` exact (the 2D PE's wide accumulator keeps ``fa + fb`` bits)
max, cmp  exact (aligned compare)
exp       ``exp(c * x)`` by the base-2 LUT datapath with ``round(log2(e) * c * 2**scale_bits)`` as
          its constant (``c`` a constant the unit folds in, 1 when absent); result at ``prob_bits``;
          the floor of the constant multiply and of the LUT shift as in the exp unit
recip     LUT seed + Newton-Raphson (:func:`recip_nr`), result ``y * 2**-(recip_bits + s - f)``
div       ``mul(a, recip(b))`` (deferred division)
log       the fp32 log unit's datapath on the normalized code, rounded to nearest at ``prob_bits``
          (:mod:`.fixed_fn`; <= 0.51 ulp of ``2**-prob_bits``)
sigmoid   ``recip(add(1, exp(-x)))``: the exp, add and reciprocal above in series (:mod:`.fixed_fn`;
          the operator ``sigmoid`` runs on it, :attr:`UNIT_OPERATORS`)
output    floor to ``output_frac_bits``, saturate to ``output_bits``
========  ==================================================================================

Infinities are sentinels (``+-2**62``) that survive alignment; ``sentinel * 0 = 0``; ``exp(-inf) = 0``;
``1/0`` is ``+inf``.  Products that could exceed 63 bits are computed with Python integers (exact).
The accumulator width ``acc_bits`` is not enforced here (``FixedFormat.validate`` sizes it).
"""
from __future__ import annotations

import math

import numpy as np

from einloom.sim.formats.arith.base import Arith

LOG2E = 1.4426950408889634
FIXED_DTYPE = np.dtype([("c", "<i8"), ("f", "<i8")])
POS = np.int64(1) << np.int64(62)
NEG = -POS
#: exp's ``t`` saturates at ``+-2**(exp_frac_bits + EXP_T_SAT_BITS)`` when the input scale is coarse
#: (``f < exp_frac_bits - scale_bits``): its integer part is then far past where exp is 0 or +inf
EXP_T_SAT_BITS = 46


def exp2_lut(d: np.ndarray, exp_const: int, exp_shift: int, exp_frac_bits: int, prob_bits: int,
             exp_lut: np.ndarray) -> np.ndarray:
    """``exp`` of the scaled difference ``d`` (codes): ``EXP_LUT[fr] >> i`` where ``i, fr`` split
    ``u = -((d * exp_const) >> exp_shift)`` into its integer and ``exp_frac_bits`` fraction parts.

    For ``d <= 0`` this is the RTL exp unit; for ``d > 0`` (``i < 0``) the LUT value is shifted left
    instead (a generalization the attention datapath never needs).  Results below 1 LSB are 0.  A right
    shift of 64 or more is one of 63 (the same 0 or -1); a left shift (``exp_shift < 0``) saturates
    ``t`` at ``+-2**(exp_frac_bits + EXP_T_SAT_BITS)``."""
    d = np.asarray(d, dtype=np.int64)
    prod = d * exp_const
    if exp_shift >= 0:
        t = prod >> min(exp_shift, 63)
    else:                       # a coarse input scale: saturate t where exp is 0 or +inf anyway
        lim = np.int64(1) << np.int64(exp_frac_bits + EXP_T_SAT_BITS)
        k = -exp_shift
        over = np.abs(prod) > (lim >> k) if k < 62 else prod != 0
        t = np.where(over, np.sign(prod) * lim, prod << min(k, 62))
    u = -t
    i = u >> exp_frac_bits
    fr = u & ((1 << exp_frac_bits) - 1)
    big = i > prob_bits
    neg = np.minimum(i, 0)
    small = exp_lut[fr] >> np.where(big, 0, np.maximum(i, 0))
    grown = np.where(neg < -40, POS, exp_lut[fr] << np.clip(-neg, 0, 40))
    return np.where(big, 0, np.where(i < 0, grown, small)).astype(np.int64)


def recip_nr(x: np.ndarray, recip_bits: int, recip_lut_bits: int, recip_nr_steps: int,
             recip_lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y, s)`` with ``1/x ~= y * 2**-(recip_bits + s)`` for integer codes ``x >= 1``: the RTL's
    LUT seed (``recip_lut_bits`` bits below the leading one) and ``recip_nr_steps`` Newton-Raphson steps."""
    x = np.asarray(x, dtype=np.int64)
    n, lb = recip_bits, recip_lut_bits
    s = np.floor(np.log2(x.astype(np.float64))).astype(np.int64)
    # float log2 can be off by one just below a power of two: correct it exactly
    s = np.where((np.int64(1) << s) > x, s - 1, s)
    s = np.where((np.int64(1) << (s + 1)) <= x, s + 1, s)
    up = (n - 1) - s
    mant = np.where(up >= 0, x << np.maximum(up, 0), x >> np.maximum(-up, 0))
    idx = (mant >> (n - 1 - lb)) & ((1 << lb) - 1)
    y = recip_lut[idx]
    for _ in range(recip_nr_steps):
        e = (mant * y) >> (n - 1)
        y = (y * ((1 << (n + 1)) - e)) >> n
    return y, s


def exp_lut_table(exp_frac_bits: int, prob_bits: int) -> np.ndarray:
    """``EXP_LUT[j] = round(2**prob_bits * 2**(-j / 2**exp_frac_bits))``."""
    j = np.arange(1 << exp_frac_bits)
    return np.round((1 << prob_bits) * np.exp2(-j / (1 << exp_frac_bits))).astype(np.int64)


def recip_lut_table(recip_bits: int, recip_lut_bits: int) -> np.ndarray:
    """``RECIP_LUT[idx] = round(2**(2N-1) / (2**(N-1) + (idx + 0.5) * 2**(N-1-L)))``."""
    n, lb = recip_bits, recip_lut_bits
    idx = np.arange(1 << lb)
    return np.round(2.0 ** (2 * n - 1) / (2.0 ** (n - 1) + (idx + 0.5) * 2.0 ** (n - 1 - lb))).astype(np.int64)


def _pack(c, f) -> np.ndarray:
    c, f = np.broadcast_arrays(np.asarray(c), np.asarray(f))
    out = np.empty(c.shape, dtype=FIXED_DTYPE)
    out["c"] = c
    out["f"] = f
    return out


def _shift(c: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``c * 2**k`` (floor for k < 0); sentinels stay sentinels; raises on 62-bit overflow."""
    c = np.asarray(c, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    inf = np.abs(c) >= POS
    up = np.clip(k, 0, 62)
    if np.any(~inf & (up > 0) & (np.abs(c) >= (POS >> up))):
        raise OverflowError("fixed-point value exceeds 62 bits after alignment")
    out = np.where(k >= 0, c << up, c >> np.clip(-k, 0, 63))
    return np.where(inf, c, out)


class FixedArith(Arith):
    """Op-class primitives of a :class:`~einloom.sim.formats.fixed.FixedFormat` (rules in the module doc)."""

    name = "fixed"
    dtype = FIXED_DTYPE
    UNIT_OPERATORS = {"sigmoid": "sigmoid"}

    def __init__(self, fmt) -> None:
        p = fmt.p
        self.fmt = fmt
        self.p = p
        self.exp_lut = fmt.exp_lut
        self.recip_lut = fmt.recip_lut
        self.const_bits = p.scale_bits

    # ---- conversion ---------------------------------------------------------------------------
    def const(self, x: float) -> np.ndarray:
        x = float(x)
        if math.isinf(x):
            return _pack(POS if x > 0 else NEG, 0)
        if math.isnan(x):
            raise ValueError("NaN has no fixed-point code")
        for f in range(0, self.const_bits + 1):          # exact when x is dyadic
            c = x * (1 << f)
            if c == int(c):
                return _pack(int(c), f)
        return _pack(int(round(x * (1 << self.const_bits))), self.const_bits)

    def from_input(self, codes: np.ndarray) -> np.ndarray:
        """Input codes at ``frac_bits``; an array of values (``FIXED_DTYPE``: a state one lane-core
        stage hands the next, exactly) as it is."""
        if np.asarray(codes).dtype == FIXED_DTYPE:
            return np.asarray(codes)
        return _pack(np.asarray(codes, dtype=np.int64), self.p.frac_bits)

    def to_float(self, x: np.ndarray) -> np.ndarray:
        c = x["c"].astype(np.float64)
        c = np.where(x["c"] >= POS, np.inf, np.where(x["c"] <= NEG, -np.inf, c))
        return c * np.exp2(-x["f"].astype(np.float64))

    def from_float(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        f = self.p.prob_bits
        c = np.round(np.where(np.isfinite(x), x, 0.0) * 2.0 ** f)
        c = np.where(np.isposinf(x) | (c >= 2.0**62), POS, np.where(np.isneginf(x) | (c <= -2.0**62), NEG, c))
        return _pack(c.astype(np.int64), f)

    def to_output(self, x: np.ndarray) -> np.ndarray:
        """Floor to ``output_frac_bits``, saturate to ``output_bits`` (the AV output stage)."""
        p = self.p
        lo, hi = -(1 << (p.output_bits - 1)), (1 << (p.output_bits - 1)) - 1
        return np.clip(_shift(x["c"], p.output_frac_bits - x["f"]), lo, hi).astype(np.int64)

    def fill(self, shape: tuple[int, ...], x: float = 0.0) -> np.ndarray:
        return np.full(shape, self.const(x), dtype=self.dtype)

    def is_inf(self, x: np.ndarray) -> np.ndarray:
        return np.abs(x["c"]) >= POS

    # ---- op classes ---------------------------------------------------------------------------
    def _aligned(self, a: np.ndarray, b: np.ndarray):
        f = np.maximum(a["f"], b["f"])
        return _shift(a["c"], f - a["f"]), _shift(b["c"], f - b["f"]), f

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact: aligned to the finer scale; an infinity absorbs a finite operand."""
        ca, cb, f = self._aligned(a, b)
        ia, ib = np.abs(ca) >= POS, np.abs(cb) >= POS
        c = np.where(ia, ca, np.where(ib, cb, ca + cb))
        return _pack(c, f)

    def neg(self, a: np.ndarray) -> np.ndarray:
        return _pack(-a["c"], a["f"])

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a - b`` exact; equal infinities give that infinity."""
        same_inf = self.is_inf(a) & (a["c"] == b["c"])
        return np.where(same_inf, a, self.add(a, self.neg(b)))

    @staticmethod
    def _product(ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
        big = np.abs(ca).max(initial=0).astype(object) * np.abs(cb).max(initial=0).astype(object)
        if big >= (1 << 62):
            return ca.astype(object) * cb.astype(object)
        return ca * cb

    def _mul_exact(self, a, b):
        ca, cb = np.broadcast_arrays(a["c"], b["c"])
        inf = (np.abs(ca) >= POS) | (np.abs(cb) >= POS)
        zero = (ca == 0) | (cb == 0)
        sign = np.sign(ca) * np.sign(cb)
        prod = self._product(np.where(inf, 1, ca), np.where(inf, 1, cb))
        return prod, inf & ~zero, sign

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact product floored to ``max(fa, fb)`` fraction bits; a sentinel times non-zero is a signed
        sentinel, times 0 the operands' 1 x 1 floored (0 unless ``min(fa, fb) <= 0``)."""
        prod, inf, sign = self._mul_exact(a, b)
        fa, fb = np.broadcast_arrays(a["f"], b["f"])
        f = np.maximum(fa, fb)
        drop = fa + fb - f                                      # = min(fa, fb)
        if prod.dtype == object:
            c = np.array([int(x) >> int(k) if k >= 0 else int(x) << int(-k)
                          for x, k in zip(prod.ravel(), np.broadcast_to(drop, prod.shape).ravel())],
                         dtype=object).reshape(prod.shape)
            if np.any(np.abs(c) >= int(POS)):
                raise OverflowError("fixed-point product exceeds 62 bits")
            c = c.astype(np.int64)
        else:
            c = np.where(drop >= 0, prod >> np.clip(drop, 0, 63), prod << np.clip(-drop, 0, 62))
        c = np.where(inf, np.where(sign < 0, NEG, POS), c)
        return _pack(c, f)

    def product(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a * b`` exact at ``fa + fb`` fraction bits (no floor): the term :meth:`mac` adds (``mac`` =
        ``add(acc, product)``, exact: a wide accumulator); a sentinel times non-zero is a signed
        sentinel, times 0 the code 1 (the operands taken as 1 x 1: one unit at ``fa + fb``)."""
        prod, inf, sign = self._mul_exact(a, b)
        if prod.dtype == object:
            raise OverflowError("fixed-point MAC product exceeds 62 bits")
        return _pack(np.where(inf, np.where(sign < 0, NEG, POS), prod), a["f"] + b["f"])

    def maximum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact (aligned compare)."""
        ca, cb, f = self._aligned(a, b)
        return _pack(np.maximum(ca, cb), f)

    def minimum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ca, cb, f = self._aligned(a, b)
        return _pack(np.minimum(ca, cb), f)

    def compare(self, op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ca, cb, _ = self._aligned(a, b)
        return {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
                "==": np.equal, "!=": np.not_equal}[op](ca, cb)

    def select(self, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(cond, a, b)

    def exp(self, x: np.ndarray, premul: float | None = None) -> np.ndarray:
        """``exp(premul * x)`` by the base-2 LUT unit; the constant folds log2(e) and ``premul``."""
        p = self.p
        c = 1.0 if premul is None else float(premul)
        const = int(round(LOG2E * abs(c) * (1 << p.scale_bits)))
        d = x["c"] if c >= 0 else -x["c"]
        d = np.where(np.abs(x["c"]) >= POS, np.sign(d) * POS, d)
        shift = p.scale_bits + x["f"] - p.exp_frac_bits
        out = np.empty(np.shape(d), dtype=np.int64)
        for k in np.unique(shift):                               # one shift per input scale
            sel = shift == k
            dd = np.where(np.abs(d[sel]) >= POS, 0, d[sel])
            r = exp2_lut(np.clip(dd, -(1 << 40), 1 << 40), const, int(k), p.exp_frac_bits, p.prob_bits,
                         self.exp_lut)
            r = np.where(d[sel] <= NEG, 0, np.where(d[sel] >= POS, POS, r))
            out[sel] = r
        return _pack(out, p.prob_bits)

    def recip(self, x: np.ndarray) -> np.ndarray:
        """LUT seed + Newton-Raphson on the code; ``1/0 = +inf``, ``1/inf = 0``, sign restored."""
        p = self.p
        cx = x["c"]
        mag = np.abs(cx)
        ok = (mag >= 1) & (mag < POS)
        y, s = recip_nr(np.where(ok, mag, 1), p.recip_bits, p.recip_lut_bits, p.recip_nr_steps, self.recip_lut)
        y = np.where(cx < 0, -y, y)
        y = np.where(mag == 0, POS, np.where(mag >= POS, 0, y))
        return _pack(y, np.where(ok, p.recip_bits + s - x["f"], 0))

    def div(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.mul(a, self.recip(b))

    def log(self, x: np.ndarray) -> np.ndarray:
        """The log unit: ``ln`` of the code's 24 leading bits by the fp32 log datapath, rounded to
        nearest at ``prob_bits`` (:mod:`.fixed_fn`); ``x <= 0`` gives ``-inf``, ``+inf`` stays."""
        from einloom.sim.formats.arith.fixed_fn import fixed_log_code
        return _pack(fixed_log_code(x["c"], x["f"], self.p.prob_bits), self.p.prob_bits)

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        """``recip(add(1, exp(-x)))``: the exp, add and reciprocal units in series (:mod:`.fixed_fn`)."""
        return self.recip(self.add(self.const(1.0), self.exp(x, premul=-1.0)))

    def apply_float(self, function, *args: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.from_float(np.asarray(function(*(self.to_float(a) for a in args)), dtype=np.float64))
