"""bf16 storage with fp32 arithmetic: the bit-exact unit models of ``einloom.rtl.float``.

Every function here takes and returns *bit patterns* (``numpy.uint16`` for bf16, ``numpy.uint32``
for fp32), is vectorized over NumPy broadcasting, and computes exactly what the matching Amaranth
unit in ``einloom.rtl.float`` computes, bit for bit. ``tests/sim/test_bf16*.py`` check the model
against ml_dtypes / NumPy float32 where the semantics coincide and measure its error against
float64; ``tests/rtl/test_float_*.py`` check the RTL against this model.

Arithmetic conventions (shared by all units)
--------------------------------------------
* **Flush to zero.** A subnormal input is read as a zero of the same sign. A result whose exponent,
  after rounding with an unbounded exponent range, is below the normal range becomes a zero with the
  result's sign (x86 FTZ/DAZ semantics). Otherwise results equal IEEE 754 for normal numbers.
* **Rounding.** ``fp32_to_bf16``, ``fp32_add``, ``fp32_mul``: round to nearest, ties to even.
  ``bf16_mul`` is exact (a bf16 x bf16 product has 16 significant bits), so ``fp32_add(acc,
  bf16_mul(a, b))`` is a fused multiply-add with a single rounding.
  ``fp32_exp`` and ``fp32_recip`` are approximations (fixed-point datapaths, last step rounds half
  up); their measured error is documented in their docstrings and re-measured by the tests.
* **Overflow** gives a signed infinity (round-to-nearest semantics).
* **NaN.** Any NaN result is the canonical quiet NaN, ``0x7FC00000`` (fp32) / ``0x7FC0`` (bf16);
  invalid operations (inf - inf, 0 * inf) give it too.
* **Infinities** follow IEEE: in particular ``fp32_exp(-inf) = +0`` and ``fp32_max(-inf, x) = x``,
  which is what attention masking relies on; ``fp32_max`` orders ``-0 < +0`` and propagates NaN.

Measured errors against float64 (``benchmarks/bf16_errors.py`` prints them; tests assert the bounds)
------------------------------------------------------------------------------------------------
* ``fp32_to_bf16``, ``fp32_add``, ``fp32_mul``: correctly rounded, <= 0.5 ulp.
* ``bf16_mul``, ``bf16_to_fp32``: exact.
* ``fp32_exp``: <= 0.81 fp32 ulp measured (random inputs in [-88, 88], all bf16 inputs); bound ``EXP_MAX_ULP``.
* ``fp32_recip``: <= 0.515 fp32 ulp measured over every significand; bound ``RECIP_MAX_ULP``.
* 1-pass attention (``golden_attention_bf16``) vs float64 attention of the same bf16 inputs:
  max|err| / max|AV| about 0.5e-3 .. 1.3e-3 with an fp32 output and 1.4e-3 .. 3.4e-3 with the
  bf16 output (E = F = 8 .. 64, M up to 256, tiles 4 .. 64, causal or not). The dominant term is
  the rounding of the probabilities to bf16 before the PV product (2**-9 relative), as in
  FlashAttention-2; the exp, reciprocal and fp32 sums contribute ~1e-7.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FP32_NAN", "BF16_NAN", "FP32_NEG_INF", "FP32_POS_INF", "FP32_ONE",
    "EXP_MAX_ULP", "RECIP_MAX_ULP",
    "EXP_TABLE", "EXP_LOG2E_Q31", "EXP_LN2_Q32", "RECIP_SEED_TABLE",
    "fp32_bits", "fp32_value", "bf16_bits", "bf16_value", "bf16_quantize",
    "bf16_to_fp32", "fp32_to_bf16", "bf16_mul", "fp32_mul", "fp32_add", "fp32_sub", "fp32_sum_interleaved",
    "interleaved_combine_cycles",
    "fp32_max", "fp32_exp", "fp32_recip", "fp32_ulp_error",
]

FP32_NAN = 0x7FC00000
BF16_NAN = 0x7FC0
FP32_POS_INF = 0x7F800000
FP32_NEG_INF = 0xFF800000
FP32_ONE = 0x3F800000

#: Bounds that the tests assert for the approximate units (fp32 ulps of the exact result).
EXP_MAX_ULP = 0.85
RECIP_MAX_ULP = 0.52

# --- exp constants (shared with the RTL) -------------------------------------------------------
#: log2(e) as an unsigned 1.31 fixed-point number.
EXP_LOG2E_Q31 = round(math.log2(math.e) * 2**31)
#: ln(2) as an unsigned 0.32 fixed-point number.
EXP_LN2_Q32 = round(math.log(2) * 2**32)
#: 2**(i/256) for i in 0..255 as unsigned 1.31 fixed-point numbers.
EXP_TABLE = tuple(round(2 ** (i / 256) * 2**31) for i in range(256))

# --- reciprocal constants (shared with the RTL) ------------------------------------------------
#: Seed 1/m for m in the middle of [1 + i/128, 1 + (i+1)/128), unsigned 1.11 fixed point (12 bits).
RECIP_SEED_TABLE = tuple(round(2**11 / (1 + (i + 0.5) / 128)) for i in range(128))

_M23 = 0x7FFFFF
_I64 = np.int64
_U64 = np.uint64


# ----------------------------------------------------------------------------------------------
# bit-pattern helpers
# ----------------------------------------------------------------------------------------------

def fp32_bits(x: ArrayLike) -> NDArray[np.uint32]:
    """Bit patterns of ``x`` rounded to float32 (NumPy's round-to-nearest-even)."""
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def fp32_value(bits: ArrayLike) -> NDArray[np.float32]:
    """float32 values of fp32 bit patterns."""
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def bf16_bits(x: ArrayLike) -> NDArray[np.uint16]:
    """Bit patterns of ``x``: first rounded to float32 by NumPy, then to bf16 by ``fp32_to_bf16``."""
    return fp32_to_bf16(fp32_bits(x))


def bf16_value(bits: ArrayLike) -> NDArray[np.float32]:
    """float32 values of bf16 bit patterns (exact; subnormals are kept, not flushed)."""
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def bf16_quantize(x: ArrayLike) -> NDArray[np.float32]:
    """``x`` rounded to bf16 (via float32), returned as float32 values."""
    return bf16_value(bf16_bits(x))


def _fields32(bits: ArrayLike) -> tuple[NDArray, NDArray, NDArray]:
    b = np.asarray(bits, dtype=np.uint32).astype(_I64)
    return b >> 31, (b >> 23) & 0xFF, b & _M23


def _pack32(sign: NDArray, exp: NDArray, man: NDArray) -> NDArray[np.uint32]:
    return ((sign << 31) | (exp << 23) | (man & _M23)).astype(np.uint32)


def _bit_length(z: NDArray) -> NDArray:
    """Bit length of non-negative int64 values below 2**53 (0 for 0)."""
    return np.frexp(z.astype(np.float64))[1].astype(_I64)


def _finish(sign: NDArray, exp: NDArray, sig: NDArray) -> NDArray[np.uint32]:
    """Pack a rounded 24-bit significand (leading one at bit 23) with overflow to inf and FTZ."""
    big = exp >= 255
    tiny = exp <= 0
    out = _pack32(sign, np.clip(exp, 0, 255), sig)
    out = np.where(big, _pack32(sign, np.full_like(exp, 255), np.zeros_like(sig)), out)
    out = np.where(tiny, (sign << 31).astype(np.uint32), out)
    return out.astype(np.uint32)


# ----------------------------------------------------------------------------------------------
# conversions
# ----------------------------------------------------------------------------------------------

def bf16_to_fp32(a: ArrayLike) -> NDArray[np.uint32]:
    """Widen bf16 to fp32: exact; subnormal -> signed zero; NaN -> canonical NaN. RTL: ``Bf16ToFp32``."""
    b = np.asarray(a, dtype=np.uint16).astype(np.uint32)
    e = (b >> 7) & 0xFF
    m = b & 0x7F
    out = b << 16
    out = np.where(e == 0, (b & 0x8000) << 16, out)
    out = np.where((e == 255) & (m != 0), FP32_NAN, out)
    return out.astype(np.uint32)


def fp32_to_bf16(a: ArrayLike) -> NDArray[np.uint16]:
    """Round fp32 to bf16, nearest-even; overflow -> inf; subnormal -> signed zero; NaN -> ``0x7FC0``.

    Equals ``ml_dtypes`` float32 -> bfloat16 casting for every non-NaN input with a normal or zero
    exponent field. RTL: ``Fp32ToBf16``.
    """
    b = np.asarray(a, dtype=np.uint32).astype(_I64)
    e = (b >> 23) & 0xFF
    lsb = (b >> 16) & 1
    out = (b + 0x7FFF + lsb) >> 16
    out = np.where(e == 0, (b >> 16) & 0x8000, out)
    out = np.where((e == 255) & ((b & _M23) != 0), BF16_NAN, out)
    out = np.where((e == 255) & ((b & _M23) == 0), b >> 16, out)
    return out.astype(np.uint16)


# ----------------------------------------------------------------------------------------------
# multiply
# ----------------------------------------------------------------------------------------------

def bf16_mul(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint32]:
    """Exact product of two bf16 numbers as fp32 (no rounding; FTZ and inf on overflow). RTL: ``Bf16Mul``."""
    fa = bf16_to_fp32(a)
    fb = bf16_to_fp32(b)
    return fp32_mul(fa, fb)  # a product of two 8-bit significands is exact in 24 bits


def fp32_mul(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint32]:
    """fp32 product, round to nearest even, FTZ. RTL: ``Fp32Mul`` (and ``Bf16Mul``)."""
    sa, ea, fa = _fields32(a)
    sb, eb, fb = _fields32(b)
    sa, ea, fa, sb, eb, fb = np.broadcast_arrays(sa, ea, fa, sb, eb, fb)
    sign = sa ^ sb
    za, zb = ea == 0, eb == 0
    ia, ib = (ea == 255) & (fa == 0), (eb == 255) & (fb == 0)
    na, nb = (ea == 255) & (fa != 0), (eb == 255) & (fb != 0)

    prod = (fa | (1 << 23)) * (fb | (1 << 23))          # 48 bits, in [2**46, 2**48)
    exp = ea + eb - 127
    hi = prod >= (1 << 47)
    shift = np.where(hi, 24, 23)
    exp = exp + hi
    sig = prod >> shift
    rest = prod & ((_I64(1) << shift) - 1)
    half = _I64(1) << (shift - 1)
    up = (rest > half) | ((rest == half) & ((sig & 1) == 1))
    sig = sig + up
    carry = sig >= (1 << 24)
    sig = np.where(carry, sig >> 1, sig)
    exp = exp + carry
    out = _finish(sign, exp, sig)

    out = np.where(za | zb, (sign << 31).astype(np.uint32), out)
    out = np.where(ia | ib, _pack32(sign, np.full_like(sign, 255), np.zeros_like(sign)), out)
    out = np.where(((ia | ib) & (za | zb)) | na | nb, FP32_NAN, out)
    return out.astype(np.uint32)


# ----------------------------------------------------------------------------------------------
# add
# ----------------------------------------------------------------------------------------------

def fp32_add(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint32]:
    """fp32 sum, round to nearest even, FTZ; exact zero sums are +0 unless both addends are -0.

    Algorithm (the RTL's): order by magnitude, align the smaller significand with guard, round and
    sticky bits (27 bits), add or subtract, normalize (leading-zero count), round, pack.
    RTL: ``Fp32Add``.
    """
    a = np.asarray(a, dtype=np.uint32)
    b = np.asarray(b, dtype=np.uint32)
    a, b = np.broadcast_arrays(a, b)
    sa, ea, fa = _fields32(a)
    sb, eb, fb = _fields32(b)
    # flush subnormal inputs: magnitude key 0
    ka = np.where(ea == 0, 0, a.astype(_I64) & 0x7FFFFFFF)
    kb = np.where(eb == 0, 0, b.astype(_I64) & 0x7FFFFFFF)
    na, nb = (ea == 255) & (fa != 0), (eb == 255) & (fb != 0)
    ia, ib = (ea == 255) & (fa == 0), (eb == 255) & (fb == 0)

    swap = kb > ka
    s_l, e_l, k_l = np.where(swap, sb, sa), np.where(swap, eb, ea), np.where(swap, kb, ka)
    s_s, e_s, k_s = np.where(swap, sa, sb), np.where(swap, ea, eb), np.where(swap, ka, kb)
    sig_l = np.where(e_l == 0, 0, (k_l & _M23) | (1 << 23)) << 3      # 27 bits: 1.23 + G R S
    sig_s = np.where(e_s == 0, 0, (k_s & _M23) | (1 << 23)) << 3
    d = np.minimum(e_l - e_s, 31)
    aligned = sig_s >> d
    sticky = (sig_s & ((_I64(1) << d) - 1)) != 0
    aligned = aligned | sticky
    sub = s_l != s_s
    z = np.where(sub, sig_l - aligned, sig_l + aligned)             # 28 bits, >= 0

    msb = _bit_length(z) - 1                                         # -1 for z == 0
    carry = msb == 27
    left = np.clip(26 - msb, 0, 27)
    z = np.where(carry, (z >> 1) | (z & 1), z << left)
    exp = np.where(carry, e_l + 1, e_l - left)
    lsb = (z >> 3) & 1
    grs = z & 7
    up = (grs > 4) | ((grs == 4) & (lsb == 1))
    sig = (z >> 3) + up
    rcarry = sig >= (1 << 24)
    sig = np.where(rcarry, sig >> 1, sig)
    exp = exp + rcarry
    out = _finish(s_l, exp, sig)

    zero_sign = (sa & sb).astype(np.uint32) << 31
    out = np.where(z == 0, zero_sign, out)
    inf_a = _pack32(sa, np.full_like(sa, 255), np.zeros_like(sa))
    inf_b = _pack32(sb, np.full_like(sb, 255), np.zeros_like(sb))
    out = np.where(ib, inf_b, out)
    out = np.where(ia, inf_a, out)
    out = np.where(na | nb | (ia & ib & (sa != sb)), FP32_NAN, out)
    return out.astype(np.uint32)


def fp32_sub(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint32]:
    """``a - b`` as ``fp32_add(a, -b)`` (the RTL flips b's sign bit in front of ``Fp32Add``)."""
    return fp32_add(a, np.asarray(b, dtype=np.uint32) ^ np.uint32(0x80000000))


# ----------------------------------------------------------------------------------------------
# pipelined accumulation: interleaved partial sums
# ----------------------------------------------------------------------------------------------

def fp32_sum_interleaved(terms: ArrayLike, latency: int, axis: int = 0) -> NDArray[np.uint32]:
    """Sum of the fp32 ``terms`` along ``axis`` as a pipelined accumulator of adder latency ``L``
    computes it (RTL: ``einloom.rtl.float.accumulate.Fp32Accumulator``).

    An adder of latency L that loops its result back can only add a term to the sum issued L cycles
    earlier, so the terms fall into L interleaved partial sums.  The order (it fixes the bits):

    * ``L = 1``: the sequential chain ``fp32_add(...fp32_add(fp32_add(+0, x0), x1)..., x[E-1])``
      (the order of a single-cycle accumulator);
    * ``L >= 2``: partial sum ``P_k`` (k = 0..L-1) is the chain from +0, in ascending e, over the
      terms ``e`` with ``e = E + k (mod L)``: ``P_k``'s last term is ``E - L + k``, so the partials are
      numbered in the order the adder pipeline releases them after the last term (when E is a
      multiple of L, ``P_k`` holds the terms ``e = k (mod L)``; a partial with no term, E < L, is +0).
      The result is the chain from +0 over the partials in that order,
      ``fp32_add(...fp32_add(fp32_add(+0, P_0), P_1)..., P_{L-1})``.

    Parameters
    ----------
    terms : array of fp32 bit patterns
        E >= 1 terms along ``axis``.
    latency : int
        L >= 1.
    axis : int
        The summed axis.
    """
    if latency < 1:
        raise ValueError(f"latency must be >= 1, not {latency}")
    x = np.moveaxis(np.asarray(terms, dtype=np.uint32), axis, 0)
    count = x.shape[0]
    zero = np.zeros(x.shape[1:], dtype=np.uint32)
    if latency == 1:
        acc = zero
        for e in range(count):
            acc = fp32_add(acc, x[e])
        return acc
    total = zero
    for k in range(latency):
        part = zero
        for e in range((count + k) % latency, count, latency):
            part = fp32_add(part, x[e])
        total = fp32_add(total, part)
    return total


def interleaved_combine_cycles(latency: int) -> int:
    """Cycles from an interleaved accumulator's last term to its sum (``Fp32Accumulator``): 1 for
    L = 1; for L >= 2 the first partial is taken as it leaves the pipeline (cycle 1 after the last
    term), each further one is added through the same adder (L cycles each), ``2 + (L-1) * L``."""
    return 1 if latency == 1 else 2 + (latency - 1) * latency


# ----------------------------------------------------------------------------------------------
# max
# ----------------------------------------------------------------------------------------------

def _order_key(bits: NDArray) -> NDArray:
    """Map sign-magnitude fp32 bits to integers whose order is the float order (-0 < +0)."""
    b = bits.astype(_I64)
    return np.where(b >> 31 == 1, 0x7FFFFFFF - (b & 0x7FFFFFFF), b + 0x7FFFFFFF + 1)


def fp32_max(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint32]:
    """Larger of two fp32 numbers: subnormals read as signed zeros, ``-0 < +0``, NaN wins. RTL: ``Fp32Max``."""
    a = np.asarray(a, dtype=np.uint32)
    b = np.asarray(b, dtype=np.uint32)
    a, b = np.broadcast_arrays(a, b)
    ea, eb = (a >> 23) & 0xFF, (b >> 23) & 0xFF
    a = np.where(ea == 0, a & np.uint32(0x80000000), a)
    b = np.where(eb == 0, b & np.uint32(0x80000000), b)
    out = np.where(_order_key(a) >= _order_key(b), a, b)
    nan = ((ea == 255) & ((a & _M23) != 0)) | ((eb == 255) & ((b & _M23) != 0))
    return np.where(nan, FP32_NAN, out).astype(np.uint32)


# ----------------------------------------------------------------------------------------------
# exp
# ----------------------------------------------------------------------------------------------

def fp32_exp(x: ArrayLike) -> NDArray[np.uint32]:
    """``e**x`` in fp32 by base-2 range reduction. RTL: ``Fp32Exp``.

    Datapath (all fixed point, truncating unless stated):

    1. ``X = |x|`` as unsigned 7.25 fixed point (32 bits, rounded half up); ``|x| >= 128`` is out of range
       (result +inf for x > 0, +0 for x < 0).
    2. ``t = X * log2(e)`` with log2(e) as 1.31 (``EXP_LOG2E_Q31``), kept with 32 fraction bits;
       negated for x < 0. ``n = floor(t)``, ``f = t - n`` in [0, 1).
    3. ``2**f = EXP_TABLE[f's top 8 bits] * (1 + a + a*a/2)``, ``a = r * ln2`` where r (< 2**-8) is
       f's remaining 24 bits; ``a`` and ``a*a/2`` are 0.31 fixed point.
    4. Normalize the product (1 or 2 integer bits), round its 24-bit significand half up, add n
       to the exponent; exponents outside [1, 254] give +0 (FTZ) or +inf.

    Specials: NaN -> NaN, +inf -> +inf, -inf -> +0, ±0 and subnormals -> 1.0.
    Measured error <= ``EXP_MAX_ULP`` fp32 ulps over [-88, 88].
    """
    s, e, f = _fields32(x)
    sig = np.where(e == 0, 0, f | (1 << 23))
    lsh = np.clip(e - 125, 0, 8)
    rsh = np.clip(125 - e, 0, 31)
    half = (_I64(1) << rsh) >> 1                                    # round |x| to nearest (ties up)
    mag = (((sig << lsh) + half) >> rsh).astype(_U64)              # 7.25, < 2**32 when e <= 133
    prod = mag * _U64(EXP_LOG2E_Q31)                                # 56 fraction bits, < 2**64
    tmag = (prod >> _U64(24)).astype(_I64)                          # 32 fraction bits
    t = np.where(s == 1, -tmag, tmag)
    n = t >> 32
    frac = t & 0xFFFFFFFF
    idx = frac >> 24
    r = frac & 0xFFFFFF                                             # 0.32, < 2**-8
    a = (r * EXP_LN2_Q32) >> 33                                     # 0.31
    a2 = (a * a) >> 32                                              # a*a/2 as 0.31
    q = (1 << 31) + a + a2                                          # 1.31
    y = np.asarray(EXP_TABLE, dtype=_U64)[idx] * q.astype(_U64)     # 2.62, < 2**64
    two = y >= _U64(1 << 63)
    shift = np.where(two, 40, 39).astype(_U64)
    sig24 = ((y + (_U64(1) << (shift - _U64(1)))) >> shift).astype(_I64)
    n = n + two
    over = sig24 >= (1 << 24)
    sig24 = np.where(over, sig24 >> 1, sig24)
    n = n + over
    out = _finish(np.zeros_like(n), n + 127, sig24)

    big = e >= 134
    out = np.where(big & (s == 0), FP32_POS_INF, out)
    out = np.where(big & (s == 1), 0, out)                          # includes -inf
    out = np.where((e == 255) & (f != 0), FP32_NAN, out)
    return out.astype(np.uint32)


# ----------------------------------------------------------------------------------------------
# reciprocal
# ----------------------------------------------------------------------------------------------

def fp32_recip(x: ArrayLike) -> NDArray[np.uint32]:
    """``1/x`` in fp32: table seed + two Newton-Raphson steps. RTL: ``Fp32Recip``.

    Datapath (fixed point, truncating): significand ``m`` as 1.23; seed ``y0`` from
    ``RECIP_SEED_TABLE`` indexed by m's top 7 fraction bits (1.11, ~2**-8 relative error), as 2.30;
    twice ``y = y * (2 - m*y)`` with ``m*y`` and ``y`` in 2.30; normalize ``y`` (in (1/2, 1]) to a
    24-bit significand rounded half up; exponent ``253 - e`` (or ``254 - e`` when y >= 1).

    Specials: ±0 and subnormals -> ±inf, ±inf -> ±0, NaN -> NaN, results below the normal range -> ±0.
    Measured error <= ``RECIP_MAX_ULP`` fp32 ulps.
    """
    s, e, f = _fields32(x)
    m = f | (1 << 23)
    y = np.asarray(RECIP_SEED_TABLE, dtype=_I64)[f >> 16] << 19    # 1.11 -> 2.30
    for _ in range(2):
        my = (m * y) >> 23                                          # 2.30
        y = (y * ((1 << 31) - my)) >> 30                            # < 2**64: both factors < 2**32
    ge1 = y >= (1 << 30)
    shift = np.where(ge1, 7, 6)
    sig = (y + (_I64(1) << (shift - 1))) >> shift
    exp = np.where(ge1, 254 - e, 253 - e)
    over = sig >= (1 << 24)
    sig = np.where(over, sig >> 1, sig)
    exp = exp + over
    out = _finish(s, exp, sig)
    out = np.where(e == 0, _pack32(s, np.full_like(s, 255), np.zeros_like(s)), out)
    out = np.where((e == 255) & (f == 0), (s << 31).astype(np.uint32), out)
    out = np.where((e == 255) & (f != 0), FP32_NAN, out)
    return out.astype(np.uint32)


# ----------------------------------------------------------------------------------------------
# error measurement
# ----------------------------------------------------------------------------------------------

def fp32_ulp_error(bits: ArrayLike, exact: ArrayLike) -> NDArray[np.float64]:
    """|fp32 value - exact| in units of the fp32 ulp at ``exact`` (float64); normal range only."""
    got = fp32_value(bits).astype(np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    expo = np.floor(np.log2(np.maximum(np.abs(exact), 2.0**-126)))
    return np.abs(got - exact) / np.exp2(expo - 23)


