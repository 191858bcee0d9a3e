"""``run_cascade(..., slice_of=(rank, lo, hi))``: a slice of the query rank keeps its coordinates in the
whole problem, so bottom-right causal, ALiBi, prefix-LM and window masks (which read ``p`` and ``P``)
give, slice by slice, exactly the whole run; ``slice_refusal`` says which ranks cannot be run a slice
at a time.  (``einloom sim --functional fp64`` runs a schedule's query tiles this way.)"""
from __future__ import annotations

import numpy as np
import pytest

from einloom.einsum import load_cascade, parse_cascade_text, run_cascade
from einloom.einsum.interpret import slice_refusal


def _qkv(p: int, m: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"Q": 1.5 * rng.standard_normal((4, p)), "K": 1.5 * rng.standard_normal((4, m)),
            "V": rng.standard_normal((3, m))}


def _by_slices(name: str, x: dict, ranks: dict, step: int) -> np.ndarray:
    cascade = load_cascade(name)
    parts = [run_cascade(cascade, {**x, "Q": x["Q"][:, lo:lo + step]}, ranks,
                         slice_of=("P", lo, min(lo + step, ranks["P"]))).outputs["AV"]
             for lo in range(0, ranks["P"], step)]
    return np.concatenate(parts, axis=1)


CASES = [("causal-1pass", 24, 40), ("causal-1pass", 30, 12), ("alibi", 9, 30), ("prefix-lm", 30, 20),
         ("prefix-lm", 16, 40), ("sinks-window", 20, 50), ("sliding-window", 33, 33), ("softcap", 10, 25)]


@pytest.mark.parametrize("name,P,M", CASES)
def test_slices_assemble_the_whole_run(name, P, M):
    x, ranks = _qkv(P, M), {"P": P, "M": M, "E": 4, "F": 3, "M0": 4}
    whole = run_cascade(load_cascade(name), x, ranks).outputs["AV"]
    np.testing.assert_allclose(_by_slices(name, x, ranks, 4), whole, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_by_slices(name, x, ranks, 7), whole, rtol=0, atol=1e-12)


def test_a_slice_run_as_a_small_problem_is_wrong():
    """The sharpness of the above: a query tile run as a problem of its own (P = 4) moves the diagonal."""
    x, ranks = _qkv(24, 40), {"P": 24, "M": 40, "E": 4, "F": 3, "M0": 4}
    cascade = load_cascade("causal-1pass")
    whole = run_cascade(cascade, x, ranks).outputs["AV"]
    alone = run_cascade(cascade, {**x, "Q": x["Q"][:, :4]}, {**ranks, "P": 4}).outputs["AV"]
    assert np.abs(alone - whole[:, :4]).max() > 0.1


def test_what_cannot_be_sliced_says_why():
    ranks = {"P": 8, "M": 8, "E": 4, "F": 3}
    assert slice_refusal(load_cascade("causal-1pass"), ranks, "P") is None
    assert "M0, M1 partition it" in slice_refusal(load_cascade("causal-1pass"), ranks, "M")
    assert "Einsum KV reduces or iterates over it" in slice_refusal(load_cascade("linear-causal"), {"M": 8, "E": 4,
                                                                                                     "F": 3}, "M")
    text = "\n".join(["name: rel", "tensors:", "  X: [P]", "  R: [D]", "  O: [P]", "inputs: [X, R]",
                      "outputs: [O]", "einsums:", "  - 'O[p] = X[p] * R[p + 1]'"])
    rel = parse_cascade_text(text + "\n")
    assert "computes an index from p" in slice_refusal(rel, {"P": 4, "D": 5}, "P")
    with pytest.raises(ValueError, match="computes an index from p"):
        run_cascade(rel, {"X": np.ones(2), "R": np.ones(5)}, {"P": 4, "D": 5}, slice_of=("P", 0, 2))
    with pytest.raises(ValueError, match="outside rank P"):
        run_cascade(load_cascade("causal-1pass"), _qkv(2, 8), {**ranks, "P": 8}, slice_of=("P", 6, 9))
