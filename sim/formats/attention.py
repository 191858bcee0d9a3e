"""1-pass attention in a number format: the hardware's op order written as a cascade, run by the
format interpreter (the attention adapter of the golden model).

:data:`RTL_ATTENTION` is FuseMax's 1-pass cascade (``einsum/library/fusemax-1pass.yaml``) in the order
the hand-written core (``rtl/``, ``einloom.rtl.attention``) computes it, so that running it through
:func:`~einloom.sim.formats.interpret.run_in_format` is bit-exact with the RTL:

* ``QK`` is the unscaled dot product (a MAC chain over ``e`` = 0..E-1); the score scale is the exp
  unit's constant (``exp(scale * (QK - RM))``), not a multiply on the scores.  When the format's 2D
  accumulate is pipelined (``acc_latency`` L > 1, :func:`~einloom.sim.formats.arith.fp32.fp32_sum_interleaved`),
  E is split into (E1, E0 = L): ``QKP[.., e0, ..]`` is the MAC chain over ``e1`` (partial sum e0 holds
  the terms ``e = e1*L + e0``) and ``QK`` the chain over ``e0`` (the partials in order, from +0);
* ``SLD`` sums a tile's probabilities in the order the 1D array drains the 2D array's rows, ``R-1``
  down to 0 (the index ``M0-1-m0``); ``SLNV`` is a MAC chain down the rows ``0..R-1``;
* ``AV = RNV / RD`` is one reciprocal per query and a multiply (``div``), then the output rounding.

A causal mask is bottom-right aligned (query ``p`` sees key ``m`` iff ``m <= p + M - P``,
:func:`~einloom.sim.formats.base.attention_mask`); a query that sees no key outputs ``output_zero``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from einloom.sim.formats.arith import arith_for
from einloom.sim.formats.base import AttentionTrace, NumberFormat, attention_inputs, attention_mask

RTL_ATTENTION = """\
name: rtl-1pass{suffix}
description: FuseMax 1-pass attention in the op order of einloom.rtl (the golden model's cascade)
sequence_rank: M
ranks: {{P: 16, M: 16, E: 16, F: 16}}
params:
  M0: 4                      # keys per tile: the 2D array's rows{e0_param}
  scale: 1 / sqrt(E)
  offset: M - P
tensors: {{Q: [E, P], K: [E, M], V: [F, M], AV: [F, P]}}
inputs: [Q, K, V]
outputs: [AV]
init:
  RM[0, p]: -inf
  RD[0, p]: 0
  RNV[0, f, p]: 0
einsums:
  - BK[e, m1, m0]   = K[e, m1*M0 + m0]
  - BV[f, m1, m0]   = V[f, m1*M0 + m0]
{qk_einsums}  - LM[m1, p]       = max[m0] QK[m1, m0, p]
  - RM[m1+1, p]     = max(RM[m1, p], LM[m1, p])
  - SLN[m1, m0, p]  = exp(scale * (QK[m1, m0, p] - RM[m1+1, p]))
  - PRM[m1, p]      = exp(scale * (RM[m1, p] - RM[m1+1, p]))
  - SPD[m1, p]      = PRM[m1, p] * RD[m1, p]
  - SLD[m1, p]      = sum[m0] SLN[m1, M0-1-m0, p]          # drained rows R-1 .. 0
  - RD[m1+1, p]     = SPD[m1, p] + SLD[m1, p]
  - SPNV[m1, f, p]  = PRM[m1, p] * RNV[m1, f, p]
  - SLNV[m1, f, p]  = SLN[m1, m0, p] * BV[f, m1, m0]       # psum down rows 0 .. R-1
  - RNV[m1+1, f, p] = SPNV[m1, f, p] + SLNV[m1, f, p]
  - AV[f, p]        = RNV[M1, f, p] / RD[M1, p]
"""

_DOT = "Q[e, p] * BK[e, m1, m0]"
#: the dot product of a pipelined accumulate: partial sums over e1 for each e0, then their sum over e0
_SPLIT_DOT = "QE[e1, e0, p] * KE[e1, e0, m1, m0]"
_SPLIT_EINSUMS = """\
  - QE[e1, e0, p]   = Q[e1*E0 + e0, p]
  - KE[e1, e0, m1, m0] = BK[e1*E0 + e0, m1, m0]
  - QKP[m1, m0, e0, p] = {qk}                           # partial sum e0: the MAC chain over e1
  - QK[m1, m0, p]   = sum[e0] QKP[m1, m0, e0, p]        # the partials in order e0 = 0..L-1, from +0
"""


@lru_cache(maxsize=None)
def rtl_attention_cascade(causal: bool, acc_latency: int = 1):
    """The parsed :data:`RTL_ATTENTION` cascade (plain or bottom-right causal), with the QK sum split
    into ``acc_latency`` interleaved partial sums when it is above 1."""
    from einloom.einsum.loader import parse_cascade_text
    dot = _SPLIT_DOT if acc_latency > 1 else _DOT
    qk = f"where(m1*M0 + m0 <= p + offset, {dot})" if causal else dot
    if acc_latency > 1:
        einsums, e0 = _SPLIT_EINSUMS.format(qk=qk), f"\n  E0: {acc_latency}                      # the accumulate's partial sums"
    else:
        einsums, e0 = f"  - QK[m1, m0, p]   = {qk}\n", ""
    suffix = ("-causal" if causal else "") + (f"-acc{acc_latency}" if acc_latency > 1 else "")
    return parse_cascade_text(RTL_ATTENTION.format(suffix=suffix, qk_einsums=einsums, e0_param=e0),
                              "<einloom.sim.formats.attention>")


def _codes(arith, x: np.ndarray) -> np.ndarray:
    """A tensor's values as the :class:`NumberFormat`'s codes (fixed point: at the tensor's finest scale)."""
    if x.dtype.names:
        f = x["f"].max(initial=0)
        return (x["c"] << (f - x["f"])).astype(np.int64)
    return x.astype(np.int64)


def golden_attention(fmt: NumberFormat, q: np.ndarray, k: np.ndarray, v: np.ndarray, *, tile_m: int,
                     causal: bool = False, trace: bool = False
                     ) -> tuple[np.ndarray, AttentionTrace | None]:
    """Bit-exact model of the hardware's 1-pass attention: :data:`RTL_ATTENTION` in ``fmt``.

    Parameters
    ----------
    q, k, v : np.ndarray
        Input codes (int64) with shapes [E, P], [E, M], [F, M] (the cascade's rank order).
    tile_m : int
        Keys per tile (M0; the 2D array's row count).  M need not be a multiple of it.
    causal : bool
        Hide key m from query p when m > p + M - P (bottom-right aligned, :func:`attention_mask`).

    Returns
    -------
    (AV, trace)
        AV output codes [F, P]; a :class:`AttentionTrace` (QK, RM, RD, RNV per tile, the reciprocal
        codes) when ``trace`` is true.  A query that sees no key gets ``output_zero`` (its
        ``trace.recip`` entry is 0; its running state is meaningless, as in the hardware).
    """
    from einloom.sim.formats.interpret import run_in_format
    q, k, v = attention_inputs(q, k, v)
    (_, p_dim), (_, m_dim), (f_dim, _) = q.shape, k.shape, v.shape
    if tile_m < 1:
        raise ValueError(f"tile_m must be at least 1, got {tile_m}")
    arith = arith_for(fmt)
    scale = fmt.scale_value if fmt.scale else 1.0
    latency = getattr(fmt, "acc_latency", 1)
    ranks = {"M0": tile_m, "scale": scale, **({"E0": latency} if latency > 1 else {})}
    result = run_in_format(rtl_attention_cascade(causal, latency), arith, {"Q": q, "K": k, "V": v},
                           ranks, keep_intermediates=trace)
    seen = attention_mask(m_dim, p_dim, causal).any(axis=0)
    av = fmt.output_zero((f_dim, p_dim))
    av[:, seen] = result.codes["AV"][:, seen]
    tr = None
    if trace:
        inter = result.intermediates
        tiles = -(-m_dim // tile_m)
        qk = _codes(arith, inter["QK"])
        tr = AttentionTrace()
        for m1 in range(tiles):
            rows = min(m_dim, (m1 + 1) * tile_m) - m1 * tile_m
            tr.qk.append(qk[m1, :rows])
            tr.rm.append(_codes(arith, inter["RM"][m1 + 1]))
            tr.rd.append(_codes(arith, inter["RD"][m1 + 1]))
            tr.rnv.append(_codes(arith, inter["RNV"][m1 + 1]))
        rd = _codes(arith, inter["RD"][tiles])
        tr.recip = np.zeros(p_dim, dtype=np.int64)
        if seen.any():
            tr.recip[seen] = fmt.reciprocal(rd[seen])
    return av, tr
