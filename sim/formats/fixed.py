"""Fixed-point number format and its bit-exact datapath model.

Codes and scales
----------------
============  =====================  ==========================================================
quantity      code                   real value
============  =====================  ==========================================================
Q, K, V       signed ``input_bits``  ``code * 2**-frac_bits``
QK, RM        signed ``acc_bits``    ``code * 2**-(2*frac_bits)`` (exact dot product)
SLN, PRM      unsigned ``prob_bits+1``  ``code * 2**-prob_bits``, in [0, 1]
SLD, RD       unsigned ``acc_bits``  ``code * 2**-prob_bits``
SLNV, RNV     signed ``acc_bits``    ``code * 2**-(prob_bits + frac_bits)``
recip         unsigned ``recip_bits+1``  see :meth:`FixedFormat.reciprocal`
AV            signed ``output_bits`` ``code * 2**-output_frac_bits`` (floor, then saturate)
============  =====================  ==========================================================

exp (``exp_diff``), base-2 range reduction
------------------------------------------
For ``d = x - m <= 0`` (accumulator codes)::

    t   = (d * EXP_CONST) >> (scale_bits + 2*frac_bits - exp_frac_bits)     # floor; t <= 0
    u   = -t                       # |d * scale * log2(e)| in Q.exp_frac_bits, rounded up
    i   = u >> exp_frac_bits       # integer part: a right shift
    fr  = u & (2**exp_frac_bits - 1)
    SLN = EXP_LUT[fr] >> i   (0 when i > prob_bits)

with ``EXP_CONST = round(log2(e) * scale * 2**scale_bits)`` (``scale = 1/sqrt(E)`` or 1) and
``EXP_LUT[j] = round(2**prob_bits * 2**(-j / 2**exp_frac_bits))`` (so ``EXP_LUT[0] = 2**prob_bits`` is
exactly 1.0).  Error: the LUT step ``2**-exp_frac_bits`` in the exponent (relative <= 0.27% for 8 bits)
plus the floor of the shift (<= 1 LSB of ``2**-prob_bits``).

reciprocal (one per query), LUT seed + Newton-Raphson
-----------------------------------------------------
For ``x = RD >= 1`` with leading one at bit ``s`` (``N = recip_bits``, ``L = recip_lut_bits``)::

    mant = x << (N-1-s)  or  x >> (s-(N-1))          # in [2**(N-1), 2**N): Q1.(N-1), truncated
    idx  = (mant >> (N-1-L)) & (2**L - 1)            # L bits below the leading one
    y    = RECIP_LUT[idx] = round(2**(2N-1) / (2**(N-1) + (idx + 0.5) * 2**(N-1-L)))   # ~ 2**N / mant
    repeat recip_nr_steps times:  e = (mant * y) >> (N-1);  y = (y * (2**(N+1) - e)) >> N
    1/x ~= y * 2**-(N + s)

The reciprocal code carries ``y`` and ``s`` as ``y | (s << (N+1))``.

output: ``AV = sat((RNV * y) >> (N + s + frac_bits - output_frac_bits))`` (arithmetic shift = floor).
All intermediate products fit in 63 bits for the validated parameter ranges (see :meth:`validate`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import Any

import numpy as np

from einloom.sim.formats.arith.fixed import LOG2E, exp2_lut, exp_lut_table, recip_lut_table, recip_nr
from einloom.sim.formats.base import NumberFormat, float_attention


@dataclass(frozen=True)
class FixedParams:
    """Parameters of :class:`FixedFormat` (field names are the YAML keys of ``rtl.number_format``)."""

    input_bits: int = 8
    frac_bits: int = 4
    acc_bits: int = 32
    prob_bits: int = 15
    exp_frac_bits: int = 8
    scale_bits: int = 16
    recip_bits: int = 16
    recip_lut_bits: int = 8
    recip_nr_steps: int = 1
    output_bits: int = 16
    output_frac_bits: int = 12


class FixedFormat(NumberFormat):
    """Two's-complement fixed point with a LUT exp and a Newton-Raphson reciprocal (see module doc).

    Parameters
    ----------
    params : FixedParams
    head_dim : int
        E; sets the 1/sqrt(E) scale folded into the exp constant.
    scale : bool
        Apply 1/sqrt(E) (true) or not.
    max_keys : int
        Longest key sequence the running sums must hold without overflow.
    """

    kind = "fixed"

    def __init__(self, params: FixedParams = FixedParams(), *, head_dim: int = 16, scale: bool = True,
                 max_keys: int = 256):
        self.p = params
        self.head_dim = head_dim
        self.scale = scale
        self.max_keys = max_keys
        problems = self.validate()
        if problems:
            raise ValueError("; ".join(problems))
        p = params
        self.input_bits = p.input_bits
        self.output_bits = p.output_bits
        self.scale_value = 1.0 / math.sqrt(head_dim) if scale else 1.0
        self.exp_const = int(round(LOG2E * self.scale_value * (1 << p.scale_bits)))
        self.exp_shift = p.scale_bits + 2 * p.frac_bits - p.exp_frac_bits
        self.exp_lut = exp_lut_table(p.exp_frac_bits, p.prob_bits)
        self.recip_lut = recip_lut_table(p.recip_bits, p.recip_lut_bits)

    # ---- parameter checks -------------------------------------------------------------------
    def validate(self) -> list[str]:
        """Problems with the parameters, each as ``field: message`` (empty when valid)."""
        p = self.p
        out = []
        if p.input_bits not in range(2, 17):
            out.append("input_bits: must be 2..16")
        if not 0 <= p.frac_bits < p.input_bits:
            out.append("frac_bits: must be 0..input_bits-1")
        keys_bits = max(1, math.ceil(math.log2(max(2, self.max_keys))))
        qk_bits = self.qk_bits
        need = max(qk_bits, p.prob_bits + p.input_bits + keys_bits + 1)
        if p.acc_bits < need:
            out.append(f"acc_bits: must be at least {need} for head_dim {self.head_dim}, "
                       f"max_keys {self.max_keys} and prob_bits {p.prob_bits}")
        if p.acc_bits > 40:
            out.append("acc_bits: must be at most 40 (the golden model's 64-bit products)")
        if not 4 <= p.prob_bits <= 20:
            out.append("prob_bits: must be 4..20")
        if not 2 <= p.exp_frac_bits <= 12:
            out.append("exp_frac_bits: must be 2..12 (the exp LUT has 2**exp_frac_bits entries)")
        if not 4 <= p.scale_bits <= 20 or p.scale_bits + 2 * p.frac_bits < p.exp_frac_bits:
            out.append("scale_bits: must be 4..20 and scale_bits + 2*frac_bits >= exp_frac_bits")
        if not 8 <= p.recip_bits <= 20:
            out.append("recip_bits: must be 8..20")
        if not 2 <= p.recip_lut_bits <= min(10, p.recip_bits - 2):
            out.append("recip_lut_bits: must be 2..min(10, recip_bits-2)")
        if not 0 <= p.recip_nr_steps <= 3:
            out.append("recip_nr_steps: must be 0..3")
        if not 2 <= p.output_bits <= 32:
            out.append("output_bits: must be 2..32")
        if not 0 <= p.output_frac_bits < p.output_bits or \
                p.output_frac_bits - p.frac_bits > p.recip_bits + p.prob_bits - 1:
            out.append("output_frac_bits: must be 0..output_bits-1 and at most "
                       "frac_bits + recip_bits + prob_bits - 1")
        return out

    # ---- derived widths (the RTL uses these) ------------------------------------------------
    @property
    def acc_bits(self) -> int:
        return self.p.acc_bits

    @property
    def qk_bits(self) -> int:
        """Bits of a signed QK dot product of ``head_dim`` terms: every score fits them exactly
        (``|q k| <= 2**(2 input_bits - 2)`` per term); ``acc_bits`` is at least this (:meth:`validate`)."""
        return 2 * self.p.input_bits + math.ceil(math.log2(max(2, self.head_dim)))

    @property
    def prob_width(self) -> int:
        """Width of an SLN/PRM code (unsigned, 1.0 representable)."""
        return self.p.prob_bits + 1

    @property
    def shift_bits(self) -> int:
        """Bits of the reciprocal's exponent field s (0..acc_bits-1)."""
        return max(1, (self.p.acc_bits - 1).bit_length())

    @property
    def recip_width(self) -> int:
        return self.p.recip_bits + 1 + self.shift_bits

    def describe(self) -> dict[str, Any]:
        d = {"kind": self.kind, **asdict(self.p), "scale": self.scale, "head_dim": self.head_dim,
             "max_keys": self.max_keys, "exp_const": self.exp_const, "exp_shift": self.exp_shift}
        return d

    # ---- conversion -------------------------------------------------------------------------
    def quantize(self, x: np.ndarray) -> np.ndarray:
        lo, hi = -(1 << (self.p.input_bits - 1)), (1 << (self.p.input_bits - 1)) - 1
        return np.clip(np.round(np.asarray(x, dtype=np.float64) * (1 << self.p.frac_bits)), lo, hi
                       ).astype(np.int64)

    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(codes, dtype=np.float64) / (1 << self.p.frac_bits)

    def output_to_float(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(codes, dtype=np.float64) / (1 << self.p.output_frac_bits)

    def from_wire_output(self, patterns: np.ndarray) -> np.ndarray:
        b = self.p.output_bits
        x = np.asarray(patterns, dtype=np.int64) & ((1 << b) - 1)
        return np.where(x >= (1 << (b - 1)), x - (1 << b), x)

    # ---- primitives -------------------------------------------------------------------------
    def dot(self, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.asarray(k, dtype=np.int64) @ np.asarray(q, dtype=np.int64)

    def maximum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(a, b)

    def exp_diff(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        d = np.asarray(x, dtype=np.int64) - np.asarray(m, dtype=np.int64)
        if np.any(d > 0):
            raise ValueError("exp_diff needs x <= m")
        return exp2_lut(d, self.exp_const, self.exp_shift, self.p.exp_frac_bits, self.p.prob_bits, self.exp_lut)

    def prob_zero(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.int64)

    def acc_zero(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.int64)

    def prob_add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def column_mac(self, psum: np.ndarray, sln: np.ndarray, v: np.ndarray) -> np.ndarray:
        return psum + sln * v

    def rescale_add(self, prm: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        return ((prm * old) >> self.p.prob_bits) + new

    def reciprocal(self, rd: np.ndarray) -> np.ndarray:
        x = np.asarray(rd, dtype=np.int64)
        if np.any(x < 1):
            raise ValueError("reciprocal needs RD >= 1")
        p = self.p
        y, s = recip_nr(x, p.recip_bits, p.recip_lut_bits, p.recip_nr_steps, self.recip_lut)
        return y | (s << (p.recip_bits + 1))

    def split_recip(self, recip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.p.recip_bits
        recip = np.asarray(recip, dtype=np.int64)
        return recip & ((1 << (n + 1)) - 1), recip >> (n + 1)

    def output(self, rnv: np.ndarray, recip: np.ndarray) -> np.ndarray:
        y, s = self.split_recip(recip)
        sh = self.p.recip_bits + s + self.p.frac_bits - self.p.output_frac_bits
        av = (np.asarray(rnv, dtype=np.int64) * y) >> sh
        lo, hi = -(1 << (self.p.output_bits - 1)), (1 << (self.p.output_bits - 1)) - 1
        return np.clip(av, lo, hi)

    def error_bound(self, vmax: float) -> float:
        """Documented bound on |AV_fixed - AV_float64| (inputs already quantized), ``vmax = max|V|``.

        exp: the LUT's exponent step gives a relative error <= ln2 * 2**-exp_frac_bits per weight, in
        numerator and denominator (x2); floors of SLN/rescales add a few 2**-prob_bits; the output floor
        and reciprocal add <= 2 output LSBs.
        """
        p = self.p
        rel = 2 * math.log(2) * 2.0 ** -p.exp_frac_bits + 16 * 2.0 ** -p.prob_bits + 4 * 2.0 ** -p.recip_bits
        return rel * vmax + 2 * 2.0 ** -p.output_frac_bits


def random_attention_error(fmt: FixedFormat, rng: np.random.Generator, m: int, p: int, e: int, f: int, *,
                           causal: bool, tile: int, sd: float = 1.0) -> tuple[float, float]:
    """One random draw: Q, K ~ N(0, sd) [E,P], [E,M], V ~ N(0, 1) [F,M], quantized by ``fmt``; returns
    ``(max |AV_golden - AV_float64|, max |V|)`` with float64 attention of the *quantized* inputs (so
    input quantization is not counted)."""
    q = fmt.quantize(rng.normal(0, sd, (e, p)))
    k = fmt.quantize(rng.normal(0, sd, (e, m)))
    v = fmt.quantize(rng.normal(0, 1, (f, m)))
    from einloom.sim.formats.attention import golden_attention
    av, _ = golden_attention(fmt, q, k, v, tile_m=tile, causal=causal)
    ref = float_attention(fmt.dequantize(q), fmt.dequantize(k), fmt.dequantize(v), scale=fmt.scale_value,
                          causal=causal)
    return float(np.abs(fmt.output_to_float(av) - ref).max()), float(np.abs(fmt.dequantize(v)).max())


#: Named fixed-point presets (``rtl.number_format.preset`` may name one).
PRESETS: dict[str, FixedParams] = {
    "int8": FixedParams(),
    "int16": FixedParams(input_bits=16, frac_bits=8, acc_bits=40, prob_bits=15, output_bits=24,
                         output_frac_bits=16),
}
