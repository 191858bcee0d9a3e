"""Direct NumPy reference implementations of the library's attention variants.

Each function computes its variant the textbook way (``softmax(scale * Q^T K + mask) V`` and the
like), NOT by the cascade's algorithm, so ``einloom run --check`` compares two independent
computations.  All of them are vectorized float64 NumPy.

Calling convention (what a spec's ``reference:`` mapping names)::

    f(inputs: dict[str, np.ndarray], ranks: dict[str, int], **kwargs) -> dict[str, np.ndarray]

``inputs`` hold the cascade's input tensors in their declared rank order (``Q[E, P]``, ``K[E, M]``,
``V[F, M]``, ...); the result maps the cascade's output names (``AV`` or ``O``) to arrays in their
declared rank order.  ``ranks`` is accepted for uniformity; shapes are taken from the arrays.
``kwargs`` are the numbers of the ``reference:`` mapping (``scale``, ``window``, ...), already
evaluated from the spec's params.

Causal masks are aligned to the bottom right, as FlashAttention >= 2.1 documents ("the causal mask
is aligned to the bottom right corner of the attention matrix"): query ``p`` of ``P`` sits at key
position ``p + M - P`` and sees key ``m`` iff ``m <= p + M - P`` (window masks are measured from that
diagonal).  So a decode query (``P = 1``) sees every key and ``P = M`` is the lower triangle.  (PyTorch's
``scaled_dot_product_attention(is_causal=True)`` aligns to the top left, ``m <= p``; it differs only
when ``P != M``.)  A query that sees no key at all (only possible when ``P > M``: the first ``P - M``
queries) gets 0, as FlashAttention returns and as the cascades' ``where(RD > 0, ..., 0)`` gives.

Cost: O(P*M*(E+F)) time and O(P*M) memory per head (the dense score matrix is materialized), so
these are for checking small and medium sizes, not for speed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from einloom.einsum.errors import SpecError

Inputs = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]
Reference = Callable[..., Outputs]

__all__ = ["REFERENCES", "get_reference", "Reference"]


# ------------------------------------------------------------------------------------------ helpers
def _f64(inputs: Inputs, *names: str) -> list[np.ndarray]:
    return [np.asarray(inputs[name], dtype=np.float64) for name in names]


def _masked_softmax_av(scores: np.ndarray, values: np.ndarray, visible: np.ndarray | None) -> np.ndarray:
    """``softmax_m(scores[..., m, p]) . values[..., f, m]`` -> ``[..., f, p]``.

    ``visible[m, p]`` (broadcast over leading ranks) marks the keys each query may see; the others
    get probability 0.  A query with no visible key yields 0.
    """
    if visible is not None:
        scores = np.where(visible, scores, -np.inf)
    row_max = scores.max(axis=-2, keepdims=True)
    seen = row_max > -np.inf                                     # False: the query sees no key
    weights = np.exp(scores - np.where(seen, row_max, 0.0))      # 0 where masked
    probs = weights / np.where(seen, weights.sum(axis=-2, keepdims=True), 1.0)
    return np.einsum("...mp,...fm->...fp", probs, values)


def _key_positions(num_keys: int, num_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Key index ``m[:, None]`` and bottom-right aligned query position ``p + M - P`` as ``[None, :]``."""
    m = np.arange(num_keys)[:, None]
    q = np.arange(num_queries)[None, :] + (num_keys - num_queries)
    return m, q


def _elu_plus_one(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


# -------------------------------------------------------------------------------- softmax attention
def softmax_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0) -> Outputs:
    """Softmax attention ``AV[f, p] = sum_m softmax_m(scale * Q[:, p] . K[:, m]) V[f, m]``.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.  Checks every unmasked softmax
    form: 3-pass, 2-pass, FlashAttention-1, FuseMax 1-pass and split-KV decode.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    scores = scale * (k.T @ q)                                   # [M, P]
    return {"AV": _masked_softmax_av(scores, v, None)}


def softmax_lse_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0
                          ) -> Outputs:
    """Softmax attention ``AV[f, p]`` and each query's log-sum-exp ``LSE[p] = log sum_m exp(scale *
    Q[:, p] . K[:, m])`` (FlashAttention-2's forward outputs)."""
    q, k, v = _f64(inputs, "Q", "K", "V")
    scores = scale * (k.T @ q)                                   # [M, P]
    top = scores.max(axis=0)
    return {"AV": _masked_softmax_av(scores, v, None), "LSE": top + np.log(np.exp(scores - top).sum(axis=0))}


def causal_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0) -> Outputs:
    """Causal softmax attention, bottom-right aligned: query ``p`` sees keys ``m <= p + M - P``.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    m, pos = _key_positions(k.shape[1], q.shape[1])
    return {"AV": _masked_softmax_av(scale * (k.T @ q), v, m <= pos)}


def sliding_window_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0,
                             window: int) -> Outputs:
    """Causal sliding-window attention: query ``p`` sees keys with ``0 <= p + M - P - m < window``.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    m, pos = _key_positions(k.shape[1], q.shape[1])
    visible = (m <= pos) & (pos - m < window)
    return {"AV": _masked_softmax_av(scale * (k.T @ q), v, visible)}


def sink_window_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0,
                          sinks: int, window: int) -> Outputs:
    """StreamingLLM attention: causal, and a key is visible if it is one of the first ``sinks``
    keys or one of the last ``window`` keys before (and including) the query's position.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    m, pos = _key_positions(k.shape[1], q.shape[1])
    visible = (m <= pos) & ((m < sinks) | (pos - m < window))
    return {"AV": _masked_softmax_av(scale * (k.T @ q), v, visible)}


def alibi_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0,
                    slope: float) -> Outputs:
    """ALiBi (Press et al., ICLR 2022): causal softmax attention of the biased score
    ``scale * Q[:, p] . K[:, m] - slope * (p + M - P - m)`` (bottom-right aligned distance and mask).

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``; ``slope`` is one head's.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    m, pos = _key_positions(k.shape[1], q.shape[1])
    scores = scale * (k.T @ q) - slope * (pos - m)
    return {"AV": _masked_softmax_av(scores, v, m <= pos)}


def prefix_lm_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0,
                        prefix: int) -> Outputs:
    """Prefix-LM softmax attention: every query sees the first ``prefix`` keys (bidirectional
    prefix) and, causally, every key up to its bottom-right aligned position ``p + M - P``.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    m, pos = _key_positions(k.shape[1], q.shape[1])
    return {"AV": _masked_softmax_av(scale * (k.T @ q), v, (m < prefix) | (m <= pos))}


def softcap_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0,
                      cap: float) -> Outputs:
    """Causal softmax attention of soft-capped scores ``cap * tanh(scale * Q[:, p] . K[:, m] / cap)``
    (Gemma 2's attention logit soft-capping), bottom-right aligned causal mask.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    m, pos = _key_positions(k.shape[1], q.shape[1])
    scores = cap * np.tanh(scale * (k.T @ q) / cap)
    return {"AV": _masked_softmax_av(scores, v, m <= pos)}


def differential_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0,
                           lam: float) -> Outputs:
    """Differential attention (Ye et al., arXiv 2410.05258), before its per-head GroupNorm:
    ``AV = (softmax(scale * K1^T Q1) - lam * softmax(scale * K2^T Q2)) V`` over the keys.

    Inputs ``Q1[E, P]``, ``Q2[E, P]``, ``K1[E, M]``, ``K2[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q1, q2, k1, k2, v = _f64(inputs, "Q1", "Q2", "K1", "K2", "V")
    first = _masked_softmax_av(scale * (k1.T @ q1), v, None)
    second = _masked_softmax_av(scale * (k2.T @ q2), v, None)
    return {"AV": first - lam * second}


def gqa_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0) -> Outputs:
    """Grouped-query attention: query head ``(j, g)`` attends with K/V head ``j``.

    Inputs ``Q[J, G, E, P]``, ``K[J, E, M]``, ``V[J, F, M]``; output ``AV[J, G, F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    scores = scale * np.einsum("jem,jgep->jgmp", k, q)
    return {"AV": _masked_softmax_av(scores, v[:, None], None)}


def mla_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0) -> Outputs:
    """Multi-head latent attention, computed the explicit way (per-head K and V materialized).

    Inputs ``QC[H, E, P]``, ``QR[H, R, P]``, ``CKV[C, M]``, ``KR[R, M]``, ``WUK[H, C, E]``,
    ``WUV[H, C, F]``; output ``AV[H, F, P]`` with
    ``score[h, m, p] = scale * (QC[h,:,p] . (WUK[h]^T CKV)[:, m] + QR[h,:,p] . KR[:, m])``.
    """
    qc, qr, ckv, kr, wuk, wuv = _f64(inputs, "QC", "QR", "CKV", "KR", "WUK", "WUV")
    keys = np.einsum("hce,cm->hem", wuk, ckv)
    values = np.einsum("hcf,cm->hfm", wuv, ckv)
    scores = scale * (np.einsum("hep,hem->hmp", qc, keys) + np.einsum("hrp,rm->hmp", qr, kr))
    return {"AV": _masked_softmax_av(scores, values, None)}


# ---------------------------------------------------------------------------- softmax-free variants
def sigmoid_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0,
                      bias: float = 0.0) -> Outputs:
    """Sigmoid attention ``AV[f, p] = sum_m sigmoid(scale * Q[:, p] . K[:, m] + bias) V[f, m]``.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    weights = 1.0 / (1.0 + np.exp(-(scale * (k.T @ q) + bias)))
    return {"AV": v @ weights}


def relu_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0,
                   inv_len: float) -> Outputs:
    """ReLU attention ``AV[f, p] = sum_m inv_len * relu(scale * Q[:, p] . K[:, m]) V[f, m]``.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    return {"AV": v @ (inv_len * np.maximum(scale * (k.T @ q), 0.0))}


def linear_attention(inputs: Inputs, ranks: dict[str, int] | None = None) -> Outputs:
    """Non-causal linear attention with ``phi = elu + 1``, in the quadratic form
    ``AV[:, p] = sum_m (phi(q_p) . phi(k_m)) v_m / sum_m phi(q_p) . phi(k_m)``.

    Inputs ``Q[E, P]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, P]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    weights = _elu_plus_one(k).T @ _elu_plus_one(q)              # [M, P]
    return {"AV": (v @ weights) / weights.sum(axis=0)}


def causal_linear_attention(inputs: Inputs, ranks: dict[str, int] | None = None) -> Outputs:
    """Causal linear attention with ``phi = elu + 1`` in the quadratic (masked) form: token ``t``
    sees tokens ``m <= t``.

    Inputs ``Q[E, M]``, ``K[E, M]``, ``V[F, M]``; output ``AV[F, M]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    weights = np.tril(_elu_plus_one(q).T @ _elu_plus_one(k)).T  # [m, t], zero above the diagonal
    return {"AV": (v @ weights) / weights.sum(axis=0)}


def lightning_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, decay: float) -> Outputs:
    """Causal linear attention with decay (Lightning Attention / TransNormerLLM) in the quadratic form
    ``O[:, t] = sum_{m <= t} decay^(t - m) (q_t . k_m) v_m`` (no normalizer).

    Inputs ``Q[E, M]``, ``K[E, M]``, ``V[F, M]``; output ``O[F, M]``.
    """
    q, k, v = _f64(inputs, "Q", "K", "V")
    n = q.shape[1]
    distance = np.arange(n)[None, :] - np.arange(n)[:, None]     # [m, t] = t - m
    decay_mask = np.where(distance >= 0, float(decay) ** np.maximum(distance, 0), 0.0)
    return {"O": v @ ((k.T @ q) * decay_mask)}


def aaren_attention(inputs: Inputs, ranks: dict[str, int] | None = None, *, scale: float = 1.0) -> Outputs:
    """Aaren: one query ``QL[E]`` attends to every prefix; ``O[:, t] = softmax(s[:t+1]) . V[:, :t+1]``
    with ``s[m] = scale * QL . K[:, m]`` (computed as causal attention of a repeated query).

    Inputs ``QL[E]``, ``K[E, M]``, ``V[F, M]``; output ``O[F, M]``.
    """
    ql, k, v = _f64(inputs, "QL", "K", "V")
    n = k.shape[1]
    scores = np.repeat((scale * (ql @ k))[:, None], n, axis=1)    # [m, t]
    visible = np.arange(n)[:, None] <= np.arange(n)[None, :]
    return {"O": _masked_softmax_av(scores, v, visible)}


# ---------------------------------------------------------------------------------------- registry
REFERENCES: dict[str, Reference] = {
    "softmax_attention": softmax_attention,
    "causal_attention": causal_attention,
    "sliding_window_attention": sliding_window_attention,
    "sink_window_attention": sink_window_attention,
    "alibi_attention": alibi_attention,
    "prefix_lm_attention": prefix_lm_attention,
    "softcap_attention": softcap_attention,
    "differential_attention": differential_attention,
    "gqa_attention": gqa_attention,
    "mla_attention": mla_attention,
    "sigmoid_attention": sigmoid_attention,
    "softmax_lse_attention": softmax_lse_attention,
    "relu_attention": relu_attention,
    "linear_attention": linear_attention,
    "causal_linear_attention": causal_linear_attention,
    "lightning_attention": lightning_attention,
    "aaren_attention": aaren_attention,
}


def get_reference(name: str) -> Reference:
    """The reference function registered as ``name``; a :class:`SpecError` naming the known ones if none."""
    try:
        return REFERENCES[name]
    except KeyError:
        known = ", ".join(sorted(REFERENCES))
        raise SpecError(f"unknown reference function {name!r}",
                        hint=f"reference.function must be one of: {known}") from None
