"""Fixed-point sigmoid and natural log: the bit-exact models of the fixed-point lanes' units.

Values are :class:`~einloom.sim.formats.arith.fixed.FixedArith`'s self-describing ``(code, f)`` pairs
(value ``c * 2**-f``, ``+-2**62`` the infinity sentinels).  The RTL twins are
``einloom.rtl.lanes.fixed_units.FixedSigmoidUnit`` and ``FixedLogUnit``;
``tests/rtl/lanes/test_fixed_units.py`` checks them against these functions bit for bit and
``tests/sim/test_fixed_fn.py`` measures their error against float64.  ``ulp`` below is one unit of
``2**-prob_bits`` (the probabilities' scale, what :meth:`FixedArith.from_float` rounds to).

sigmoid
-------
``sigmoid(x) = recip(add(1, exp(-x)))``: the format's own exp (base-2 LUT, constant
``-round(log2(e) 2**scale_bits)``), exact add and LUT + Newton-Raphson reciprocal in series, exactly
as ``FixedArith`` defines them (:meth:`FixedArith.sigmoid`); the result keeps the reciprocal's scale
(``f = recip_bits + s - prob_bits``, 17 or 18 fraction bits for ``x`` near 0 with the presets), as a
division does.  Error: the exp's LUT step ``2**-exp_frac_bits`` in the exponent (relative
``ln 2 * 2**-exp_frac_bits``) dominates; ``|sigmoid'| <= 1/4`` turns it into an absolute error of
at most ``SIGMOID_MAX_ERR`` (measured 6.83e-4 over x in [-40, 40] at input fraction bits 4 to 20,
the int8/int16 presets, exp_frac_bits 8: 22.4 ulps of 2**-15; the reciprocal adds about 2**-17;
relative to sigmoid itself 0.28% where the result is small and not 0).  +inf -> ~1 (the reciprocal of
1: ``1 - 2**-16`` with the presets' recip_bits 16), -inf and x <= about -27.73 -> 0 (the exp saturates
to the +inf sentinel once its integer part passes 40 bits; sigmoid(-27.73) = 9.0e-13).

log
---
For ``x = c * 2**-f > 0`` with the leading one of ``c`` at bit ``s``: ``E = s - f`` and the 23 bits of
``c`` below its leading one (truncated when ``s > 23``, zero-filled below) are the fp32 log unit's
``E`` and fraction; :func:`~einloom.sim.formats.arith.fp32_fn.log_q60` (the same tables, series and
60-fraction-bit sum as the bf16 lanes' log unit) gives ``L = ln(x)`` in 60 fraction bits, rounded to
nearest (half up) at ``prob_bits``: ``code = (L + 2**(59 - prob_bits)) >> (60 - prob_bits)``,
``f = prob_bits``.  Error <= ``LOG_MAX_ULP``: 0.5 ulp of the rounding plus the truncation of ``c`` to
24 significant bits (<= 2**-23 in the log, 2**(prob_bits-23) ulp: 0.004 ulp at prob_bits 15, 0.125 at
the largest prob_bits, 20) plus the datapath's ``2**-33`` (measured over 2e5 random codes of 1 to 61 bits
at f -20..59: 0.5034 ulp at prob_bits 15, 0.5064 at 16, 0.615 at 20).
Specials: ``x <= 0`` (the format has no NaN) and ``-inf`` -> the ``-inf`` sentinel, ``+inf`` -> ``+inf``.
"""
from __future__ import annotations

import numpy as np

from einloom.sim.formats.arith.fp32_fn import LOG_FRAC, log_q60

__all__ = ["SIGMOID_MAX_ERR", "LOG_MAX_ULP", "fixed_log_code"]

#: Bound the tests assert on |sigmoid - float64 sigmoid| (absolute) at the presets (exp_frac_bits 8).
SIGMOID_MAX_ERR = 7e-4
#: Bound the tests assert on |log - float64 log| in units of 2**-prob_bits, for prob_bits <= 16.
LOG_MAX_ULP = 0.51

_POS = 1 << 62


def _log_code(c: int, f: int, prob_bits: int) -> int:
    if c >= _POS:
        return _POS
    if c <= 0:
        return -_POS
    s = c.bit_length() - 1
    frac = (c >> (s - 23) if s >= 23 else c << (23 - s)) & ((1 << 23) - 1)
    shift = LOG_FRAC - prob_bits
    return (log_q60(s - f, frac) + (1 << (shift - 1))) >> shift


_LOG_VEC = np.frompyfunc(_log_code, 3, 1)


def fixed_log_code(c: np.ndarray, f: np.ndarray, prob_bits: int) -> np.ndarray:
    """The log unit's result codes (at ``prob_bits`` fraction bits) of the values ``(c, f)``."""
    c, f = np.broadcast_arrays(np.asarray(c, dtype=np.int64), np.asarray(f, dtype=np.int64))
    if c.size == 0:
        return np.zeros(c.shape, dtype=np.int64)
    out = _LOG_VEC(c.astype(object), f.astype(object), int(prob_bits))
    return np.asarray(out, dtype=np.int64).reshape(c.shape)
