"""Focused semantic tests of the cascade language: interpreter, analyses, builder, canonical printing."""
from __future__ import annotations

import numpy as np
import pytest

from einloom.einsum import (
    CascadeBuilder, SpecError, load_cascade, parse_cascade_text, register_operator, register_reduction,
    run_cascade,
)
from einloom.einsum.analysis import analyse
from einloom.einsum.expr import parse_expression, to_text
from einloom.einsum.operators import is_reduction

RNG = np.random.default_rng(7)


def spec(einsums: list[str], tensors: dict[str, list[str]], inputs: list[str], outputs: list[str],
         *, params: dict | None = None, init: dict | None = None, ranks: dict | None = None) -> str:
    lines = ["name: t", "tensors:"] + [f"  {n}: [{', '.join(r)}]" for n, r in tensors.items()]
    lines += [f"inputs: [{', '.join(inputs)}]", f"outputs: [{', '.join(outputs)}]"]
    if ranks:
        lines += ["ranks:"] + [f"  {k}: {v}" for k, v in ranks.items()]
    if params:
        lines += ["params:"] + [f"  {k}: {v}" for k, v in params.items()]
    if init:
        lines += ["init:"] + [f"  '{k}': {v}" for k, v in init.items()]
    lines += ["einsums:"] + [f"  - '{e}'" for e in einsums]
    return "\n".join(lines) + "\n"


def run1(einsums, tensors, inputs_arrays, outputs=("O",), **kw):
    cascade = parse_cascade_text(spec(einsums, tensors, list(inputs_arrays), list(outputs), **kw))
    return run_cascade(cascade, inputs_arrays)


# ------------------------------------------------------------------------------------ reductions
def test_implicit_sum_is_a_contraction():
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 5))
    r = run1(["O[m, p] = A[e, p] * B[e, m]"], {"A": ["E", "P"], "B": ["E", "M"], "O": ["M", "P"]},
             {"A": a, "B": b})
    np.testing.assert_allclose(r.outputs["O"], b.T @ a)


def test_implicit_sum_covers_the_whole_right_hand_side():
    a, b = RNG.standard_normal((4,)), RNG.standard_normal((4, 3))
    r = run1(["O[p] = A[m] + B[m, p]"], {"A": ["M"], "B": ["M", "P"], "O": ["P"]}, {"A": a, "B": b})
    np.testing.assert_allclose(r.outputs["O"], (a[:, None] + b).sum(axis=0))


@pytest.mark.parametrize("op,fn", [("sum", np.sum), ("max", np.max), ("min", np.min), ("prod", np.prod)])
def test_explicit_reductions(op, fn):
    x = RNG.standard_normal((5, 3))
    r = run1([f"O[p] = {op}[m] X[m, p]"], {"X": ["M", "P"], "O": ["P"]}, {"X": x})
    np.testing.assert_allclose(r.outputs["O"], fn(x, axis=0))


def test_reduction_inside_parentheses_and_over_two_ranks():
    x = RNG.standard_normal((5, 3, 2))
    r = run1(["O[p] = (max[m, e] X[m, p, e]) / 2 + 1"], {"X": ["M", "P", "E"], "O": ["P"]}, {"X": x})
    np.testing.assert_allclose(r.outputs["O"], x.max(axis=(0, 2)) / 2 + 1)


def test_registered_operator_and_reduction_run_and_cost():
    register_operator("cube", lambda x: np.asarray(x) ** 3, cost={"mul": 2})
    register_reduction("sumsq", reduce=lambda d, axes: np.sum(np.asarray(d) ** 2, axis=axes), identity=0.0,
                       cost={"mac": 1})
    assert is_reduction("sumsq")
    x = RNG.standard_normal((4, 3))
    cascade = parse_cascade_text(spec(["C[m, p] = cube(X[m, p])", "O[p] = sumsq[m] C[m, p]"],
                                      {"X": ["M", "P"], "O": ["P"]}, ["X"], ["O"]))
    r = run_cascade(cascade, {"X": x})
    np.testing.assert_allclose(r.outputs["O"], np.sum(x ** 6, axis=0))
    a = analyse(cascade, {"M": 4, "P": 3})
    assert a.op_counts["C"] == {"mul": 2 * 4 * 3}      # the op class the operator was registered with
    assert a.op_counts["O"] == {"mac": 4 * 3}
    with pytest.raises(SpecError, match="unknown op class"):
        register_operator("bad", np.abs, cost="flops")


# -------------------------------------------------------------------------- where and absence
def test_where_three_and_two_arguments():
    x = RNG.standard_normal((4, 4))
    r = run1(["O[p] = sum[m] where(m <= p, X[m, p], 0)"], {"X": ["M", "P"], "O": ["P"]}, {"X": x})
    np.testing.assert_allclose(r.outputs["O"], np.tril(x.T).sum(axis=1))
    # two arguments: masked coordinates are absent, so max skips them (a 0 would win for negative rows)
    x = -np.abs(x) - 1
    r = run1(["O[p] = max[m] where(m <= p, X[m, p])"], {"X": ["M", "P"], "O": ["P"]}, {"X": x})
    expected = [x[: p + 1, p].max() for p in range(4)]
    np.testing.assert_allclose(r.outputs["O"], expected)


def test_fully_absent_output_is_nan_and_counted():
    x = RNG.standard_normal((3, 2))
    r = run1(["O[p] = max[m] where(p > 0, X[m, p])"], {"X": ["M", "P"], "O": ["P"]}, {"X": x})
    assert np.isnan(r.outputs["O"][0]) and r.absent == {"O": 1}
    np.testing.assert_allclose(r.outputs["O"][1], x[:, 1].max())


def test_ragged_last_tile_coordinates_are_absent():
    k = RNG.standard_normal((7,))
    # M = 7 split in tiles of 3: tile 2 has one real coordinate; max/sum must ignore the padding
    r = run1(["B[m1, m0] = K[m1*M0 + m0]", "O[m1] = max[m0] B[m1, m0]", "S[m1] = sum[m0] B[m1, m0]",
              "N[m1] = sum[m0] B[m1, m0] / B[m1, m0]"],
             {"K": ["M"], "O": ["M1"], "S": ["M1"], "N": ["M1"]}, {"K": k}, outputs=("O", "S", "N"),
             params={"M0": 3})
    assert r.ranks["M1"] == 3
    np.testing.assert_allclose(r.outputs["O"], [k[0:3].max(), k[3:6].max(), k[6]])
    np.testing.assert_allclose(r.outputs["S"], [k[0:3].sum(), k[3:6].sum(), k[6]])
    np.testing.assert_allclose(r.outputs["N"], [3, 3, 1])


def test_neg_inf_minus_neg_inf_is_neg_inf():
    r = run1(["O[p] = exp(A[p] - B[p])"], {"A": ["P"], "B": ["P"], "O": ["P"]},
             {"A": np.array([-np.inf, 1.0]), "B": np.array([-np.inf, 1.0])})
    np.testing.assert_array_equal(r.outputs["O"], [0.0, 1.0])


def test_fully_masked_leading_tiles_in_the_one_pass_cascade():
    """Query 0 sees only key M-1 (decode offset): its first tiles are fully masked; no NaN may appear."""
    cascade = load_cascade("causal-1pass")
    sizes = {"P": 2, "M": 9, "E": 2, "F": 2, "M0": 3}
    q, k, v = RNG.standard_normal((2, 2)), RNG.standard_normal((2, 9)), RNG.standard_normal((2, 9))
    text = spec([
        "BK[e, m1, m0] = K[e, m1*M0 + m0]", "BV[f, m1, m0] = V[f, m1*M0 + m0]",
        "QK[m1, m0, p] = where(m1*M0 + m0 >= M - 1 - p, Q[e, p] * BK[e, m1, m0])",
        "LM[m1, p] = max[m0] QK[m1, m0, p]", "RM[m1+1, p] = max(RM[m1, p], LM[m1, p])",
        "SLN[m1, m0, p] = exp(QK[m1, m0, p] - RM[m1+1, p])", "PRM[m1, p] = exp(RM[m1, p] - RM[m1+1, p])",
        "RD[m1+1, p] = PRM[m1, p] * RD[m1, p] + sum[m0] SLN[m1, m0, p]",
        "RNV[m1+1, f, p] = PRM[m1, p] * RNV[m1, f, p] + sum[m0] SLN[m1, m0, p] * BV[f, m1, m0]",
        "AV[f, p] = RNV[M1, f, p] / RD[M1, p]"],
        {"Q": ["E", "P"], "K": ["E", "M"], "V": ["F", "M"], "AV": ["F", "P"]}, ["Q", "K", "V"], ["AV"],
        params={"M0": 3}, init={"RM[0, p]": "-inf", "RD[0, p]": 0, "RNV[0, f, p]": 0})
    r = run_cascade(parse_cascade_text(text), {"Q": q, "K": k, "V": v}, {"M0": 3})
    assert np.all(np.isfinite(r.outputs["AV"]))
    s = k.T @ q
    for p in range(2):
        keep = np.arange(9) >= 8 - p
        w = np.exp(s[keep, p] - s[keep, p].max())
        np.testing.assert_allclose(r.outputs["AV"][:, p], v[:, keep] @ w / w.sum())
    assert cascade.name == "causal-1pass" and sizes["M"] == 9


# ------------------------------------------------------------------------ coordinate predicates
def _masked(pred: str, x: np.ndarray, keep, params=None) -> None:
    r = run1([f"O[p] = sum[m] where({pred}, X[m, p])"], {"X": ["M", "P"], "O": ["P"]}, {"X": x},
             params=params)
    M, P = x.shape
    expected = [sum(x[m, p] for m in range(M) if keep(m, p)) for p in range(P)]
    np.testing.assert_allclose(np.nan_to_num(r.outputs["O"]), expected)


def test_causal_window_block_causal_and_padding_predicates():
    x = RNG.standard_normal((8, 8))
    _masked("m <= p", x, lambda m, p: m <= p)
    _masked("p - m < W and m <= p", x, lambda m, p: 0 <= p - m < 3, params={"W": 3})
    _masked("floor(m / L) <= floor(p / L)", x, lambda m, p: m // 4 <= p // 4, params={"L": 4})
    _masked("m < LEN", x, lambda m, p: m < 5, params={"LEN": 5})
    _masked("not (m > p) or m == 7", x, lambda m, p: m <= p or m == 7)


# --------------------------------------------------------------------------------- iterative rank
def test_iterative_rank_final_iterate():
    x = RNG.standard_normal((5, 3))
    r = run1(["R[m+1, p] = 0.5 * R[m, p] + X[m, p]", "O[p] = R[M, p]"],
             {"X": ["M", "P"], "O": ["P"]}, {"X": x}, init={"R[0, p]": 1})
    expected = np.ones(3)
    for m in range(5):
        expected = 0.5 * expected + x[m]
    np.testing.assert_allclose(r.outputs["O"], expected)


def test_final_iterate_read_after_the_loop_next_to_current_iterates():
    """A normalization that reads iterate m+1 AND the final iterate runs after the loop (was NaN)."""
    x = RNG.standard_normal((4, 2))
    r = run1(["R[m+1, p] = R[m, p] + X[m, p]", "O[m, p] = R[m+1, p] / R[M, p]"],
             {"X": ["M", "P"], "O": ["M", "P"]}, {"X": x}, init={"R[0, p]": 0})
    np.testing.assert_allclose(r.outputs["O"], np.cumsum(x, axis=0) / x.sum(axis=0))


# ----------------------------------------------------------------------------------- analyses
def test_op_counts_three_pass_by_hand():
    P, M, E, F = 4, 8, 2, 3
    a = analyse(load_cascade("softmax-3pass"), {"P": P, "M": M, "E": E, "F": F})
    assert a.passes["M"] == 3
    assert a.op_counts == {
        "QK": {"mac": E * M * P, "mul": E * P},          # scale * Q[e, p] once per (e, p), then the MACs
        "GM": {"max": M * P},
        "SN": {"add": M * P, "exp": M * P},               # subtract, exp
        "SD": {"add": M * P},
        "A": {"div": M * P},
        "AV": {"mac": F * M * P},
    }
    assert a.op_totals == {"add": 2 * M * P, "div": M * P, "exp": M * P, "mac": E * M * P + F * M * P,
                           "max": M * P, "mul": E * P}


def test_op_counts_one_pass_by_hand():
    P, M, E, F, M0 = 4, 8, 2, 3, 4
    M1 = 2
    a = analyse(load_cascade("fusemax-1pass"), {"P": P, "M": M, "E": E, "F": F, "M0": M0})
    assert a.passes["M"] == 1
    tile = M1 * M0 * P
    assert a.op_counts["QK"] == {"mac": E * tile, "mul": E * P}
    assert a.op_counts["LM"] == {"max": tile}
    assert a.op_counts["RM"] == {"max": M1 * P}
    assert a.op_counts["SLN"] == {"exp": tile, "add": tile}
    assert a.op_counts["PRM"] == {"exp": M1 * P, "add": M1 * P}
    assert a.op_counts["SLNV"] == {"mac": F * tile}
    assert a.op_counts["AV"] == {"div": F * P}
    assert a.op_counts["BK"] == {} and a.op_counts["BV"] == {}   # data movement
    assert a.op_totals["exp"] == tile + M1 * P == 40
    assert a.op_totals["div"] == F * P == 12


def test_footprints_grow_with_m_only_for_the_three_pass_cascade():
    three = analyse(load_cascade("softmax-3pass"))
    grows = {f.tensor for f in three.footprints if "M" in f.grows_with}
    assert grows == {"QK", "SN"}
    one = analyse(load_cascade("fusemax-1pass"))
    assert all(not f.grows_with for f in one.footprints)
    assert all("M" not in f.live_elements_formula.split("*") for f in one.footprints)
    # and the numbers: QK of the 3-pass form holds M*P elements
    small = analyse(load_cascade("softmax-3pass"), {"P": 2, "M": 16, "E": 2, "F": 2})
    assert small.tensor_sizes["QK"] == 32


def test_passes_two_pass():
    assert analyse(load_cascade("softmax-2pass")).passes["M"] == 2


# ------------------------------------------------------------------------------------ builder
def test_cascade_builder_matches_the_library_three_pass():
    b = CascadeBuilder("softmax-3pass")
    b.param("scale", "1 / sqrt(E)")
    b.input("Q", "E", "P").input("K", "E", "M").input("V", "F", "M").output("AV", "F", "P")
    b.einsum("QK[m, p] = scale * Q[e, p] * K[e, m]").einsum("GM[p] = max[m] QK[m, p]")
    b.einsum("SN[m, p] = exp(QK[m, p] - GM[p])").einsum("SD[p] = sum[m] SN[m, p]")
    b.einsum("A[m, p] = SN[m, p] / SD[p]").einsum("AV[f, p] = A[m, p] * V[f, m]")
    b.rank("P", 3).rank("M", 5).rank("E", 2).rank("F", 2).reference("softmax_attention", scale="scale")
    built = b.build()
    library = load_cascade("softmax-3pass")
    assert [e.canonical_text() for e in built.einsums] == [e.canonical_text() for e in library.einsums]
    assert analyse(built).passes["M"] == 3
    with pytest.raises(SpecError, match="unknown tensor 'QKK'"):
        CascadeBuilder("x").input("Q", "P").output("O", "P").einsum("O[p] = QKK[p]").build()


# ---------------------------------------------------------------------------- canonical printing
@pytest.mark.parametrize("text,canonical", [
    ("a - (b - c)", "a - (b - c)"),
    ("(a - b) - c", "a - b - c"),
    ("a / (b * c)", "a / (b * c)"),
    ("-(x)", "-x"),
    ("-(a + b)", "-(a + b)"),
    ("- 3", "-3"),
    ("(sum[m] X[m, p]) / 2", "(sum[m] X[m, p]) / 2"),
    ("2 * sum[m] X[m, p]", "2 * (sum[m] X[m, p])"),
    ("where(m <= p + 1, X[m,p], -inf)", "where(m <= p + 1, X[m, p], -inf)"),
    ("where((m < p) and not (p == 0), X[m, p])", "where(m < p and not p == 0, X[m, p])"),
    ("(a < b) == (c < d)", "(a < b) == (c < d)"),
    ("((a))", "a"),
    ("1.50", "1.5"),
])
def test_canonical_printing(text, canonical):
    def is_red(name):
        return name in ("sum", "max")
    expr = parse_expression(text, is_red)
    assert to_text(expr) == canonical
    assert parse_expression(canonical, is_red) == expr   # printing loses nothing
