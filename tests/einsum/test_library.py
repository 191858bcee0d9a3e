"""The variant library (einsum/library/*.yaml) against independent NumPy implementations.

For every library variant this file
  * runs the cascade with ``run_cascade`` on seeded random float64 inputs at several rank sizes
    (defaults, ragged last tiles, single partial tiles, decode P < M, fully masked leading tiles)
    and compares it with a naive implementation written HERE (per-query loops, recurrences), not
    with ``einloom.einsum.references``;
  * checks the pass count over the sequence rank against attention-variants.md;
  * checks that the package's reference function named by the spec's ``reference:`` mapping (with
    its arguments evaluated from the spec's params) agrees with the naive implementation;
  * re-runs the tiled variants with the tile param overridden (M0 = 1, 7, > M), and checks that two
    classic online-softmax bugs planted in fusemax-1pass are caught.

Tolerance: max |cascade - naive| / max |naive| < 1e-10 (float64).
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

import einloom.einsum as einsum_pkg
from einloom.einsum import references
from einloom.einsum.errors import SpecError

LIBRARY = Path(einsum_pkg.__file__).resolve().parent / "library"
TOLERANCE = 1e-10

# Pass counts over the sequence rank M, as derived in each variant's source (the papers cited in einsum/library/*.yaml).
EXPECTED_PASSES = {
    "softmax-3pass": 3,      # §2.1: GM -> SN and SD -> A are two full-reduction barriers
    "causal-3pass": 3,       # §2.1 with a §2.5 mask: a predicate does not change the pass count
    "softmax-2pass": 2,      # §2.2 (form a): only GM is a barrier; the division is deferred
    "flash1-1pass": 1,       # §2.3
    "fusemax-1pass": 1,      # §2.4
    "causal-1pass": 1,       # §2.5: "Passes: 1 with 2.4"
    "gqa": 1,                # §3.1: same as the base cascade (2.4 here)
    "mla-explicit": 1,       # §3.2
    "mla-absorbed": 1,       # §3.2
    "split-kv-decode": 1,    # §4.1: "K/V are read once (1 pass over M). The combine traverses M1 a
                             # second time, but only over partials" (walking M1 alone is not a pass over M)
    "sliding-window": 1,     # §5.1
    "sinks-window": 1,       # §5.2
    "sigmoid": 1,            # §7.1
    "linear": 1,             # §8.1 (non-causal: M traversal, then P traversal)
    "linear-causal": 1,      # §8.1 (iterative rank over tokens)
    "lightning": 1,          # §8.2
    "aaren": 1,              # §9.1: sequential recurrence form
    "alibi": 1,              # §2.6: "Passes: 1" (a coordinate bias before the softmax of 2.4)
    "prefix-lm": 1,          # §2.5: a predicate does not change the pass count
    "softcap": 1,            # an elementwise map of the score before the softmax of 2.4
    "differential": 1,       # two independent 1-pass softmaxes (2.4) over the same traversal of M
    "relu-attention": 1,     # pointwise like §7.1: no max, no normalizer
    "attention-lse": 1,      # 2.4 plus a per-query log of its final denominator
}


# ------------------------------------------------------------------------------ naive implementations
# Deliberately loop-based and structured differently from einloom.einsum.references.

def _softmax_row(scores: list[float]) -> np.ndarray:
    top = max(scores)
    weights = np.array([math.exp(s - top) for s in scores])
    return weights / weights.sum()


def naive_masked_softmax(Q, K, V, scale: float, visible: Callable[[int, int], bool]) -> np.ndarray:
    """AV[:, p] = sum over visible m of softmax(scale * q_p . k_m) v_m, one query at a time.
    ``visible(m, pos)`` gets the key index and the query's bottom-right aligned position p + M - P
    (FlashAttention >= 2.1's convention).  A query that sees no key (P > M) outputs 0."""
    E, P = Q.shape
    M = K.shape[1]
    out = np.zeros((V.shape[0], P))
    for p in range(P):
        pos = p + M - P
        keys = [m for m in range(M) if visible(m, pos)]
        if not keys:
            continue
        scores = [scale * float(np.dot(Q[:, p], K[:, m])) for m in keys]
        probs = _softmax_row(scores)
        for prob, m in zip(probs, keys):
            out[:, p] += prob * V[:, m]
    return out


def naive_softmax(inputs, scale):
    return {"AV": naive_masked_softmax(inputs["Q"], inputs["K"], inputs["V"], scale, lambda m, pos: True)}


def naive_softmax_lse(inputs, scale):
    """AV and LSE[p] = log sum_m exp(scale * q_p . k_m), the sum accumulated in Python floats."""
    Q, K = inputs["Q"], inputs["K"]
    lse = np.array([math.log(math.fsum(math.exp(scale * float(np.dot(Q[:, p], K[:, m]))) for m in range(K.shape[1])))
                    for p in range(Q.shape[1])])
    return {**naive_softmax(inputs, scale), "LSE": lse}


def naive_causal(inputs, scale):
    return {"AV": naive_masked_softmax(inputs["Q"], inputs["K"], inputs["V"], scale, lambda m, pos: m <= pos)}


def naive_window(inputs, scale, window):
    return {"AV": naive_masked_softmax(inputs["Q"], inputs["K"], inputs["V"], scale,
                                       lambda m, pos: pos - window < m <= pos)}


def naive_sinks(inputs, scale, sinks, window):
    return {"AV": naive_masked_softmax(inputs["Q"], inputs["K"], inputs["V"], scale,
                                       lambda m, pos: m <= pos and (m < sinks or m > pos - window))}


def naive_scored_softmax(Q, K, V, score: Callable[[float, int, int], float | None]) -> np.ndarray:
    """Like :func:`naive_masked_softmax`, with the score of a visible pair computed by
    ``score(q_p . k_m, m, pos)`` (None: the key is masked)."""
    E, P = Q.shape
    M = K.shape[1]
    out = np.zeros((V.shape[0], P))
    for p in range(P):
        pos = p + M - P
        pairs = [(m, score(float(np.dot(Q[:, p], K[:, m])), m, pos)) for m in range(M)]
        pairs = [(m, s) for m, s in pairs if s is not None]
        if not pairs:
            continue
        probs = _softmax_row([s for _, s in pairs])
        for prob, (m, _) in zip(probs, pairs):
            out[:, p] += prob * V[:, m]
    return out


def alibi_slope(head: int, heads: int) -> float:
    """Press et al. 2022, Sec. 3: the geometric sequence that starts at 2^(-8/n) with ratio 2^(-8/n)."""
    start = 2.0 ** (-8.0 / heads)
    return start * start ** head


def naive_alibi(inputs, scale, slope):
    """Causal softmax of q.k * scale minus slope times the distance from the query's position."""
    return {"AV": naive_scored_softmax(inputs["Q"], inputs["K"], inputs["V"],
                                       lambda dot, m, pos: scale * dot - slope * (pos - m) if m <= pos else None)}


def naive_prefix_lm(inputs, scale, prefix):
    return {"AV": naive_masked_softmax(inputs["Q"], inputs["K"], inputs["V"], scale,
                                       lambda m, pos: m < prefix or m <= pos)}


def naive_softcap(inputs, scale, cap):
    return {"AV": naive_scored_softmax(inputs["Q"], inputs["K"], inputs["V"],
                                       lambda dot, m, pos: cap * math.tanh(scale * dot / cap) if m <= pos else None)}


def naive_differential(inputs, scale, lam):
    """Two full softmax attentions over the same V, subtracted with weight lam."""
    def every(m, pos):
        return True
    first = naive_masked_softmax(inputs["Q1"], inputs["K1"], inputs["V"], scale, every)
    second = naive_masked_softmax(inputs["Q2"], inputs["K2"], inputs["V"], scale, every)
    return {"AV": first - lam * second}


def naive_gqa(inputs, scale):
    Q, K, V = inputs["Q"], inputs["K"], inputs["V"]
    J, G, _, P = Q.shape
    out = np.zeros((J, G, V.shape[1], P))
    for j in range(J):
        for g in range(G):
            out[j, g] = naive_masked_softmax(Q[j, g], K[j], V[j], scale, lambda m, pos: True)
    return {"AV": out}


def naive_mla(inputs, scale):
    """Per head: materialize K_h = W_UK^T C and V_h = W_UV^T C, concatenate the RoPE part to q and k."""
    QC, QR, CKV, KR, WUK, WUV = (inputs[n] for n in ("QC", "QR", "CKV", "KR", "WUK", "WUV"))
    H, _, P = QC.shape
    out = np.zeros((H, WUV.shape[2], P))
    for h in range(H):
        keys = np.concatenate([WUK[h].T @ CKV, KR], axis=0)        # [(E+R), M]
        queries = np.concatenate([QC[h], QR[h]], axis=0)           # [(E+R), P]
        out[h] = naive_masked_softmax(queries, keys, WUV[h].T @ CKV, scale, lambda m, pos: True)
    return {"AV": out}


def naive_sigmoid(inputs, scale, bias):
    Q, K, V = inputs["Q"], inputs["K"], inputs["V"]
    out = np.zeros((V.shape[0], Q.shape[1]))
    for p in range(Q.shape[1]):
        for m in range(K.shape[1]):
            x = scale * float(np.dot(Q[:, p], K[:, m])) + bias
            out[:, p] += V[:, m] / (1.0 + math.exp(-x))
    return {"AV": out}


def naive_relu(inputs, scale):
    """Each key's weight is relu(score) over the number of keys (Wortsman et al. 2023)."""
    Q, K, V = inputs["Q"], inputs["K"], inputs["V"]
    M = K.shape[1]
    out = np.zeros((V.shape[0], Q.shape[1]))
    for p in range(Q.shape[1]):
        for m in range(M):
            out[:, p] += max(scale * float(np.dot(Q[:, p], K[:, m])), 0.0) / M * V[:, m]
    return {"AV": out}


def _phi(x: np.ndarray) -> np.ndarray:
    return np.array([v + 1.0 if v > 0 else math.exp(v) for v in x])


def naive_linear(inputs):
    Q, K, V = inputs["Q"], inputs["K"], inputs["V"]
    out = np.zeros((V.shape[0], Q.shape[1]))
    for p in range(Q.shape[1]):
        fq = _phi(Q[:, p])
        weights = [float(np.dot(fq, _phi(K[:, m]))) for m in range(K.shape[1])]
        out[:, p] = sum(w * V[:, m] for m, w in enumerate(weights)) / sum(weights)
    return {"AV": out}


def naive_linear_causal(inputs):
    """Recurrent form: S = S + phi(k) v^T, z = z + phi(k); o = phi(q)^T S / phi(q) . z."""
    Q, K, V = inputs["Q"], inputs["K"], inputs["V"]
    E, N = Q.shape
    state, norm = np.zeros((E, V.shape[0])), np.zeros(E)
    out = np.zeros((V.shape[0], N))
    for t in range(N):
        fk = _phi(K[:, t])
        state = state + np.outer(fk, V[:, t])
        norm = norm + fk
        fq = _phi(Q[:, t])
        out[:, t] = fq @ state / float(fq @ norm)
    return {"AV": out}


def naive_lightning(inputs, decay):
    """Recurrent decode form: S = decay * S + k v^T; o = q . S."""
    Q, K, V = inputs["Q"], inputs["K"], inputs["V"]
    state = np.zeros((Q.shape[0], V.shape[0]))
    out = np.zeros((V.shape[0], Q.shape[1]))
    for t in range(Q.shape[1]):
        state = decay * state + np.outer(K[:, t], V[:, t])
        out[:, t] = Q[:, t] @ state
    return {"O": out}


def naive_aaren(inputs, scale):
    """Per-prefix softmax of the one learned query."""
    QL, K, V = inputs["QL"], inputs["K"], inputs["V"]
    out = np.zeros((V.shape[0], K.shape[1]))
    for t in range(K.shape[1]):
        probs = _softmax_row([scale * float(np.dot(QL, K[:, m])) for m in range(t + 1)])
        out[:, t] = V[:, : t + 1] @ probs
    return {"O": out}


# ------------------------------------------------------------------------------------- the variants
def _qkv(r, rng):
    return {"Q": 1.5 * rng.standard_normal((r["E"], r["P"])),
            "K": 1.5 * rng.standard_normal((r["E"], r["M"])),
            "V": rng.standard_normal((r["F"], r["M"]))}


def _self_qkv(r, rng):
    return {"Q": rng.standard_normal((r["E"], r["M"])),
            "K": rng.standard_normal((r["E"], r["M"])),
            "V": rng.standard_normal((r["F"], r["M"]))}


def _gqa_inputs(r, rng):
    return {"Q": 1.5 * rng.standard_normal((r["J"], r["G"], r["E"], r["P"])),
            "K": 1.5 * rng.standard_normal((r["J"], r["E"], r["M"])),
            "V": rng.standard_normal((r["J"], r["F"], r["M"]))}


def _mla_inputs(r, rng):
    s = 1 / math.sqrt(r["C"])
    return {"QC": rng.standard_normal((r["H"], r["E"], r["P"])),
            "QR": rng.standard_normal((r["H"], r["R"], r["P"])),
            "CKV": rng.standard_normal((r["C"], r["M"])),
            "KR": rng.standard_normal((r["R"], r["M"])),
            "WUK": 2 * s * rng.standard_normal((r["H"], r["C"], r["E"])),
            "WUV": s * rng.standard_normal((r["H"], r["C"], r["F"]))}


def _aaren_inputs(r, rng):
    return {"QL": 2 * rng.standard_normal(r["E"]),
            "K": rng.standard_normal((r["E"], r["M"])),
            "V": rng.standard_normal((r["F"], r["M"]))}


def _diff_inputs(r, rng):
    return {"Q1": 1.5 * rng.standard_normal((r["E"], r["P"])), "Q2": 1.5 * rng.standard_normal((r["E"], r["P"])),
            "K1": 1.5 * rng.standard_normal((r["E"], r["M"])), "K2": 1.5 * rng.standard_normal((r["E"], r["M"])),
            "V": rng.standard_normal((r["F"], r["M"]))}


def _scale(r):
    return 1 / math.sqrt(r["E"])


# Every library spec uses M0 = 16 (key tile / split / block).  Cases: the spec's defaults, ragged
# last tiles (M % 16 != 0), a single partial tile (M < 16), decode (P = 1 < M), and for the window
# variants queries whose leading tiles are fully masked.  Masked variants also run P != M both ways
# (bottom-right aligned): P < M (issue 12's 8 queries x 24 keys) and P > M, where the first P - M
# queries see no key and must output 0.
QKV_CASES = [dict(P=64, M=64, E=16, F=16), dict(P=7, M=50, E=8, F=5), dict(P=3, M=17, E=4, F=6),
             dict(P=2, M=5, E=3, F=2)]
CAUSAL_CASES = [dict(P=48, M=64, E=16, F=16), dict(P=1, M=50, E=8, F=4), dict(P=33, M=33, E=4, F=6),
                dict(P=5, M=40, E=6, F=3), dict(P=8, M=24, E=16, F=16),
                dict(P=24, M=8, E=8, F=4),      # P > M: queries 0..15 see no key
                dict(P=40, M=17, E=4, F=3)]     # P > M, ragged second tile
WINDOW_CASES = [dict(P=64, M=64, E=8, F=8),     # p = 63 sees 40..63: tiles 0 and 1 fully masked
                dict(P=1, M=70, E=8, F=4),      # decode: sees 46..69, ragged last tile 64..69
                dict(P=20, M=50, E=4, F=6), dict(P=3, M=10, E=4, F=4),
                dict(P=30, M=20, E=4, F=4)]     # P > M: queries 0..9 see no key
SINK_CASES = [dict(P=48, M=64, E=8, F=8),       # late queries: tile 0 partly (sinks), tile 1 fully masked
              dict(P=1, M=75, E=8, F=4), dict(P=30, M=30, E=4, F=6), dict(P=2, M=6, E=3, F=2),
              dict(P=45, M=38, E=4, F=3)]      # P > M: queries 0..6 see no key
# prefix-lm (prefix 24 keys = tile 0 and half of tile 1): queries of the first tile see keys of the
# second through the prefix (the OR); P > M with and without a prefix (prefix = 0 is causal: no key, 0)
PREFIX_CASES = [dict(P=48, M=64, E=8, F=8), dict(P=64, M=64, E=8, F=8), dict(P=1, M=50, E=8, F=4),
                dict(P=33, M=33, E=4, F=6), dict(P=30, M=20, E=4, F=3), dict(P=5, M=70, E=4, F=3, prefix=40),
                dict(P=24, M=8, E=4, F=3, prefix=0)]
# ALiBi: the causal cases, plus other heads of an 8-head and a 12-head model (slope 2^(-8(h+1)/H))
ALIBI_CASES = CAUSAL_CASES + [dict(P=20, M=40, E=8, F=4, head=7), dict(P=17, M=17, E=4, F=3, heads=12, head=5)]
# softcap: Gemma 2's cap of 50 barely bends these scores (|s| ~ 2), so also caps that bend them hard
SOFTCAP_CASES = CAUSAL_CASES[:4] + [dict(P=24, M=40, E=8, F=4, cap=1.5), dict(P=40, M=17, E=4, F=3, cap=0.5)]
DIFF_CASES = QKV_CASES + [dict(P=20, M=33, E=8, F=8, layer=6)]
SELF_CASES = [dict(M=48, E=16, F=16), dict(M=1, E=4, F=3), dict(M=23, E=5, F=7)]
LIGHTNING_CASES = [dict(M=64, E=16, F=16), dict(M=50, E=8, F=4), dict(M=7, E=4, F=6), dict(M=33, E=5, F=3)]

VARIANTS = {
    # name: (input maker, naive implementation(inputs, ranks), cases)
    "softmax-3pass": (_qkv, lambda x, r: naive_softmax(x, _scale(r)), QKV_CASES),
    "softmax-2pass": (_qkv, lambda x, r: naive_softmax(x, _scale(r)), QKV_CASES),
    "flash1-1pass": (_qkv, lambda x, r: naive_softmax(x, _scale(r)), QKV_CASES),
    "fusemax-1pass": (_qkv, lambda x, r: naive_softmax(x, _scale(r)), QKV_CASES),
    "attention-lse": (_qkv, lambda x, r: naive_softmax_lse(x, _scale(r)), QKV_CASES[:3]),
    "split-kv-decode": (_qkv, lambda x, r: naive_softmax(x, _scale(r)),
                        [dict(P=2, M=64, E=16, F=16), dict(P=1, M=70, E=8, F=4), dict(P=3, M=9, E=4, F=5),
                         dict(P=1, M=33, E=5, F=3)]),
    "causal-3pass": (_qkv, lambda x, r: naive_causal(x, _scale(r)), CAUSAL_CASES),
    "causal-1pass": (_qkv, lambda x, r: naive_causal(x, _scale(r)), CAUSAL_CASES),
    "sliding-window": (_qkv, lambda x, r: naive_window(x, _scale(r), 24), WINDOW_CASES),
    "sinks-window": (_qkv, lambda x, r: naive_sinks(x, _scale(r), 4, 16), SINK_CASES),
    "gqa": (_gqa_inputs, lambda x, r: naive_gqa(x, _scale(r)),
            [dict(J=2, G=3, P=32, M=48, E=16, F=16), dict(J=1, G=4, P=5, M=37, E=8, F=8),
             dict(J=3, G=1, P=2, M=20, E=4, F=3)]),
    "mla-explicit": (_mla_inputs, lambda x, r: naive_mla(x, 1 / math.sqrt(r["E"] + r["R"])),
                     [dict(H=2, C=24, R=8, P=32, M=48, E=16, F=16), dict(H=3, C=10, R=4, P=3, M=35, E=8, F=6)]),
    "mla-absorbed": (_mla_inputs, lambda x, r: naive_mla(x, 1 / math.sqrt(r["E"] + r["R"])),
                     [dict(H=2, C=24, R=8, P=4, M=48, E=16, F=16), dict(H=3, C=10, R=4, P=1, M=35, E=8, F=6)]),
    "sigmoid": (_qkv, lambda x, r: naive_sigmoid(x, _scale(r), -math.log(r["M"])), QKV_CASES[:3]),
    "relu-attention": (_qkv, lambda x, r: naive_relu(x, _scale(r)), QKV_CASES),
    "linear": (_qkv, lambda x, r: naive_linear(x), QKV_CASES[:3]),
    "linear-causal": (_self_qkv, lambda x, r: naive_linear_causal(x), SELF_CASES),
    "lightning": (_self_qkv, lambda x, r: naive_lightning(x, 0.9), LIGHTNING_CASES),
    "aaren": (_aaren_inputs, lambda x, r: naive_aaren(x, _scale(r)), SELF_CASES),
    "alibi": (_qkv, lambda x, r: naive_alibi(x, _scale(r), alibi_slope(r.get("head", 0), r.get("heads", 8))),
              ALIBI_CASES),
    "prefix-lm": (_qkv, lambda x, r: naive_prefix_lm(x, _scale(r), r.get("prefix", 24)), PREFIX_CASES),
    "softcap": (_qkv, lambda x, r: naive_softcap(x, _scale(r), r.get("cap", 50.0)), SOFTCAP_CASES),
    "differential": (_diff_inputs, lambda x, r: naive_differential(
        x, _scale(r), 0.8 - 0.6 * math.exp(-0.3 * (r.get("layer", 1) - 1))), DIFF_CASES),
}

CASES = [pytest.param(name, ranks, id=f"{name}-" + ",".join(f"{k}{v}" for k, v in ranks.items()))
         for name, (_, _, cases) in VARIANTS.items() for ranks in cases]


# ------------------------------------------------------------------------------------------- helpers
def spec_data(name: str) -> dict:
    return yaml.safe_load((LIBRARY / f"{name}.yaml").read_text())


def spec_params(data: dict, ranks: dict[str, int]) -> dict[str, float]:
    """The spec's params evaluated in order (an independent mini-evaluator: params are arithmetic)."""
    scope: dict[str, float] = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp, "exp2": lambda x: 2.0 ** x,
                               "ceil": math.ceil,
                               "floor": math.floor, "__builtins__": {}}
    scope.update(ranks)
    values: dict[str, float] = {}
    for key, expr in (data.get("params") or {}).items():
        value = expr if isinstance(expr, (int, float)) else eval(str(expr), scope)  # noqa: S307 (our own files)
        value = ranks.get(key, value)            # a param given with the ranks overrides the spec's (as run_cascade)
        scope[key] = values[key] = value
    return values


def reference_call(data: dict, ranks: dict[str, int]) -> tuple[str, dict[str, float]]:
    """The spec's ``reference:`` function name and its arguments with param names replaced by values."""
    mapping = dict(data["reference"])
    function = mapping.pop("function")
    params = spec_params(data, ranks)
    return function, {k: params[v] if isinstance(v, str) else v for k, v in mapping.items()}


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.all(np.isfinite(actual)), "non-finite values in the result"
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def make_case(name: str, ranks: dict[str, int]):
    maker, naive, _ = VARIANTS[name]
    seed = zlib.crc32(repr((name, sorted(ranks.items()))).encode())
    rng = np.random.default_rng(seed)
    inputs = maker(ranks, rng)
    return inputs, naive(inputs, ranks)


# --------------------------------------------------------------------------------------------- tests
def test_every_library_spec_is_covered():
    on_disk = sorted(p.stem for p in LIBRARY.glob("*.yaml"))
    assert on_disk == sorted(VARIANTS), "add new library variants to VARIANTS and EXPECTED_PASSES"
    assert sorted(EXPECTED_PASSES) == sorted(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_spec_metadata(name):
    data = spec_data(name)
    assert data["name"] == name
    assert data["description"] and "arXiv" in data["source"]
    assert data["ranks"], "default ranks for `einloom run`"
    function, _ = reference_call(data, {**data["ranks"]})
    assert function in references.REFERENCES
    einsums = " ".join(data["einsums"])
    if "scale" in einsums:
        assert "scale" in data["params"], "the 1/sqrt(E) scale is a param"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_spec_loads(name):
    cascade = einsum_pkg.load_cascade(name)
    assert cascade.name == name
    assert cascade.reference["function"] == spec_data(name)["reference"]["function"]


@pytest.mark.parametrize("name,ranks", CASES)
def test_cascade_matches_naive(name, ranks):
    inputs, expected = make_case(name, ranks)
    cascade = einsum_pkg.load_cascade(name)
    run = einsum_pkg.run_cascade(cascade, inputs, ranks)
    result = getattr(run, "outputs", run)              # RunResult (or a plain dict of outputs)
    assert sorted(result) == sorted(expected)
    for out, value in expected.items():
        error = relative_error(result[out], value)
        assert error < TOLERANCE, f"{name} {ranks}: {out} relative error {error:.3g}"


@pytest.mark.parametrize("name,ranks", CASES)
def test_package_reference_matches_naive(name, ranks):
    inputs, expected = make_case(name, ranks)
    data = spec_data(name)
    function, kwargs = reference_call(data, {**data["ranks"], **ranks})
    result = references.get_reference(function)(inputs, ranks, **kwargs)
    for out, value in expected.items():
        error = relative_error(result[out], value)
        assert error < TOLERANCE, f"{function} {ranks}: {out} relative error {error:.3g}"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_pass_count(name):
    from einloom.einsum.analysis import analyse
    data = spec_data(name)
    cascade = einsum_pkg.load_cascade(name)
    passes = analyse(cascade, dict(data["ranks"])).passes
    assert passes["M"] == EXPECTED_PASSES[name], passes


def test_unknown_reference_is_a_clear_error():
    with pytest.raises(SpecError, match="unknown reference function 'softmax'.*softmax_attention"):
        references.get_reference("softmax")


def test_naive_softmax_can_fail():
    """The check is sharp: a wrong scale or a dropped key is caught."""
    inputs, expected = make_case("fusemax-1pass", QKV_CASES[1])
    wrong = naive_softmax(inputs, 1.01 / math.sqrt(QKV_CASES[1]["E"]))
    assert relative_error(wrong["AV"], expected["AV"]) > 1e-4
    dropped = naive_masked_softmax(inputs["Q"], inputs["K"], inputs["V"], 1 / math.sqrt(8), lambda m, pos: m < 49)
    assert relative_error(dropped, expected["AV"]) > 1e-4


def test_window_cases_cover_fully_masked_leading_tiles():
    """The last query of the first two sliding-window cases sees no key of tile 0 (M0 = 16)."""
    window, tile = 24, 16
    for ranks in WINDOW_CASES[:2]:
        first_visible_key_of_last_query = ranks["M"] - window
        assert first_visible_key_of_last_query >= tile


@pytest.mark.parametrize("old,new", [
    ("SPD[m1, p]      = PRM[m1, p] * RD[m1, p]", "SPD[m1, p]      = RD[m1, p]"),          # no rescale
    ("SLN[m1, m0, p]  = exp(QK[m1, m0, p] - RM[m1+1, p])",
     "SLN[m1, m0, p]  = exp(QK[m1, m0, p] - LM[m1, p])"),                                # local max only
])
def test_broken_cascade_is_caught(old, new):
    """A cascade with a classic online-softmax bug must fail the same comparison."""
    text = (LIBRARY / "fusemax-1pass.yaml").read_text()
    assert old in text
    cascade = einsum_pkg.parse_cascade_text(text.replace(old, new), "broken-fusemax.yaml")
    ranks = QKV_CASES[1]
    inputs, expected = make_case("fusemax-1pass", ranks)
    run = einsum_pkg.run_cascade(cascade, inputs, ranks)
    result = getattr(run, "outputs", run)
    assert relative_error(result["AV"], expected["AV"]) > 1e-3


TILED = ["fusemax-1pass", "flash1-1pass", "causal-1pass", "sliding-window", "sinks-window", "split-kv-decode",
         "lightning", "gqa", "mla-explicit", "mla-absorbed", "alibi", "prefix-lm", "softcap", "differential"]


@pytest.mark.parametrize("tile", [1, 7, 100])
@pytest.mark.parametrize("name", TILED)
def test_tile_size_override(name, tile):
    """The tile param M0 given as a rank size: one key per tile, a ragged 7, and one tile larger than M."""
    ranks = VARIANTS[name][2][1]
    inputs, expected = make_case(name, ranks)
    run = einsum_pkg.run_cascade(einsum_pkg.load_cascade(name), inputs, {**ranks, "M0": tile})
    result = getattr(run, "outputs", run)
    for out, value in expected.items():
        error = relative_error(result[out], value)
        assert error < TOLERANCE, f"{name} {ranks} M0={tile}: {out} relative error {error:.3g}"


@pytest.mark.parametrize("name,ranks,wrong", [
    ("alibi", ALIBI_CASES[-1], lambda x, r: naive_alibi(x, _scale(r), alibi_slope(4, 12))),   # a neighbour head's slope
    ("alibi", CAUSAL_CASES[0], lambda x, r: naive_causal(x, _scale(r))),                     # no bias
    ("prefix-lm", PREFIX_CASES[1], lambda x, r: naive_causal(x, _scale(r))),                 # prefix ignored
    ("prefix-lm", PREFIX_CASES[0], lambda x, r: naive_prefix_lm(x, _scale(r), 23)),          # one key short
    ("softcap", SOFTCAP_CASES[-2], lambda x, r: naive_causal(x, _scale(r))),                 # no cap
    ("differential", DIFF_CASES[0], lambda x, r: naive_differential(x, _scale(r), 0.0)),     # lambda dropped
    ("differential", DIFF_CASES[-1], lambda x, r: naive_differential(x, _scale(r), 0.2)),    # layer 1's lambda
    ("relu-attention", QKV_CASES[1], lambda x, r: {"AV": naive_relu(x, _scale(r))["AV"] * r["M"] / r["P"]}),  # 1/P
])
def test_new_variant_checks_are_sharp(name, ranks, wrong):
    """The cases of the issue-15 variants tell the variant from its near misses (a wrong slope, a
    missing bias, prefix, cap or lambda, the query count for the key count)."""
    inputs, expected = make_case(name, ranks)
    assert relative_error(wrong(inputs, ranks)["AV"], expected["AV"]) > 1e-3


def test_alibi_slopes_are_the_papers():
    """8 heads: 1/2, 1/4, ..., 1/256 (Press et al. 2022, Sec. 3), from the spec's own param expression."""
    data = spec_data("alibi")
    slopes = [spec_params(data, {**data["ranks"], "head": h})["slope"] for h in range(8)]
    assert slopes == [2.0 ** -(h + 1) for h in range(8)]
    assert [alibi_slope(h, 8) for h in range(8)] == slopes
