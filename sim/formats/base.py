"""The common interface of a number format, and the hand-coded hardware-order attention loop (the oracle).

A number format (fixed point, bf16, ...) is a :class:`NumberFormat`: it quantizes real values to the
integer codes the hardware carries.  Its arithmetic as op-class primitives (add, mul, mac, max, exp,
recip, div, cmp/select, log, each with its rounding rule) is an :class:`einloom.sim.formats.arith.Arith`
(``arith.arith_for(fmt)``); the golden output of any cascade is the format interpreter
(:mod:`einloom.sim.formats.interpret`) running it on those primitives, and
:func:`einloom.sim.formats.attention.golden_attention` is the hand-written core's case of it.

The methods below model the hand-written core's *compound units* (``exp_diff`` = subtract, scale and
exp; ``rescale_add``; ``column_mac``; ...), bit for bit: the unit testbenches (``rtl/tb/units_tb.py``)
check the RTL units against them, and :func:`golden_attention_loop` composes them in exactly the order
the hardware does -- the former golden model, kept as the oracle that the cascade form is tested
bit-identical against.

Every array passed between primitives holds the format's *internal codes* as ``np.int64`` (two's
complement values for fixed point; raw bit patterns for a float format).  ``None`` never appears: masks
are explicit boolean arrays.

The hardware order being modelled (one query column ``p``, one key tile of ``R`` keys, see
``einloom.rtl.attention``)::

    QK[r, p]   = dot(Q[:, p], K[:, key r])            accumulation over e = 0..E-1 in order
    LM[p]      = max over unmasked r                  (order r = R-1 .. 0)
    RM'[p]     = LM[p] on the first tile, else max(RM[p], LM[p]) where the tile has an unmasked key
    SLN[r, p]  = exp_diff(QK[r, p], RM'[p]), or prob_zero where masked
    PRM[p]     = exp_diff(RM[p], RM'[p])  (RM := RM' on the first tile)
    SLD[p]     = prob_sum over r = R-1 .. 0 of SLN      (sequential, starting from prob_zero)
    SLNV[f, p] = column_mac over r = 0..R-1 of SLN[r,p]*V[f, key r]  (psum starts at acc_zero)
    RD[p]      = rescale_add(PRM, RD, SLD);  RNV[f, p] = rescale_add(PRM, RNV, SLNV)
    AV[f, p]   = output(RNV[f, p], reciprocal(RD[p])), or output_zero where query p sees no key

Causal masks are aligned to the bottom right (FlashAttention >= 2.1's convention): query ``p`` of
``P`` sees key ``m`` of ``M`` iff ``m <= p + M - P`` (:func:`attention_mask`).  When ``P > M`` the
first ``P - M`` queries see no key at all; their output is 0 (FlashAttention returns 0 for such a
row), not 0/0.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class NumberFormat(ABC):
    """A number format: codes on the wire plus the datapath's primitive operations.

    Members
    -------
    kind : str
        ``"fixed"`` or ``"bf16"`` (the ``rtl.number_format.kind`` value in an architecture YAML).
    input_bits : int
        Bits of one Q/K/V element on the input streams.
    output_bits : int
        Bits of one AV element on the output stream.
    """

    kind: str = "abstract"
    input_bits: int
    output_bits: int

    # ---- conversion ---------------------------------------------------------------------------
    @abstractmethod
    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Real values -> input codes (int64), rounding/saturating as the format defines."""

    @abstractmethod
    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        """Input codes -> float64 values."""

    @abstractmethod
    def output_to_float(self, codes: np.ndarray) -> np.ndarray:
        """Output (AV) codes -> float64 values."""

    def to_wire(self, codes: np.ndarray, bits: int | None = None) -> np.ndarray:
        """Codes -> unsigned bit patterns of ``bits`` (default ``input_bits``) bits, as on a port."""
        bits = self.input_bits if bits is None else bits
        return np.asarray(codes, dtype=np.int64) & ((1 << bits) - 1)

    def from_wire_output(self, patterns: np.ndarray) -> np.ndarray:
        """Unsigned output-port bit patterns -> output codes (inverse of ``to_wire`` for outputs)."""
        return np.asarray(patterns, dtype=np.int64)

    # ---- primitives, vectorized over NumPy arrays of codes -----------------------------------
    @abstractmethod
    def dot(self, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        """QK accumulators: ``q`` is [E, P], ``k`` is [R, E]; returns [R, P], accumulated over e in order."""

    @abstractmethod
    def maximum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Elementwise max of accumulator codes."""

    @abstractmethod
    def exp_diff(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Probability codes of ``exp(scale * (x - m))`` for accumulator codes ``x <= m``."""

    @abstractmethod
    def prob_zero(self, shape: tuple[int, ...]) -> np.ndarray:
        """Probability codes of 0 (masked SLN)."""

    @abstractmethod
    def prob_add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Sum of two probability-domain (denominator) codes: SLD accumulation."""

    @abstractmethod
    def column_mac(self, psum: np.ndarray, sln: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``psum + sln * v`` as a 2D PE does it in the SLNV phase (psum and result: accumulator codes)."""

    @abstractmethod
    def acc_zero(self, shape: tuple[int, ...]) -> np.ndarray:
        """Accumulator codes of 0."""

    @abstractmethod
    def rescale_add(self, prm: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """``prm * old + new``: the running-sum update of RD and RNV."""

    @abstractmethod
    def reciprocal(self, rd: np.ndarray) -> np.ndarray:
        """Reciprocal codes of the denominator RD (one per query)."""

    @abstractmethod
    def output(self, rnv: np.ndarray, recip: np.ndarray) -> np.ndarray:
        """AV output codes ``rnv * recip``."""

    def output_zero(self, shape: tuple[int, ...]) -> np.ndarray:
        """Output codes of 0: the AV of a query that sees no key (the RTL drives all-zero bits)."""
        return np.zeros(shape, dtype=np.int64)

    def describe(self) -> dict[str, Any]:
        """Parameters of the format (for manifests and reports)."""
        return {"kind": self.kind, "input_bits": self.input_bits, "output_bits": self.output_bits}


@dataclass
class AttentionTrace:
    """Per-tile running state (codes), for debugging and for component tests."""

    qk: list[np.ndarray] = field(default_factory=list)   # [R, P] per tile
    rm: list[np.ndarray] = field(default_factory=list)   # [P] after each tile
    rd: list[np.ndarray] = field(default_factory=list)   # [P]
    rnv: list[np.ndarray] = field(default_factory=list)  # [F, P]
    recip: np.ndarray | None = None                      # [P]


def attention_mask(m: int, p: int, causal: bool) -> np.ndarray:
    """valid[key, query] of ``m`` keys and ``p`` queries.

    Causal is aligned to the bottom right, as FlashAttention >= 2.1 and the library's cascades
    (``where(m <= p + M - P, ...)``) define it: query ``q`` sees key ``k`` iff ``k <= q + m - p``.  So
    ``p == m`` is the usual lower triangle, a decode query (``p == 1``) sees every key, and when
    ``p > m`` the first ``p - m`` queries see none.  (PyTorch's ``scaled_dot_product_attention(...,
    is_causal=True)`` aligns to the top left instead: ``k <= q``.)
    """
    keys = np.arange(m)[:, None]
    queries = np.arange(p)[None, :]
    valid = np.ones((m, p), dtype=bool)
    if causal:
        valid &= keys <= queries + (m - p)
    return valid


def attention_inputs(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """Q [E, P], K [E, M], V [F, M] as int64 codes; ``ValueError`` when E or M disagree."""
    q, k, v = (np.asarray(x, dtype=np.int64) for x in (q, k, v))
    if k.shape[0] != q.shape[0] or v.shape[1] != k.shape[1]:
        raise ValueError(f"shape mismatch: Q {q.shape}, K {k.shape}, V {v.shape}")
    return q, k, v


def golden_attention_loop(fmt: NumberFormat, q: np.ndarray, k: np.ndarray, v: np.ndarray, *, tile_m: int,
                     causal: bool = False, trace: bool = False
                     ) -> tuple[np.ndarray, AttentionTrace | None]:
    """The hand-coded hardware-order loop of 1-pass attention, with the parameters and result of
    :func:`einloom.sim.formats.attention.golden_attention`; kept as the oracle that the cascade form
    is tested bit-identical against (``tests/sim/test_format_interpreter.py``)."""
    q, k, v = attention_inputs(q, k, v)
    (_, p_dim), (_, m_dim), (f_dim, _) = q.shape, k.shape, v.shape
    valid_all = attention_mask(m_dim, p_dim, causal)
    tr = AttentionTrace() if trace else None
    rm = rd = rnv = None
    tiles = -(-m_dim // tile_m)
    for m1 in range(tiles):
        lo, hi = m1 * tile_m, min(m_dim, (m1 + 1) * tile_m)
        rows = hi - lo
        qk = fmt.dot(q, k[:, lo:hi].T)                         # [rows, P]
        valid = valid_all[lo:hi]                               # [rows, P]
        has = valid.any(axis=0)
        # max over unmasked rows (masked rows replaced by the column's first unmasked value: neutral)
        first = np.where(has, qk[np.argmax(valid, axis=0), np.arange(p_dim)], 0)
        lm = first.copy()
        for r in range(rows):
            lm = np.where(valid[r], fmt.maximum(lm, qk[r]), lm)
        if m1 == 0:
            # every query that sees a key sees key 0 (bottom-right causal), so tile 0 starts its RM;
            # a query that sees none carries meaningless state, and its output is gated to zero
            rm_old = lm
            rm_new = lm
        else:
            rm_old = rm
            rm_new = np.where(has, fmt.maximum(rm, lm), rm)
        # masked entries may exceed the max: the hardware gates their exp result to zero
        sln = np.where(valid, fmt.exp_diff(np.where(valid, qk, rm_new[None, :]), rm_new[None, :]),
                       fmt.prob_zero((rows, p_dim)))
        prm = fmt.exp_diff(rm_old, rm_new)
        sld = fmt.prob_zero((p_dim,))
        for r in reversed(range(rows)):                        # hardware drains rows R-1 .. 0
            sld = fmt.prob_add(sld, sln[r])
        psum = fmt.acc_zero((f_dim, p_dim))
        for r in range(rows):                                  # psum flows down rows 0 .. R-1
            psum = fmt.column_mac(psum, sln[r][None, :], v[:, lo + r][:, None])
        if m1 == 0:
            rd = fmt.rescale_add(prm, fmt.prob_zero((p_dim,)), sld)
            rnv = fmt.rescale_add(prm[None, :], fmt.acc_zero((f_dim, p_dim)), psum)
        else:
            rd = fmt.rescale_add(prm, rd, sld)
            rnv = fmt.rescale_add(prm[None, :], rnv, psum)
        rm = rm_new
        if tr is not None:
            tr.qk.append(qk)
            tr.rm.append(rm.copy())
            tr.rd.append(rd.copy())
            tr.rnv.append(rnv.copy())
    seen = valid_all.any(axis=0)                               # the query saw at least one key
    recip = np.zeros(p_dim, dtype=np.int64)
    av = fmt.output_zero((f_dim, p_dim))
    if seen.any():
        recip[seen] = fmt.reciprocal(rd[seen])
        av[:, seen] = fmt.output(rnv[:, seen], recip[seen][None, :])
    if tr is not None:
        tr.recip = recip
    return av, tr


def float_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, *, scale: float, causal: bool = False
                    ) -> np.ndarray:
    """float64 softmax attention AV[f, p] for real-valued Q [E,P], K [E,M], V [F,M] (the reference).

    Causal is bottom-right aligned (:func:`attention_mask`); a query that sees no key gets 0."""
    s = scale * (k.T @ q)                                      # [M, P]
    valid = attention_mask(k.shape[1], q.shape[1], causal)
    seen = valid.any(axis=0)
    s = np.where(valid, s, -np.inf)
    s = s - np.where(seen, s.max(axis=0), 0.0)[None, :]
    w = np.exp(s)                                              # 0 where masked
    w /= np.where(seen, w.sum(axis=0), 1.0)[None, :]
    return v @ w


def __getattr__(name: str):
    # ``golden_attention`` lives in einloom.sim.formats.attention (it needs the format interpreter);
    # importing it from here keeps working
    if name == "golden_attention":
        from einloom.sim.formats.attention import golden_attention
        return golden_attention
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
