"""bf16 storage with fp32 arithmetic: the attention adapter of the golden model of ``einloom.rtl.float``.

The bit-exact unit models (``fp32_add``, ``bf16_mul``, ``fp32_exp``, ...) live in
:mod:`einloom.sim.formats.arith.fp32` (re-exported here); their op-class view is
:class:`einloom.sim.formats.arith.Fp32Arith`.  This module holds :class:`Bf16Format`, the
:class:`~einloom.sim.formats.base.NumberFormat` of the hand-written core, and the attention entry point.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from einloom.sim.formats import FORMAT_BUILDERS, FormatSpecError
from einloom.sim.formats.arith.fp32 import *  # noqa: F401,F403  (the unit library, re-exported)
from einloom.sim.formats.arith.fp32 import __all__ as _UNITS
from einloom.sim.formats.arith.fp32 import (  # noqa: F401
    bf16_bits, bf16_mul, bf16_value, fp32_add, fp32_bits, fp32_exp, fp32_max, fp32_mul, fp32_recip,
    fp32_sub, fp32_sum_interleaved, fp32_to_bf16, fp32_value,
)
from einloom.sim.formats.base import NumberFormat

__all__ = [*_UNITS, "Bf16Format", "golden_attention_bf16", "ACC_LATENCY_MAX"]

#: The largest accumulate latency: the fp32 adder (``einloom.rtl.float.Fp32Add``) has 4 stage boundaries.
ACC_LATENCY_MAX = 4

# ----------------------------------------------------------------------------------------------
# the number format (einloom.sim.formats.base.NumberFormat) and 1-pass attention
# ----------------------------------------------------------------------------------------------

def _u32(x: ArrayLike) -> NDArray[np.uint32]:
    return np.asarray(x, dtype=np.int64).astype(np.uint32)


def _i64(x: ArrayLike) -> NDArray[np.int64]:
    return np.asarray(x).astype(np.int64)


class Bf16Format(NumberFormat):
    """bf16 inputs and outputs, fp32 arithmetic: the golden model of ``einloom.rtl.float.bf16``.

    Codes (``np.int64`` holding bit patterns): Q, K, V and AV are bf16 (16 bits); QK, RM, SLN, PRM,
    SLD, RD, SLNV, RNV and the reciprocal are fp32 (32 bits).

    Primitives (each is one or two of the unit models above, in this order):

    ==============  ==========================================================================
    ``dot``         ``fp32_sum_interleaved(bf16_mul(k[e], q[e]) for e = 0..E-1, acc_latency)``:
                    with ``acc_latency`` 1 the chain ``acc = fp32_add(acc, bf16_mul(k[e], q[e]))``
                    from acc = +0; with L > 1 the L interleaved partial sums of a pipelined
                    accumulator, combined in a fixed order (see ``fp32_sum_interleaved``)
    ``maximum``     ``fp32_max``
    ``exp_diff``    ``fp32_exp(fp32_mul(fp32_sub(x, m), scale))`` (no multiply when scale is off)
    ``prob_add``    ``fp32_add``
    ``column_mac``  ``fp32_add(psum, bf16_mul(v, fp32_to_bf16(sln)))``: probabilities enter the
                    2D array as bf16, as in FlashAttention-2; the denominator sums them in fp32
    ``rescale_add`` ``fp32_add(fp32_mul(prm, old), new)``
    ``reciprocal``  ``fp32_recip``
    ``output``      ``fp32_to_bf16(fp32_mul(rnv, recip))`` (fp32 when ``output="fp32"``)
    ==============  ==========================================================================

    Parameters
    ----------
    head_dim : int
        E; the default scale is 1/sqrt(E) rounded to fp32.
    scale : bool
        Multiply scores by the scale inside ``exp_diff``.
    scale_value : float, optional
        Use this scale (rounded to fp32) instead of 1/sqrt(E).
    output : "bf16" or "fp32"
        Output code format.
    acc_latency : int
        L, the latency of the 2D PE's fp32 accumulate (``einloom.rtl.float.accumulate``): the QK dot
        product is summed in L interleaved partial sums.  1 (default) is a single-cycle accumulate.
        Must divide ``head_dim`` (the format interpreter's form of the order splits E into (E1, L)).
    """

    kind = "bf16"
    input_bits = 16

    def __init__(self, *, head_dim: int = 16, scale: bool = True, scale_value: float | None = None,
                 output: str = "bf16", acc_latency: int = 1):
        if output not in ("bf16", "fp32"):
            raise ValueError(f"output must be 'bf16' or 'fp32', not {output!r}")
        if acc_latency < 1 or head_dim % acc_latency:
            raise ValueError(f"acc_latency must be >= 1 and divide head_dim {head_dim}, not {acc_latency}")
        self.acc_latency = acc_latency
        self.head_dim = head_dim
        self.scale = scale
        self.output_kind = output
        self.output_bits = 16 if output == "bf16" else 32
        value = (1.0 / math.sqrt(head_dim) if scale_value is None else scale_value) if scale else 1.0
        self.scale_bits = int(fp32_bits(value))
        self.scale_value = float(fp32_value(self.scale_bits))

    def describe(self) -> dict:
        return {"kind": self.kind, "input_bits": 16, "output_bits": self.output_bits,
                "output": self.output_kind, "head_dim": self.head_dim, "scale": self.scale,
                "acc_latency": self.acc_latency,
                "scale_fp32": f"0x{self.scale_bits:08x}", "subnormals": "flushed to zero",
                "rounding": "nearest even (add, mul, conversions)"}

    # ---- conversion -------------------------------------------------------------------------
    def quantize(self, x: np.ndarray) -> np.ndarray:
        return _i64(bf16_bits(x))

    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        return bf16_value(np.asarray(codes).astype(np.uint16)).astype(np.float64)

    def output_to_float(self, codes: np.ndarray) -> np.ndarray:
        if self.output_kind == "bf16":
            return self.dequantize(codes)
        return fp32_value(_u32(codes)).astype(np.float64)

    # ---- primitives -------------------------------------------------------------------------
    def dot(self, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        q = np.asarray(q).astype(np.uint16)                     # [E, P]
        k = np.asarray(k).astype(np.uint16)                     # [R, E]
        products = bf16_mul(k.T[:, :, None], q[:, None, :])      # [E, R, P]
        return _i64(fp32_sum_interleaved(products, self.acc_latency, axis=0))

    def maximum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _i64(fp32_max(_u32(a), _u32(b)))

    def exp_diff(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        d = fp32_sub(_u32(x), _u32(m))
        if self.scale:
            d = fp32_mul(d, np.uint32(self.scale_bits))
        return _i64(fp32_exp(d))

    def prob_zero(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.int64)

    def acc_zero(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.int64)

    def prob_add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _i64(fp32_add(_u32(a), _u32(b)))

    def column_mac(self, psum: np.ndarray, sln: np.ndarray, v: np.ndarray) -> np.ndarray:
        w = fp32_to_bf16(_u32(sln))
        return _i64(fp32_add(_u32(psum), bf16_mul(np.asarray(v).astype(np.uint16), w)))

    def rescale_add(self, prm: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        return _i64(fp32_add(fp32_mul(_u32(prm), _u32(old)), _u32(new)))

    def reciprocal(self, rd: np.ndarray) -> np.ndarray:
        return _i64(fp32_recip(_u32(rd)))

    def output(self, rnv: np.ndarray, recip: np.ndarray) -> np.ndarray:
        av = fp32_mul(_u32(rnv), _u32(recip))
        return _i64(fp32_to_bf16(av) if self.output_kind == "bf16" else av)


def golden_attention_bf16(Q: ArrayLike, K: ArrayLike, V: ArrayLike, tile: int, causal: bool = False,
                          scale: float | None = None, output: str = "bf16", acc_latency: int = 1
                          ) -> NDArray[np.float32]:
    """1-pass (FlashAttention-2 / FuseMax cascade) attention in bf16/fp32, bit-exact with the RTL.

    The hardware-order skeleton :func:`einloom.sim.formats.base.golden_attention` (running max,
    PRM rescaling of RD and RNV, deferred division as one reciprocal per query and a multiply)
    composed with :class:`Bf16Format`'s unit models.

    Parameters
    ----------
    Q : [E, P], K : [E, M], V : [F, M]
        Real arrays, rounded to bf16 first (``bf16_bits``).
    tile : int
        M0, keys per tile (the 2D array's rows).
    causal : bool
        Hide key m from query p when m > p + M - P (bottom-right aligned, as FlashAttention >= 2.1;
        see :func:`einloom.sim.formats.base.attention_mask`); a query that sees no key outputs 0.
    scale : float, optional
        Score scale, rounded to fp32; default ``1/sqrt(E)``.
    output : "bf16" or "fp32"
        Round the result to bf16 (default) or return the fp32 result.
    acc_latency : int
        The 2D PE's accumulate latency L (QK summed in L interleaved partial sums; must divide E).

    Returns
    -------
    AV : [F, P] float32 values.
    """
    q = np.asarray(Q, dtype=np.float64)
    fmt = Bf16Format(head_dim=q.shape[0], scale_value=scale, output=output, acc_latency=acc_latency)
    from einloom.sim.formats.attention import golden_attention
    codes, _ = golden_attention(fmt, fmt.quantize(Q), fmt.quantize(K), fmt.quantize(V), tile_m=tile,
                                causal=causal)
    return fmt.output_to_float(codes).astype(np.float32)


def _build_bf16(spec: dict, *, head_dim: int, scale: bool, max_keys: int) -> Bf16Format:
    """``rtl.number_format: {kind: bf16, output: bf16|fp32, scale_value: <float>, acc_latency: <int>}``."""
    known = {"kind", "output", "scale_value", "acc_latency"}
    for key in spec:
        if key not in known:
            raise FormatSpecError(key, f"unknown bf16 parameter (known: {', '.join(sorted(known))})")
    output = spec.get("output", "bf16")
    if output not in ("bf16", "fp32"):
        raise FormatSpecError("output", f"must be bf16 or fp32, got {output!r}")
    value = spec.get("scale_value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise FormatSpecError("scale_value", f"must be a positive number, got {value!r}")
    latency = spec.get("acc_latency", 1)
    if isinstance(latency, bool) or not isinstance(latency, int) or not 1 <= latency <= ACC_LATENCY_MAX:
        raise FormatSpecError("acc_latency", f"must be an integer 1..{ACC_LATENCY_MAX} (the fp32 adder's "
                                             f"pipeline stages), got {latency!r}")
    if head_dim % latency:
        raise FormatSpecError("acc_latency", f"must divide head_dim {head_dim} (the QK sum is split into "
                                             f"{latency} interleaved partial sums), got {latency}")
    return Bf16Format(head_dim=head_dim, scale=scale, scale_value=value, output=output, acc_latency=latency)


FORMAT_BUILDERS["bf16"] = _build_bf16
