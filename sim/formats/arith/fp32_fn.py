"""fp32 sigmoid and natural log: the bit-exact models of the lanes' ``sigmoid`` and ``log`` units.

Same conventions as :mod:`.fp32` (bit patterns in and out, flush to zero, canonical NaN).  The RTL
twins are ``einloom.rtl.lanes.units.SigmoidUnit`` and ``LogUnit``; ``tests/rtl/lanes/test_fn_units.py``
checks them against these functions bit for bit, ``tests/sim/test_fp32_fn.py`` measures their error.

sigmoid
-------
``fp32_sigmoid(x) = fp32_recip(fp32_add(1.0, fp32_exp(-x)))``: the three existing unit models in
series (the sign flip is exact), so the unit is exactly those units chained.  Error (float64 sigmoid
of the same input): the exp (<= 0.85 ulp of e**-x), the add (0.5 ulp) and the reciprocal (0.52 ulp)
compound to <= ``SIGMOID_MAX_ULP`` fp32 ulps (measured 2.21 over 2e5 random inputs in [-88, 88],
2.00 over every bf16 input in (-87, 87)); +inf -> 1, -inf -> +0, NaN -> NaN,
results below 2**-126 (x < about -87.3) flush to +0.

log
---
Table-driven (Tang): for ``x = 2**E * m``, m in [1, 2) as 1.23, ``i`` = m's top 8 fraction bits:

* ``i = 0``: ``r = m - 1`` (exact), ``T = 0``;  ``i = 255``: ``r = m/2 - 1``, ``E + 1``, ``T = 0`` (so the
  arguments next to 1 keep every bit: no cancellation);
* otherwise ``r = m * RI[i] - 1`` with ``RI[i] = round(2**14 / (1 + (i + 0.5) / 256)) * 2**-14``, exact in
  37 fraction bits, and ``T = -ln(RI[i])`` (``LOG_TABLE``, 60 fraction bits, rounded);

always ``|r| < 2**-8``.  ``ln(1 + r) = r * Q`` with ``Q = 1 - r/2 + r**2/3`` (40 fraction bits: ``r**2``
truncated to 40 bits, times ``round(2**24 / 3)``, truncated), the product truncated to 60 fraction bits;
``L = E * ln2 + T + r*Q`` (``LOG_LN2_Q60``, 60 fraction bits, exact integer sum); ``L`` is normalized
and its 24-bit significand rounded half up (magnitude, sign applied after).
Specials: +0, -0 and subnormals -> -inf (flush to zero), +inf -> +inf, negative numbers and NaN ->
NaN, 1.0 -> +0.  Error <= ``LOG_MAX_ULP`` fp32 ulps: measured 0.50 ulp over every positive bf16 number
and 2e5 random fp32 numbers, 0.73 ulp next to 1 (``i`` = 0 or 255, where ``|r|`` reaches 2**-8 and the
series' truncation ``r**4/4`` is up to 2**-26 of the result; elsewhere ``|r| < 2**-9``).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from einloom.sim.formats.arith.fp32 import (
    FP32_NAN, FP32_NEG_INF, FP32_ONE, FP32_POS_INF, fp32_add, fp32_exp, fp32_recip,
)

__all__ = ["SIGMOID_MAX_ULP", "LOG_MAX_ULP", "LOG_RECIP_TABLE", "LOG_TABLE", "LOG_LN2_Q60", "LOG_THIRD_Q24",
           "LOG_FRAC", "log_q60", "fp32_sigmoid", "fp32_log"]

#: Bounds the tests assert (fp32 ulps of the exact float64 result, normal range).
SIGMOID_MAX_ULP = 2.25
LOG_MAX_ULP = 0.75

#: RI[i] as 1.14 fixed point: about 1 / (1 + (i + 0.5) / 256); entries 0 and 255 are not used.
LOG_RECIP_TABLE = tuple(round(2**14 / (1 + (i + 0.5) / 256)) for i in range(256))
#: -ln(RI[i]) in 60 fraction bits (rounded); 0 for the entries 0 and 255.
LOG_TABLE = tuple(0 if i in (0, 255) else round(-math.log(LOG_RECIP_TABLE[i] / 2**14) * 2**60)
                  for i in range(256))
LOG_LN2_Q60 = round(math.log(2) * 2**60)
LOG_THIRD_Q24 = round(2**24 / 3)
LOG_FRAC = 60


def fp32_sigmoid(x: ArrayLike) -> NDArray[np.uint32]:
    """``1 / (1 + e**-x)`` as the exp, add and reciprocal units compute it (see the module doc)."""
    x = np.asarray(x, dtype=np.uint32)
    e = fp32_exp(x ^ np.uint32(0x80000000))
    return fp32_recip(fp32_add(np.uint32(FP32_ONE), e))


def log_q60(big_e: int, frac: int) -> int:
    """``ln(2**big_e * (1 + frac * 2**-23))`` in 60 fraction bits by the table-driven datapath of the
    module doc (Python integers): the part of the log unit that the fp32 ``LogUnit`` and the fixed-point
    ``FixedLogUnit`` share (each normalizes its input to ``big_e`` and a 23-bit ``frac`` and rounds ``L``
    its own way)."""
    m = frac | (1 << 23)                                # 1.23
    i = frac >> 15
    if i == 0:
        r = (m - (1 << 23)) << 14                       # 37 fraction bits
        t = 0
    elif i == 255:
        r = (m - (1 << 24)) << 13                       # m/2 - 1
        big_e += 1
        t = 0
    else:
        r = m * LOG_RECIP_TABLE[i] - (1 << 37)
        t = LOG_TABLE[i]
    r2 = (r * r) >> 34                                  # 40 fraction bits (floor)
    q = (1 << 40) - (r << 2) + ((r2 * LOG_THIRD_Q24) >> 24)
    p = (r * q) >> 17                                   # 77 -> 60 fraction bits (floor)
    return big_e * LOG_LN2_Q60 + t + p


def _log_one(b: int) -> int:
    """The log datapath on one fp32 bit pattern (Python integers: the widths exceed 64 bits)."""
    s, e, f = b >> 31, (b >> 23) & 0xFF, b & 0x7FFFFF
    if e == 255:
        return FP32_NAN if (f != 0 or s) else FP32_POS_INF
    if e == 0:
        return FP32_NEG_INF
    if s:
        return FP32_NAN
    L = log_q60(e - 127, f)
    if L == 0:
        return 0
    sign = 1 if L < 0 else 0
    mag = -L if sign else L
    lead = mag.bit_length() - 1
    if lead >= 24:
        sh = lead - 23
        sig = (mag + (1 << (sh - 1))) >> sh
    else:
        sig = mag << (23 - lead)
    exp = lead - LOG_FRAC + 127
    if sig >> 24:
        sig >>= 1
        exp += 1
    return (sign << 31) | (exp << 23) | (sig & 0x7FFFFF)


_LOG_VEC = np.frompyfunc(_log_one, 1, 1)


def fp32_log(x: ArrayLike) -> NDArray[np.uint32]:
    """Natural log by the table-driven datapath of the module doc (the ``LogUnit``'s model)."""
    x = np.asarray(x, dtype=np.uint32)
    if x.size == 0:
        return x.copy()
    return np.asarray(_LOG_VEC(x.astype(np.int64).astype(object)), dtype=np.int64).astype(np.uint32).reshape(x.shape)
