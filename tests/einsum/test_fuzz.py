"""Property tests of the cascade language (hypothesis).

(a) Random VALID cascades -- random expression trees over declared inputs, ranks, params, explicit
    reductions, maps, where-predicates on coordinates, partitioned indices (M -> M1, M0) and an
    optional iterative rank -- print canonically, parse back to the same text (print -> parse ->
    print is the identity), and run through ``run_cascade`` on tiny ranks without exceptions.
(b) Random garbage -- random text, random YAML structures, random character/token mutations of the
    library specs -- never raises anything but an ``EinloomError`` (or yields a valid cascade).

Budget: about 30 s in total (max_examples below); deadline disabled (the machine is shared).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from einloom.einsum import EinloomError, parse_cascade_text, random_inputs, run_cascade
from einloom.einsum.analysis import analyse
from einloom.einsum.loader import LIBRARY_DIR
from einloom.einsum.printer import cascade_to_yaml
from einloom.einsum.ranks import resolve

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                       HealthCheck.filter_too_much])


# ----------------------------------------------------------------------------- valid cascade strategy
class Node:
    """Generated expression text with its free rank variables and explicitly reduced variables."""

    def __init__(self, text: str, free: frozenset[str] = frozenset(), reduced: frozenset[str] = frozenset()):
        self.text, self.free, self.reduced = text, free, reduced


def _combine(a: Node, b: Node, text: str) -> Node | None:
    if a.reduced & b.free or b.reduced & a.free:
        return None  # a rank reduced explicitly on one side and free on the other is invalid
    return Node(text, a.free | b.free, a.reduced | b.reduced)


@st.composite
def expressions(draw, tensors: dict[str, tuple[str, ...]], coords: tuple[str, ...], depth: int) -> Node:
    leaf_kinds = ["access", "access", "number", "param", "extent", "coord"]
    kinds = leaf_kinds + (["binop", "binop", "unary", "map1", "map2", "where3", "where2", "reduce", "reduce",
                           "reduce"]
                          if depth > 0 else [])
    kind = draw(st.sampled_from(kinds))
    sub = lambda: draw(expressions(tensors, coords, depth - 1))  # noqa: E731
    if kind == "access":
        name = draw(st.sampled_from(sorted(tensors)))
        vars_ = tensors[name]
        indices = list(vars_)
        if vars_ and draw(st.integers(0, 4)) == 0:  # a shifted index: absent coordinates at the edge
            k = draw(st.integers(0, len(vars_) - 1))
            indices[k] = f"{vars_[k]} {draw(st.sampled_from(['+', '-']))} 1"
        return Node(f"{name}[{', '.join(indices)}]", frozenset(vars_))
    if kind == "number":
        value = draw(st.sampled_from(["0", "1", "2", "0.5", "3.25", "1e-3", "inf"]))
        return Node(value)
    if kind == "param":
        return Node(draw(st.sampled_from(["scale", "L"])))
    if kind == "extent":
        return Node(draw(st.sampled_from(["E", "P", "M"])))
    if kind == "coord":
        var = draw(st.sampled_from(coords))
        return Node(var, frozenset([var]))
    if kind == "binop":
        a, b = sub(), sub()
        op = draw(st.sampled_from(["+", "-", "*", "/"]))
        return _combine(a, b, f"({a.text}) {op} ({b.text})") or a
    if kind == "unary":
        a = sub()
        return Node(f"-({a.text})", a.free, a.reduced)
    if kind == "map1":
        a = sub()
        func = draw(st.sampled_from(["exp", "relu", "abs", "sigmoid", "neg", "softplus", "floor"]))
        return Node(f"{func}({a.text})", a.free, a.reduced)
    if kind == "map2":
        a, b = sub(), sub()
        func = draw(st.sampled_from(["max", "min"]))
        return _combine(a, b, f"{func}({a.text}, {b.text})") or a
    if kind in ("where3", "where2"):
        u, v = draw(st.sampled_from(coords)), draw(st.sampled_from(coords))
        cond = draw(st.sampled_from([f"{u} <= {v}", f"{u} < {v} + 1", f"floor({u} / L) <= {v}",
                                     f"{u} >= 1 and {v} != 0", f"not ({u} > {v})", f"{u} == {v} or {u} < 1"]))
        cnode = Node(cond, frozenset([u, v]))
        a = sub()
        node = _combine(cnode, a, "")
        if node is None:
            return a
        if kind == "where2":
            return Node(f"where({cond}, {a.text})", node.free, node.reduced)
        b = sub()
        node2 = _combine(node, b, "")
        if node2 is None:
            return Node(f"where({cond}, {a.text})", node.free, node.reduced)
        return Node(f"where({cond}, {a.text}, {b.text})", node2.free, node2.reduced)
    if kind == "reduce":
        a = sub()
        if not a.free:
            return a
        var = draw(st.sampled_from(sorted(a.free)))
        op = draw(st.sampled_from(["sum", "max", "min", "prod"]))
        return Node(f"({op}[{var}] {a.text})", a.free - {var}, a.reduced | {var})
    raise AssertionError(kind)


@st.composite
def valid_cascades(draw) -> str:
    """YAML text of a random valid cascade."""
    partition = draw(st.booleans())
    iterative = partition and draw(st.booleans())
    m0 = draw(st.sampled_from([1, 2, 3]))
    rank_vars = {"P": "p", "M": "m", "E": "e"}
    inputs: dict[str, tuple[str, ...]] = {}
    for k in range(draw(st.integers(1, 3))):
        ranks = draw(st.lists(st.sampled_from(["P", "M", "E"]), min_size=1, max_size=3, unique=True))
        inputs[f"X{k}"] = tuple(ranks)
    if iterative:
        inputs["KI"] = ("M", "P")
    tensors = {name: tuple(rank_vars[r] for r in ranks) for name, ranks in inputs.items()}
    coords = ["p", "m", "e"]
    einsums: list[str] = []
    init: dict[str, str] = {}
    if partition:
        source = draw(st.sampled_from([n for n, r in inputs.items() if "M" in r] or [None]))
        if source is not None:
            out = tuple(v for r in inputs[source] for v in (("m1", "m0") if r == "M" else (rank_vars[r],)))
            idx = ", ".join("m1*M0 + m0" if r == "M" else rank_vars[r] for r in inputs[source])
            einsums.append(f"B{source}[{', '.join(out)}] = {source}[{idx}]")
            tensors[f"B{source}"] = out
            coords += ["m1", "m0"]
    if iterative and "BKI" in tensors:
        combine = draw(st.sampled_from(["max(RI[m1, p], LI[m1, p])", "RI[m1, p] + LI[m1, p]",
                                        "0.5 * RI[m1, p] + LI[m1, p]"]))
        einsums += ["LI[m1, p] = max[m0] BKI[m1, m0, p]", f"RI[m1+1, p] = {combine}",
                    "SI[m1, m0, p] = exp(BKI[m1, m0, p] - RI[m1+1, p])", "RF[p] = RI[M1, p] + 1"]
        init["RI[0, p]"] = "-inf" if combine.startswith("max") else "0"
        tensors.update({"LI": ("m1", "p"), "SI": ("m1", "m0", "p"), "RF": ("p",)})
    coords_t = tuple(coords)
    for k in range(draw(st.integers(0, 3))):
        node = draw(expressions(tensors, coords_t, depth=draw(st.integers(0, 3))))
        if node.free and draw(st.booleans()):  # a top-level reduction (extends to the end, no parentheses)
            var = draw(st.sampled_from(sorted(node.free)))
            op = draw(st.sampled_from(["sum", "max", "min", "prod"]))
            node = Node(f"{op}[{var}] {node.text}", node.free - {var}, node.reduced | {var})
        candidates = sorted(set(coords_t) - node.reduced)
        if not candidates:  # every rank reduced: the output needs one rank of its own
            node, candidates = Node("1"), sorted(coords_t)
        out = tuple(draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True)))
        einsums.append(f"T{k}[{', '.join(out)}] = {node.text}")
        tensors[f"T{k}"] = out
    node = draw(expressions(tensors, ("p", "m", "e"), depth=draw(st.integers(0, 3))))
    out_vars = [v for v in ("p", "m", "e") if v not in node.reduced]
    if not out_vars:
        node, out_vars = Node("2"), ["p"]
    out = tuple(draw(st.lists(st.sampled_from(out_vars), min_size=1, max_size=2, unique=True)))
    einsums.append(f"O[{', '.join(out)}] = {node.text}")
    decl = {name: list(ranks) for name, ranks in inputs.items()}
    decl["O"] = [v.upper() for v in out]
    spec = {
        "name": "fuzz", "ranks": {"P": draw(st.integers(1, 3)), "M": draw(st.integers(1, 5)), "E": 2},
        "params": {"L": 2, "scale": draw(st.sampled_from(["1 / sqrt(E)", "0.25", "M / P"]))}
                  | ({"M0": m0} if partition else {}),
        "tensors": decl, "inputs": list(inputs), "outputs": ["O"], "einsums": einsums,
    }
    if init:
        spec["init"] = init
    return yaml.safe_dump(spec, sort_keys=False)


@settings(max_examples=120, **SETTINGS)
@given(valid_cascades())
def test_random_valid_cascades_round_trip_and_run(text: str):
    cascade = parse_cascade_text(text)            # every generated cascade must be valid
    printed = cascade_to_yaml(cascade)
    assert str(cascade) == printed
    again = parse_cascade_text(printed)
    assert cascade_to_yaml(again) == printed, f"print -> parse -> print changed:\n{printed}\n---\n{again}"
    assert [e.canonical_text() for e in again.einsums] == [e.canonical_text() for e in cascade.einsums]
    assert [(e.implicit_vars, e.explicit_reduced_vars) for e in again.einsums] == \
        [(e.implicit_vars, e.explicit_reduced_vars) for e in cascade.einsums]
    sizes, _ = resolve(cascade)
    inputs = random_inputs(cascade, sizes, seed=1)
    result = run_cascade(cascade, inputs, sizes)
    for name in cascade.outputs:
        shape = tuple(sizes[r] for r in cascade.tensors[name].ranks)
        assert result.outputs[name].shape == shape
    # the printed cascade computes the same thing
    result2 = run_cascade(again, inputs, sizes)
    for name in cascade.outputs:
        np.testing.assert_array_equal(result.outputs[name], result2.outputs[name])
    analyse(cascade, sizes)


# --------------------------------------------------------------------------------- garbage strategies
LIBRARY_TEXTS = {p.stem: p.read_text() for p in sorted(LIBRARY_DIR.glob("*.yaml"))}
TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+|\S")


def _must_be_spec_error_or_valid(text: str) -> None:
    try:
        cascade = parse_cascade_text(text, "fuzz.yaml")
    except EinloomError as error:
        message = str(error)
        assert message and "\n" not in message.strip() or "YAML" in message, message
        return
    # a mutation that is still valid must print and re-parse
    assert cascade_to_yaml(parse_cascade_text(cascade_to_yaml(cascade))) == cascade_to_yaml(cascade)


@settings(max_examples=150, **SETTINGS)
@given(st.text(max_size=200))
def test_random_text(text: str):
    _must_be_spec_error_or_valid(text)


_yaml_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                       st.text(max_size=12), st.sampled_from(["Q[e, p]", "AV[f, p] = Q[e, p]", "M", "-inf",
                                                               "1 / sqrt(E)", "RM[0, p]"]))
_yaml_keys = st.one_of(st.sampled_from(["name", "tensors", "inputs", "outputs", "einsums", "params", "ranks",
                                        "init", "reference", "sequence_rank", "Q", "AV", "M", "off", "on"]),
                       st.text(min_size=1, max_size=6), st.integers(0, 3), st.booleans())
_yaml_values = st.recursive(_yaml_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_yaml_keys, inner, max_size=5)), max_leaves=20)


@settings(max_examples=150, **SETTINGS)
@given(st.dictionaries(_yaml_keys, _yaml_values, max_size=8) | _yaml_values)
def test_random_yaml_structures(data):
    try:
        text = yaml.safe_dump(data, sort_keys=False)
    except yaml.YAMLError:  # pragma: no cover - unrepresentable
        return
    _must_be_spec_error_or_valid(text)


@settings(max_examples=150, **SETTINGS)
@given(st.sampled_from(sorted(LIBRARY_TEXTS)), st.data())
def test_library_structure_mutations(name: str, data):
    """Replace one field of a library spec by random YAML (types and shapes the loader does not expect)."""
    spec = yaml.safe_load(LIBRARY_TEXTS[name])
    key = data.draw(st.sampled_from(sorted(spec)))
    spec[key] = data.draw(_yaml_values)
    _must_be_spec_error_or_valid(yaml.safe_dump(spec, sort_keys=False))


def _mutate_line(line: str, data) -> str:
    tokens = TOKEN.findall(line)
    kind = data.draw(st.sampled_from(["del_char", "dup_char", "swap_char", "del_tok", "dup_tok", "swap_tok",
                                      "replace_tok", "insert_char"]))
    if not line:
        return line
    if kind.endswith("char"):
        i = data.draw(st.integers(0, len(line) - 1))
        if kind == "del_char":
            return line[:i] + line[i + 1:]
        if kind == "dup_char":
            return line[:i] + line[i] + line[i:]
        if kind == "insert_char":
            return line[:i] + data.draw(st.sampled_from(list("()[],=+-*/<>!.01mMpx#:'\"&~ "))) + line[i:]
        j = data.draw(st.integers(0, len(line) - 1))
        chars = list(line)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    if not tokens:
        return line
    i = data.draw(st.integers(0, len(tokens) - 1))
    if kind == "del_tok":
        del tokens[i]
    elif kind == "dup_tok":
        tokens.insert(i, tokens[i])
    elif kind == "swap_tok":
        j = data.draw(st.integers(0, len(tokens) - 1))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    else:
        tokens[i] = data.draw(st.sampled_from(["sum", "max", "where", "exp", "m", "m1", "M", "M1", "p", "inf",
                                               "RM", "QK", "and", "not", "(", ")", "[", "]", ",", "=", "0",
                                               "1e400", "-", "BKK", "e", "f"]))
    return " ".join(tokens)


@settings(max_examples=250, **SETTINGS)
@given(st.sampled_from(sorted(LIBRARY_TEXTS)), st.data())
def test_library_einsum_mutations(name: str, data):
    """Delete/duplicate/swap characters and tokens in Einsum (and init/param) lines of a library spec."""
    lines = LIBRARY_TEXTS[name].splitlines()
    editable = [k for k, line in enumerate(lines) if line.startswith("  - ") or re.match(r"  \w.*:", line)]
    for _ in range(data.draw(st.integers(1, 3))):
        k = data.draw(st.sampled_from(editable))
        prefix = "  - " if lines[k].startswith("  - ") else ""
        lines[k] = prefix + _mutate_line(lines[k][len(prefix):], data)
    text = "\n".join(lines) + "\n"
    _must_be_spec_error_or_valid(text)
    try:
        cascade = parse_cascade_text(text)
    except EinloomError:
        return
    # still valid: it must also run (or refuse with an EinloomError) on tiny ranks
    try:
        sizes, _ = resolve(cascade, {r: 3 for r in ("P", "M", "E", "F") if r in cascade.ranks
                                     and not cascade.params.get(r)})
        run_cascade(cascade, random_inputs(cascade, sizes), sizes)
        analyse(cascade, sizes)
    except EinloomError:
        pass


def test_mutation_helper_can_fail():
    """The garbage tests really call the loader: a known-bad mutation is rejected as a SpecError."""
    text = LIBRARY_TEXTS["softmax-3pass"].replace("GM[p]    = max[m] QK[m, p]", "GM[p]    = max[m] QKK[m, p]")
    with pytest.raises(EinloomError, match="unknown tensor 'QKK'"):
        parse_cascade_text(text)
    assert math.isfinite(len(text))
