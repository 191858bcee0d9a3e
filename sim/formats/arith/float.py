"""fp32 arithmetic with bf16 operands in the 2D array: the op-class view of :mod:`.fp32`'s unit models.

Values are fp32 bit patterns (``numpy.uint32``); inputs are bf16 codes widened exactly.  Rounding rules:

========  ==================================================================================
add/sub   ``fp32_add``: round to nearest even, subnormals flushed to zero
mul       ``fp32_mul``: round to nearest even
mac       ``fp32_add(acc, bf16_mul(bf16(a), bf16(b)))``: the operands enter the 2D array as bf16
          (``fp32_to_bf16``, nearest even; exact for bf16 inputs), their product is exact, the
          accumulation rounds once (a fused multiply-add)
max, cmp  exact (``fp32_max``; ``-0 < +0``; NaN wins a max, compares false)
exp       ``fp32_exp(fp32_mul(x, c))`` for a constant ``c`` the unit is given (``fp32_exp(x)``
          without one); ``fp32_exp`` <= ``EXP_MAX_ULP`` ulps
recip     ``fp32_recip`` (table seed + 2 Newton-Raphson steps, <= ``RECIP_MAX_ULP`` ulps)
div       ``fp32_mul(a, fp32_recip(b))`` (deferred division: one reciprocal, one multiply)
log       ``fp32_log`` (table-driven, <= ``LOG_MAX_ULP`` ulps; :mod:`.fp32_fn`)
sigmoid   ``fp32_recip(fp32_add(1, fp32_exp(-x)))`` (the exp, add and reciprocal units in series,
          <= ``SIGMOID_MAX_ULP`` ulps; :mod:`.fp32_fn`)
output    ``fp32_to_bf16`` (nearest even) for a bf16 output, the fp32 bits for an fp32 output
========  ==================================================================================
"""
from __future__ import annotations

import numpy as np

from einloom.sim.formats.arith.base import Arith
from einloom.sim.formats.arith.fp32 import (
    bf16_mul, bf16_to_fp32, fp32_add, fp32_bits, fp32_exp, fp32_max, fp32_mul, fp32_recip, fp32_to_bf16,
    fp32_value, _order_key,
)
from einloom.sim.formats.arith.fp32_fn import fp32_log, fp32_sigmoid

_SIGN = np.uint32(0x80000000)


class Fp32Arith(Arith):
    """Op-class primitives of :class:`~einloom.sim.formats.bf16.Bf16Format` (rules in the module doc)."""

    name = "bf16"
    dtype = np.dtype(np.uint32)
    UNIT_OPERATORS = {"sigmoid": "sigmoid"}

    def __init__(self, output: str = "bf16") -> None:
        self.output = output

    def const(self, x: float) -> np.ndarray:
        return np.asarray(fp32_bits(np.float64(x)), dtype=np.uint32)

    def from_input(self, codes: np.ndarray) -> np.ndarray:
        return bf16_to_fp32(np.asarray(codes).astype(np.uint16))

    def to_float(self, x: np.ndarray) -> np.ndarray:
        return fp32_value(np.asarray(x, dtype=np.uint32)).astype(np.float64)

    def from_float(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(fp32_bits(np.asarray(x, dtype=np.float64)), dtype=np.uint32)

    def to_output(self, x: np.ndarray) -> np.ndarray:
        """``fp32_to_bf16`` (bf16 output) or the fp32 bits, as ``np.int64`` codes."""
        x = np.asarray(x, dtype=np.uint32)
        return (fp32_to_bf16(x) if self.output == "bf16" else x).astype(np.int64)

    def is_inf(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.uint32) & np.uint32(0x7FFFFFFF)) == np.uint32(0x7F800000)

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``fp32_add``: nearest even, FTZ."""
        return fp32_add(a, b)

    def neg(self, a: np.ndarray) -> np.ndarray:
        return (np.asarray(a, dtype=np.uint32) ^ _SIGN).astype(np.uint32)

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``fp32_mul``: nearest even, FTZ."""
        return fp32_mul(a, b)

    def product(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``bf16_mul(bf16(a), bf16(b))``: bf16 operands, their exact fp32 product (``mac`` =
        ``fp32_add(acc, product)``: one rounding)."""
        return bf16_mul(fp32_to_bf16(a), fp32_to_bf16(b))

    def maximum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``fp32_max`` (exact)."""
        return fp32_max(a, b)

    def compare(self, op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact order of the fp32 values (FTZ: a subnormal equals zero); NaN compares false."""
        fa, fb = self.to_float(a), self.to_float(b)
        return {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
                "==": np.equal, "!=": np.not_equal}[op](fa, fb)

    def exp(self, x: np.ndarray, premul: float | None = None) -> np.ndarray:
        """``fp32_exp(fp32_mul(x, c))`` (``fp32_exp(x)`` without a constant)."""
        if premul is not None:
            x = fp32_mul(x, self.const(premul))
        return fp32_exp(x)

    def recip(self, x: np.ndarray) -> np.ndarray:
        """``fp32_recip``."""
        return fp32_recip(x)

    def log(self, x: np.ndarray) -> np.ndarray:
        """``fp32_log``: table-driven, <= 0.75 ulp (the lanes' log unit)."""
        return fp32_log(x)

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        """``fp32_recip(fp32_add(1, fp32_exp(-x)))`` (the lanes' sigmoid unit)."""
        return fp32_sigmoid(x)


__all__ = ["Fp32Arith", "_order_key"]
