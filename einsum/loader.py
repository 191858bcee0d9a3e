"""Spec files -> validated :class:`~einloom.einsum.cascade.Cascade` ("checked at the door").

Every problem is reported as one :class:`~einloom.einsum.errors.SpecError` naming the file, the line,
the field (for an Einsum: its position and text) and what to write instead.  See docs/spec-language.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from einloom.base.errors import Location, SpecError
from einloom.base.fields import did_you_mean
from einloom.base.limits import MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH, MAX_RANK_SIZE
from einloom.base.yamlio import LineMap, load_yaml
from einloom.einsum import operators
from einloom.einsum.cascade import Cascade, Einsum, InitValue, Partition, TensorDecl, rank_of
from einloom.einsum.expr import (
    Access, BinOp, Call, Expr, Name, Num, Reduce, SyntaxProblem, Unary, parse_einsum, parse_expression, to_text,
    walk,
)

TOP_LEVEL_KEYS = ("name", "description", "source", "sequence_rank", "ranks", "params", "tensors", "inputs",
                  "outputs", "init", "einsums", "reference")
REQUIRED_KEYS = ("name", "tensors", "inputs", "outputs", "einsums")
LIBRARY_DIR = Path(__file__).parent / "library"

_RANK_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_VAR_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TENSOR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SPEC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_RESERVED = {"inf", "and", "or", "not"}


_YAML_BOOL_HINT = ("YAML 1.1 reads the unquoted keys on/off/yes/no/true/false (any case) as booleans; "
                   "quote the name ('off': ...) or pick another one (e.g. offset)")


def _bool_key_message(key: bool, where: str) -> str:
    words = "on/yes/true" if key else "off/no/false"
    return f"{where}: the key {key} (written {words}) is a YAML 1.1 boolean, not a name"


def _guard(text: str) -> None:
    """Refuse expressions longer or more deeply nested than the documented limits (before parsing,
    so that no recursive step can run out of stack)."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise SyntaxProblem(f"expression of {len(text):,} characters, over the limit of {MAX_EXPRESSION_CHARS:,}",
                            0, "split it into several Einsums or params")
    depth = deepest = 0
    for column, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if depth > MAX_EXPRESSION_DEPTH:
            raise SyntaxProblem(f"brackets nested deeper than {MAX_EXPRESSION_DEPTH} levels", column,
                                "split it into several Einsums")
        deepest = max(deepest, depth)
    operators_run = max((len(m.group(0)) for m in re.finditer(r"(?:[-+!~]\s*){%d,}" % MAX_EXPRESSION_DEPTH, text)),
                        default=0)
    if operators_run:
        raise SyntaxProblem(f"more than {MAX_EXPRESSION_DEPTH} unary operators in a row", 0, "simplify the signs")


def _parse(parse, text: str, *args):
    """Run a parser on ``text`` within the length/depth limits; a RecursionError becomes a SyntaxProblem."""
    _guard(text)
    try:
        return parse(text, *args)
    except RecursionError:
        raise SyntaxProblem("expression nested too deeply", 0, "split it into several Einsums") from None


def library_names() -> list[str]:
    """Names of the variants shipped in einsum/library/."""
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.yaml"))


def resolve_spec_path(name_or_path: str | Path) -> Path:
    """A spec path, or the library file of a variant name (``fusemax-1pass``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in str(name_or_path):
        return path
    candidate = LIBRARY_DIR / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    hint = did_you_mean(str(name_or_path), library_names())
    raise SpecError(f"no spec file and no library variant named {str(name_or_path)!r}",
                    hint=hint or f"library variants: {', '.join(library_names()) or '(none)'}")


def load_cascade(name_or_path: str | Path) -> Cascade:
    """Load and validate a cascade from a YAML file or a library variant name."""
    path = resolve_spec_path(name_or_path)
    data, linemap = load_yaml(path, error=SpecError)
    return cascade_from_dict(data, linemap)


def parse_cascade_text(text: str, source_name: str = "<spec>") -> Cascade:
    """Load and validate a cascade from YAML text."""
    data, linemap = load_yaml(source_name, text=text, error=SpecError)
    return cascade_from_dict(data, linemap)


# ------------------------------------------------------------------------------------------ helpers
@dataclass
class _Context:
    lines: LineMap

    def fail(self, message: str, *path: Any, hint: str | None = None, field: str | None = None) -> SpecError:
        return SpecError(message, location=self.lines.at(*path, field=field), hint=hint)


def _linearize(expr: Expr, params=()) -> dict[str | None, Expr] | None:
    """Affine form of an index expression: {var: coefficient, None: constant}; None if not affine.

    Variables are lower-case names; everything else (numbers, params, extents) is a coefficient.
    """
    if isinstance(expr, Num):
        return {None: expr}
    if isinstance(expr, Name):
        return {expr.name: Num(1.0)} if _VAR_NAME.match(expr.name) and expr.name not in params else {None: expr}
    if isinstance(expr, Unary) and expr.op == "-":
        inner = _linearize(expr.operand, params)
        return None if inner is None else {k: _neg(v) for k, v in inner.items()}
    if isinstance(expr, BinOp) and expr.op in ("+", "-"):
        left, right = _linearize(expr.left, params), _linearize(expr.right, params)
        if left is None or right is None:
            return None
        result = dict(left)
        for key, value in right.items():
            value = value if expr.op == "+" else _neg(value)
            result[key] = BinOp("+", result[key], value) if key in result else value
        return result
    if isinstance(expr, BinOp) and expr.op == "*":
        left, right = _linearize(expr.left, params), _linearize(expr.right, params)
        if left is None or right is None:
            return None
        if set(left) == {None}:
            return {k: _mul(left[None], v) for k, v in right.items()}
        if set(right) == {None}:
            return {k: _mul(v, right[None]) for k, v in left.items()}
        return None
    if isinstance(expr, BinOp) and expr.op == "/" and not any(
            _VAR_NAME.match(n.name) and n.name not in params for n in walk(expr) if isinstance(n, Name)):
        return {None: expr}
    if isinstance(expr, Call) and not any(isinstance(n, Name) and _VAR_NAME.match(n.name) and n.name not in params
                                          for n in walk(expr)):
        return {None: expr}
    return None


def _neg(expr: Expr) -> Expr:
    return Num(-expr.value) if isinstance(expr, Num) else Unary("-", expr)


def _mul(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Num) and a.value == 1:
        return b
    if isinstance(b, Num) and b.value == 1:
        return a
    return BinOp("*", a, b)


def _is_one(expr: Expr) -> bool:
    return isinstance(expr, Num) and expr.value == 1


def _iterative_index(expr: Expr) -> str | None:
    """``v + 1`` -> ``v``."""
    if isinstance(expr, BinOp) and expr.op == "+" and isinstance(expr.left, Name) and \
            isinstance(expr.right, Num) and expr.right.value == 1 and _VAR_NAME.match(expr.left.name):
        return expr.left.name
    return None


def _free_vars(expr: Expr, params=(), bound: frozenset[str] = frozenset()) -> set[str]:
    """Rank variables used in ``expr`` outside every explicit reduction over them."""
    if isinstance(expr, Name):
        return {expr.name} if _VAR_NAME.match(expr.name) and expr.name not in params and \
            expr.name not in bound else set()
    if isinstance(expr, Reduce):
        return _free_vars(expr.body, params, bound | frozenset(expr.vars))
    children = expr.indices if isinstance(expr, Access) else expr.args if isinstance(expr, Call) else \
        (expr.left, expr.right) if isinstance(expr, BinOp) else (expr.operand,) if isinstance(expr, Unary) else ()
    return set().union(*(_free_vars(child, params, bound) for child in children))


def _vars_in(expr: Expr, params=()) -> list[str]:
    """Rank variables used in ``expr`` (in order of appearance, without duplicates), free or reduced."""
    seen: list[str] = []
    for node in walk(expr):
        if isinstance(node, Name) and _VAR_NAME.match(node.name) and node.name not in seen and \
                node.name not in params:
            seen.append(node.name)
        if isinstance(node, Reduce):
            for var in node.vars:
                if var not in seen:
                    seen.append(var)
    return seen


# ------------------------------------------------------------------------------------------- loader
def cascade_from_dict(data: Any, lines: LineMap | None = None) -> Cascade:
    """Validate a parsed spec (a dict) and build the :class:`Cascade`."""
    lines = lines or LineMap({}, None)
    ctx = _Context(lines)
    if not isinstance(data, dict):
        raise ctx.fail("a spec must be a YAML mapping with keys " + ", ".join(REQUIRED_KEYS),
                       hint="see docs/spec-language.md for an example")
    for key in data:
        if isinstance(key, bool):
            raise ctx.fail(_bool_key_message(key, "top level"), key, hint=_YAML_BOOL_HINT, field=str(key).lower())
        if key not in TOP_LEVEL_KEYS:
            hint = did_you_mean(str(key), TOP_LEVEL_KEYS) or f"allowed keys: {', '.join(TOP_LEVEL_KEYS)}"
            raise ctx.fail(f"unknown key {key!r}", key, hint=hint)
    for key in REQUIRED_KEYS:
        if key not in data or data[key] is None:
            raise ctx.fail(f"missing required key {key!r}", field=key,
                           hint={"name": "name: my-attention",
                                 "tensors": "tensors: {Q: [E, P], K: [E, M], V: [F, M], AV: [F, P]}",
                                 "inputs": "inputs: [Q, K, V]", "outputs": "outputs: [AV]",
                                 "einsums": "einsums: ['QK[m, p] = Q[e, p] * K[e, m]', ...]"}[key])

    name = data["name"]
    if not isinstance(name, str) or not _SPEC_NAME.match(name):
        raise ctx.fail(f"name must be lower case letters, digits and '-', got {name!r}", "name",
                       hint="e.g. name: fusemax-1pass")
    description = _optional_text(ctx, data, "description")
    source = _optional_text(ctx, data, "source")

    # tensors
    tensors_raw = data["tensors"]
    if not isinstance(tensors_raw, dict) or not tensors_raw:
        raise ctx.fail("tensors must map each input and output tensor to its ranks", "tensors",
                       hint="tensors: {Q: [E, P], K: [E, M]}")
    declared: dict[str, tuple[str, ...]] = {}
    for tname, ranks in tensors_raw.items():
        if isinstance(tname, bool):
            raise ctx.fail(_bool_key_message(tname, "tensors"), "tensors", tname, hint=_YAML_BOOL_HINT,
                           field="tensors")
        if not isinstance(tname, str) or not _TENSOR_NAME.match(tname) or tname in _RESERVED:
            raise ctx.fail(f"{tname!r} is not a valid tensor name", "tensors", tname,
                           hint="letters, digits and '_', starting with a letter")
        if operators.is_reduction(tname) or operators.map_operator(tname) or tname in operators.SPECIAL_FUNCTIONS:
            raise ctx.fail(f"tensor name {tname!r} is an operator name", "tensors", tname, hint="rename the tensor")
        if isinstance(ranks, list) and any(isinstance(r, bool) for r in ranks):
            raise ctx.fail(f"tensor {tname}: a rank name was read by YAML as a boolean", "tensors", tname,
                           hint="YAML 1.1 reads ON/OFF/YES/NO (any case) as booleans; quote the rank name or "
                                "pick another one")
        if not isinstance(ranks, list) or not all(isinstance(r, str) for r in ranks):
            raise ctx.fail(f"tensor {tname} needs a list of rank names", "tensors", tname, hint=f"{tname}: [E, P]")
        for rank in ranks:
            if not _RANK_NAME.match(rank):
                raise ctx.fail(f"tensor {tname}: rank {rank!r} must be upper case (ranks are upper case, their "
                               f"variables lower case)", "tensors", tname, hint=f"write {rank.upper()!r}")
        if len(set(ranks)) != len(ranks):
            raise ctx.fail(f"tensor {tname} repeats a rank: {ranks}", "tensors", tname)
        declared[tname] = tuple(ranks)

    inputs = _name_list(ctx, data, "inputs", declared)
    outputs = _name_list(ctx, data, "outputs", declared)
    for tname in declared:
        if tname not in inputs and tname not in outputs:
            raise ctx.fail(f"tensor {tname} is declared but is neither an input nor an output", "tensors", tname,
                           hint="intermediates are declared by the Einsum that produces them; remove it here or "
                                "list it under inputs/outputs")
    both = set(inputs) & set(outputs)
    if both:
        raise ctx.fail(f"tensor {sorted(both)[0]} is both an input and an output", "outputs")

    # params and rank defaults (parsed now, names checked once the ranks are known)
    params = _expressions(ctx, data, "params")
    rank_defaults = _expressions(ctx, data, "ranks")
    for rank in rank_defaults:
        if not _RANK_NAME.match(rank):
            raise ctx.fail(f"rank {rank!r} must be upper case", "ranks", rank)

    # einsums: parse
    einsums_raw = data["einsums"]
    if not isinstance(einsums_raw, list) or not einsums_raw:
        raise ctx.fail("einsums must be a non-empty list of lines 'OUT[ranks] = EXPRESSION'", "einsums")
    parsed: list[tuple[int, str, Access, Expr]] = []
    for i, text in enumerate(einsums_raw):
        if not isinstance(text, str):
            raise ctx.fail(f"Einsum must be a string, got {type(text).__name__}", "einsums", i,
                           hint="quote the line if YAML read it as something else")
        try:
            lhs, rhs, _ = _parse(parse_einsum, text, operators.is_reduction)
        except SyntaxProblem as problem:
            raise _einsum_error(ctx, i, text, f"syntax error at column {problem.column + 1}: {problem.message}",
                                problem.hint) from None
        if not isinstance(lhs, Access):
            raise _einsum_error(ctx, i, text, "the left-hand side must be a tensor with ranks, like OUT[m, p]",
                                "e.g. QK[m, p] = Q[e, p] * K[e, m]")
        parsed.append((i, text, lhs, rhs))

    # left-hand sides: produced tensors, their ranks, iterative ranks
    produced: dict[str, int] = {}
    shapes: dict[str, tuple[str, ...]] = dict(declared)
    iterative: dict[str, str] = {}  # tensor -> iterative var
    lhs_info: dict[int, tuple[tuple[str, ...], str | None]] = {}
    for i, text, lhs, _ in parsed:
        tname = lhs.tensor
        if tname in inputs:
            raise _einsum_error(ctx, i, text, f"{tname} is an input; an Einsum cannot produce it",
                                f"give the result a new name, or remove {tname} from inputs")
        if tname in produced:
            raise _einsum_error(ctx, i, text, f"{tname} is already produced by einsums[{produced[tname]}]",
                                "every tensor is produced by exactly one Einsum; rename one of them")
        if not _TENSOR_NAME.match(tname) or operators.is_reduction(tname) or operators.map_operator(tname):
            raise _einsum_error(ctx, i, text, f"{tname!r} cannot be a tensor name (it is an operator)",
                                "rename the tensor")
        out_vars: list[str] = []
        iter_var = None
        for index in lhs.indices:
            candidate = _iterative_index(index)
            if candidate is not None:
                if iter_var is not None:
                    raise _einsum_error(ctx, i, text, "only one iterative index (v+1) per output",
                                        "split the Einsum")
                iter_var = candidate
                var = candidate
            elif isinstance(index, Name) and _VAR_NAME.match(index.name):
                var = index.name
            else:
                raise _einsum_error(ctx, i, text, f"output index {to_text(index)!r} must be a lower-case rank "
                                    f"variable (or v+1 for an iterative rank)",
                                    "partitioned or shifted indices belong on the right-hand side")
            if var in out_vars:
                raise _einsum_error(ctx, i, text, f"output index {var!r} appears twice", "use distinct ranks")
            out_vars.append(var)
        ranks = tuple(rank_of(v) for v in out_vars)
        if tname in declared and declared[tname] != ranks:
            raise _einsum_error(ctx, i, text, f"output {tname} is declared with ranks [{', '.join(declared[tname])}]"
                                f" but written with [{', '.join(ranks)}]",
                                f"write {tname}[{', '.join(r.lower() for r in declared[tname])}] = ...")
        produced[tname] = i
        shapes[tname] = ranks
        if iter_var:
            iterative[tname] = iter_var
        lhs_info[i] = (tuple(out_vars), iter_var)

    for tname in outputs:
        if tname not in produced:
            raise ctx.fail(f"output {tname} is never produced by an Einsum", "outputs",
                           hint=f"add an Einsum '{tname}[...] = ...'")

    # the set of ranks
    ranks_known: set[str] = set(rank_defaults)
    for ranks in shapes.values():
        ranks_known.update(ranks)

    # params: names and expressions
    for pname, pexpr in params.items():
        if not isinstance(pname, str) or not pname.isidentifier() or pname in _RESERVED:
            raise ctx.fail(f"{pname!r} is not a valid param name", "params", pname)
        if _VAR_NAME.match(pname) and pname.upper() in ranks_known:
            raise ctx.fail(f"param {pname!r} has the name of the rank variable of {pname.upper()}", "params", pname,
                           hint="rename the param (rank variables are the lower-case rank names)")
        if pname in shapes:
            raise ctx.fail(f"param {pname!r} has the name of a tensor", "params", pname)
        if operators.map_operator(pname) or operators.is_reduction(pname):
            raise ctx.fail(f"param {pname!r} has the name of an operator", "params", pname)
    known_scalars: list[str] = []
    for pname, pexpr in params.items():
        _check_scalar_expr(ctx, pexpr, ("params", pname), ranks_known, known_scalars, f"param {pname}")
        known_scalars.append(pname)
    for rank, rexpr in rank_defaults.items():
        _check_scalar_expr(ctx, rexpr, ("ranks", rank), ranks_known, list(params), f"rank {rank}")

    # right-hand sides
    partitions: list[Partition] = []
    einsums: list[Einsum] = []
    for i, text, lhs, rhs in parsed:
        out_vars, iter_var = lhs_info[i]
        checker = _RhsChecker(ctx, i, text, shapes, iterative, ranks_known, params, operators)
        checker.check(rhs, bound=set())
        for part in checker.partitions:
            if part not in partitions:
                partitions.append(part)
        if lhs.tensor in iterative:
            var = iterative[lhs.tensor]
            for access in checker.accesses:
                if access.tensor == lhs.tensor:
                    pos = shapes[lhs.tensor].index(rank_of(var))
                    idx = access.indices[pos]
                    if not (isinstance(idx, Name) and idx.name == var):
                        raise _einsum_error(ctx, i, text, f"{lhs.tensor}[{var}+1] can only read its previous "
                                            f"iterate {lhs.tensor}[..{var}..], not {to_text(access)}",
                                            "an iterative Einsum computes iterate v+1 from iterate v")
        all_vars = _vars_in(rhs, params)
        explicit = [v for node in walk(rhs) if isinstance(node, Reduce) for v in node.vars]
        explicit_unique = list(dict.fromkeys(explicit))
        for var in explicit_unique:
            if var in out_vars:
                raise _einsum_error(ctx, i, text, f"reduces over {var!r}, which is also an output rank of "
                                    f"{lhs.tensor}", f"remove {var} from the reduction or from the output")
            if var in _free_vars(rhs, params):
                raise _einsum_error(ctx, i, text, f"{var!r} is reduced explicitly but also used outside that "
                                    f"reduction", f"reduce every use of {var} explicitly (e.g. put the whole "
                                    f"expression inside the reduction), or rely on the implicit sum alone")
        implicit = tuple(v for v in all_vars if v not in out_vars and v not in explicit_unique)
        iteration_vars = tuple(out_vars) + tuple(v for v in all_vars if v not in out_vars)
        einsums.append(Einsum(
            name=lhs.tensor, output=lhs, expr=rhs, text=text.strip(), line=lines.line(("einsums", i)),
            output_vars=out_vars, iterative_var=iter_var, implicit_vars=implicit,
            explicit_reduced_vars=tuple(explicit_unique), iteration_vars=iteration_vars,
            inputs=tuple(dict.fromkeys(a.tensor for a in checker.accesses)),
        ))

    # init
    init_raw = data.get("init") or {}
    if not isinstance(init_raw, dict):
        raise ctx.fail("init must map 'TENSOR[0, ...]' to a value", "init", hint="init: {'RM[0, p]': -inf}")
    inits: list[InitValue] = []
    initialised: set[str] = set()
    for key, value in init_raw.items():
        try:
            target = _parse(parse_expression, str(key), lambda _n: False)
        except SyntaxProblem as problem:
            raise ctx.fail(f"init key {key!r}: {problem.message}", "init", key) from None
        if not isinstance(target, Access):
            raise ctx.fail(f"init key {key!r} must be a tensor iterate like RM[0, p]", "init", key)
        tname = target.tensor
        if tname not in iterative:
            hint = did_you_mean(tname, iterative) or "init is only for tensors written as T[v+1, ...] = ..."
            raise ctx.fail(f"init for {tname}, which is not an iterative tensor", "init", key, hint=hint)
        ranks = shapes[tname]
        if len(target.indices) != len(ranks):
            raise ctx.fail(f"init {key}: {tname} has {len(ranks)} ranks [{', '.join(ranks)}]", "init", key)
        var = iterative[tname]
        pos = ranks.index(rank_of(var))
        bound: set[str] = set()
        for j, index in enumerate(target.indices):
            if j == pos:
                if not (isinstance(index, Num) and index.value == 0):
                    raise ctx.fail(f"init {key}: the iterative index of {tname} must be 0", "init", key,
                                   hint=f"write {tname}[{', '.join('0' if k == pos else r.lower() for k, r in enumerate(ranks))}]")
            elif not (isinstance(index, Name) and index.name == ranks[j].lower()):
                raise ctx.fail(f"init {key}: index {j} of {tname} must be {ranks[j].lower()}", "init", key)
            else:
                bound.add(index.name)
        try:
            value_expr = Num(float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) \
                else _parse(parse_expression, str(value), operators.is_reduction)
            if isinstance(value_expr, Num) and value_expr.value != value_expr.value:
                raise SyntaxProblem("NaN is not an initial value", 0)
        except SyntaxProblem as problem:
            raise ctx.fail(f"init {key}: {problem.message}", "init", key) from None
        checker = _RhsChecker(ctx, None, str(value), shapes, iterative, ranks_known, params, operators,
                              location=("init", key))
        checker.check(value_expr, bound=set())
        stray = [v for v in _vars_in(value_expr, params) if v not in bound]
        if stray:
            raise ctx.fail(f"init {key}: uses rank variable {stray[0]!r}, which is not an index of the target",
                           "init", key)
        if any(a.tensor not in inputs for a in checker.accesses):
            raise ctx.fail(f"init {key}: initial values may read only input tensors", "init", key)
        if tname in initialised:
            raise ctx.fail(f"init for {tname} given twice", "init", key)
        initialised.add(tname)
        inits.append(InitValue(target, value_expr, lines.line(("init", key))))
    for tname, var in iterative.items():
        if tname not in initialised:
            i = produced[tname]
            ranks = shapes[tname]
            example = f"{tname}[{', '.join('0' if r == rank_of(var) else r.lower() for r in ranks)}]: 0"
            raise _einsum_error(ctx, i, parsed[i][1], f"iterative rank {var} of {tname} has no initial value",
                                f"add under init: {example}")

    # dependency cycles (loop-carried reads of an iterate excluded)
    graph = nx.DiGraph()
    for einsum in einsums:
        graph.add_node(einsum.name)
    for einsum in einsums:
        for access in (n for n in walk(einsum.expr) if isinstance(n, Access)):
            if access.tensor not in produced:
                continue
            if _is_loop_carried(access, einsum, iterative, shapes):
                continue
            graph.add_edge(access.tensor, einsum.name)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        names = [edge[0] for edge in cycle] + [cycle[-1][1]]
        first = produced[cycle[0][1]]
        raise _einsum_error(ctx, first, parsed[first][1], f"dependency cycle {' -> '.join(names)}",
                            "a cascade must be acyclic; to carry a value across iterations write it as an iterative "
                            "rank, T[v+1, ...] = f(T[v, ...])")

    # sequence rank
    sequence_rank = data.get("sequence_rank", "M" if "M" in ranks_known else sorted(ranks_known)[0])
    if not isinstance(sequence_rank, str) or sequence_rank not in ranks_known:
        raise ctx.fail(f"sequence_rank {sequence_rank!r} is not a rank of this cascade", "sequence_rank",
                       hint=did_you_mean(str(sequence_rank), ranks_known)
                       or f"ranks of this cascade: {', '.join(sorted(ranks_known))}")

    reference = data.get("reference")
    if reference is not None:
        if not isinstance(reference, dict) or not isinstance(reference.get("function"), str):
            raise ctx.fail("reference must be a mapping with 'function' (and its arguments)", "reference",
                           hint="reference: {function: softmax_attention, causal: true}")
        from einloom.einsum.references import REFERENCES
        if reference["function"] not in REFERENCES:
            raise ctx.fail(f"unknown reference function {reference['function']!r}", "reference", "function",
                           hint=did_you_mean(reference["function"], REFERENCES)
                           or f"reference functions: {', '.join(sorted(REFERENCES))}")

    tensors: dict[str, TensorDecl] = {}
    for tname, ranks in shapes.items():
        role = "input" if tname in inputs else "output" if tname in outputs else "intermediate"
        iter_rank = rank_of(iterative[tname]) if tname in iterative else None
        tensors[tname] = TensorDecl(tname, ranks, role, iter_rank)

    order = list(dict.fromkeys(r for t in shapes.values() for r in t)) + sorted(ranks_known - {
        r for t in shapes.values() for r in t})
    cascade = Cascade(
        name=name, description=description, source=source, params=params, rank_defaults=rank_defaults,
        tensors=tensors, inputs=tuple(inputs), outputs=tuple(outputs), init=tuple(inits),
        einsums=tuple(einsums), partitions=tuple(partitions), sequence_rank=sequence_rank,
        reference=reference, file=lines.file, ranks=tuple(order),
    )
    _check_runnable(cascade, ctx)
    return cascade


def _check_runnable(cascade: Cascade, ctx: _Context) -> None:
    """What ``run`` would refuse, refused at the door too: with the spec's own rank sizes, every
    param must evaluate to a finite value and every rank (partition tiles included) to a positive
    integer size.  Ranks the spec leaves to the workload (no ``ranks:`` default) are not known yet:
    the params that need them are checked when the sizes are given."""
    from einloom.einsum.ranks import resolve
    try:
        resolve(cascade)
    except SpecError as exc:
        if "has no value" in exc.message or "has no size" in exc.message:
            return
        field = exc.location.field or ""
        path = tuple(field.split(".", 1)) if field.startswith(("params.", "ranks.")) else ()
        raise SpecError(exc.message, location=ctx.lines.at(*path) if path else Location(cascade.file, None,
                        field or None), hint=exc.hint or "fix the spec's ranks: or params: so that every size is "
                        "a positive integer") from None


def _is_loop_carried(access: Access, einsum: Einsum, iterative: dict[str, str],
                     shapes: dict[str, tuple[str, ...]]) -> bool:
    """Reading iterate ``v`` of an iterative tensor from inside the iteration over ``v``."""
    if access.tensor not in iterative:
        return False
    var = iterative[access.tensor]
    if var not in einsum.output_vars:
        return False
    pos = shapes[access.tensor].index(rank_of(var))
    index = access.indices[pos]
    return isinstance(index, Name) and index.name == var


def _einsum_error(ctx: _Context, i: int, text: str, message: str, hint: str | None) -> SpecError:
    return SpecError(f"{message} in '{text.strip()}'", location=ctx.lines.at("einsums", i), hint=hint)


def _optional_text(ctx: _Context, data: dict, key: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ctx.fail(f"{key} must be text", key)
    return value


def _name_list(ctx: _Context, data: dict, key: str, declared: dict) -> list[str]:
    value = data[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ctx.fail(f"{key} must be a non-empty list of tensor names", key, hint=f"{key}: [Q, K, V]")
    for tname in value:
        if not tname.isidentifier():
            raise ctx.fail(f"{key} names {tname!r}, which is not a tensor name", key,
                           hint="a tensor name is a letter followed by letters, digits or '_', e.g. Q")
        if tname not in declared:
            raise ctx.fail(f"{key} names {tname!r}, which is not declared under tensors", key,
                           hint=did_you_mean(tname, declared) or f"declare it: tensors: {{{tname}: [RANKS]}}")
    if len(set(value)) != len(value):
        raise ctx.fail(f"{key} lists a tensor twice", key)
    return list(value)


def _expressions(ctx: _Context, data: dict, key: str) -> dict[str, Expr]:
    raw = data.get(key) or {}
    if not isinstance(raw, dict):
        raise ctx.fail(f"{key} must be a mapping of names to numbers or expressions", key,
                       hint=f"{key}: {{M0: 64}}" if key == "params" else "ranks: {P: 256, M: 256}")
    result: dict[str, Expr] = {}
    for name, value in raw.items():
        if isinstance(name, bool):
            raise ctx.fail(_bool_key_message(name, key), key, name, hint=_YAML_BOOL_HINT, field=key)
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            raise ctx.fail(f"{key}.{name} must be a number or an expression, got {value!r}", key, name,
                           hint=f"write e.g. {name}: 64 or {name}: E / 4 (quote text YAML reads as a boolean)")
        if isinstance(value, (int, float)):
            number = float(value) if abs(value) < 1e308 else float("inf")
            if number != number or number in (float("inf"), float("-inf")):
                raise ctx.fail(f"{key}.{name} must be a finite number, got {value!r}", key, name,
                               hint="NaN and infinity are not sizes or parameters")
            if key == "ranks" and (number != int(number) or not 1 <= number <= MAX_RANK_SIZE):
                raise ctx.fail(f"ranks.{name} must be a whole number in 1..{MAX_RANK_SIZE}, got {value!r}", key, name,
                               hint="rank sizes are positive integers (limit 2**24)")
            result[str(name)] = Num(number)
            continue
        try:
            result[str(name)] = _parse(parse_expression, str(value), lambda _n: False)
        except SyntaxProblem as problem:
            raise ctx.fail(f"{key}.{name}: {problem.message} (column {problem.column + 1})", key, name,
                           hint=problem.hint) from None
    return result


def _check_scalar_expr(ctx: _Context, expr: Expr, path: tuple, ranks: set[str], scalars: list[str],
                       what: str) -> None:
    for node in walk(expr):
        if isinstance(node, Access):
            raise ctx.fail(f"{what} cannot read tensor {node.tensor}", *path,
                           hint="params are scalars of rank sizes and other params")
        if isinstance(node, Name):
            if node.name in scalars or node.name in ranks:
                continue
            if _VAR_NAME.match(node.name) and node.name.upper() in ranks:
                raise ctx.fail(f"{what} uses rank variable {node.name!r}", *path,
                               hint=f"use the rank's size {node.name.upper()}")
            raise ctx.fail(f"{what} uses unknown name {node.name!r}", *path,
                           hint=did_you_mean(node.name, list(scalars) + sorted(ranks))
                           or "params may use rank sizes and params defined above them")
        if isinstance(node, Call):
            op = operators.map_operator(node.func)
            if op is None:
                raise ctx.fail(f"{what} uses unknown function {node.func!r}", *path,
                               hint=did_you_mean(node.func, operators.map_names()))
            if len(node.args) != op.arity:
                raise ctx.fail(f"{what}: {node.func} takes {op.arity} argument(s)", *path,
                               hint=f"write {node.func}({', '.join(['x'] * op.arity)})")


class _RhsChecker:
    """Checks one right-hand side: tensors, ranks, operators, reductions, index expressions."""

    def __init__(self, ctx, i, text, shapes, iterative, ranks, params, ops, location=None):
        self.ctx, self.i, self.text = ctx, i, text
        self.shapes, self.iterative, self.ranks, self.params = shapes, iterative, ranks, params
        self.ops = ops
        self.location = location
        self.accesses: list[Access] = []
        self.partitions: list[Partition] = []

    def fail(self, message: str, hint: str | None = None) -> SpecError:
        if self.i is None:
            return self.ctx.fail(f"{message} in '{self.text}'", *self.location, hint=hint)
        return _einsum_error(self.ctx, self.i, self.text, message, hint)

    def check(self, expr: Expr, bound: set[str]) -> None:
        if isinstance(expr, Num):
            return
        if isinstance(expr, Name):
            self.check_name(expr.name)
            return
        if isinstance(expr, Access):
            self.check_access(expr)
            return
        if isinstance(expr, Call):
            if expr.func in operators.SPECIAL_FUNCTIONS:
                low, high = operators.SPECIAL_FUNCTIONS[expr.func]
                if not low <= len(expr.args) <= high:
                    raise self.fail(f"{expr.func} takes {low} or {high} arguments, got {len(expr.args)}",
                                    "where(condition, value, otherwise) or where(condition, value)")
            else:
                op = operators.map_operator(expr.func)
                if op is None:
                    if expr.func in self.shapes:
                        raise self.fail(f"{expr.func}(...) calls a tensor", f"index tensors with []: "
                                        f"{expr.func}[...]")
                    hint = did_you_mean(expr.func, operators.map_names()) or \
                        f"known operators: {', '.join(operators.map_names())}; register_operator() adds more"
                    raise self.fail(f"unknown operator {expr.func!r}", hint)
                if len(expr.args) != op.arity:
                    raise self.fail(f"{expr.func} takes {op.arity} argument(s), got {len(expr.args)}",
                                    f"write {expr.func}({', '.join(['x'] * op.arity)})")
            for arg in expr.args:
                self.check(arg, bound)
            return
        if isinstance(expr, BinOp):
            self.check(expr.left, bound)
            self.check(expr.right, bound)
            return
        if isinstance(expr, Unary):
            self.check(expr.operand, bound)
            return
        if isinstance(expr, Reduce):
            if operators.reduction(expr.op) is None:  # pragma: no cover - parser only makes known ones
                raise self.fail(f"unknown reduction {expr.op!r}")
            body_vars = set(_vars_in(expr.body, self.params))
            for var in expr.vars:
                if not _VAR_NAME.match(var):
                    raise self.fail(f"{expr.op}[{var}]: reduce over lower-case rank variables",
                                    f"write {expr.op}[{var.lower()}]")
                if var.upper() not in self.ranks:
                    raise self.fail(f"{expr.op}[{var}] reduces over rank {var.upper()}, which does not exist",
                                    did_you_mean(var, [r.lower() for r in self.ranks])
                                    or f"rank variables here: {', '.join(sorted(r.lower() for r in self.ranks))}")
                if var not in body_vars:
                    raise self.fail(f"{expr.op}[{var}] reduces over {var!r}, which its operand does not use",
                                    f"remove {var} from the reduction")
                if var in bound:
                    raise self.fail(f"{var!r} is reduced twice", f"reduce each rank once (remove the inner "
                                    f"reduction over {var}, or reduce a different rank)")
            if len(set(expr.vars)) != len(expr.vars):
                raise self.fail(f"{expr.op}[...] lists a rank twice", "list each rank once")
            self.check(expr.body, bound | set(expr.vars))
            return
        raise self.fail(f"unsupported expression {expr!r}")  # pragma: no cover

    def check_name(self, name: str) -> None:
        if name in self.params or name in self.ranks:
            return
        if _VAR_NAME.match(name) and name.upper() in self.ranks:
            return
        if name in self.shapes:
            raise self.fail(f"tensor {name} is used without indices",
                            f"write {name}[{', '.join(r.lower() for r in self.shapes[name])}]")
        options = list(self.params) + sorted(self.ranks) + [r.lower() for r in self.ranks]
        if _VAR_NAME.match(name):
            raise self.fail(f"unknown rank variable {name!r}", did_you_mean(name, options)
                            or f"rank variables here: {', '.join(sorted(r.lower() for r in self.ranks))}")
        raise self.fail(f"unknown name {name!r}", did_you_mean(name, options) or "declare it under params")

    def check_access(self, access: Access) -> None:
        tname = access.tensor
        if tname not in self.shapes:
            hint = did_you_mean(tname, self.shapes) or f"tensors: {', '.join(sorted(self.shapes))}"
            raise self.fail(f"unknown tensor {tname!r}", hint)
        ranks = self.shapes[tname]
        if len(access.indices) != len(ranks):
            raise self.fail(f"{tname} has {len(ranks)} ranks [{', '.join(ranks)}] but is indexed with "
                            f"{len(access.indices)}", f"write {tname}[{', '.join(r.lower() for r in ranks)}]")
        iter_var = self.iterative.get(tname)
        for pos, (rank, index) in enumerate(zip(ranks, access.indices)):
            for node in walk(index):
                if isinstance(node, (Access, Reduce)):
                    raise self.fail(f"index {pos} of {tname} uses {'a tensor' if isinstance(node, Access) else 'a reduction'}",
                                    "indices are affine expressions of rank variables and params")
                if isinstance(node, Name):
                    self.check_name(node.name)
            affine = _linearize(index, self.params)
            if affine is None:
                raise self.fail(f"index {pos} of {tname} ({to_text(index)}) is not an affine expression of rank "
                                f"variables", "e.g. m1*M0 + m0, p - m, m1 + 1")
            var_terms = {k: v for k, v in affine.items() if k is not None}
            if iter_var is not None and rank == rank_of(iter_var):
                continue  # an iterate: v (previous), v+1 (current), V (final) or a constant
            if len(var_terms) == 1 and None not in affine:
                (var, coeff), = var_terms.items()
                if _is_one(coeff) and rank_of(var) != rank:
                    raise self.fail(f"{tname}'s rank {pos} is {rank}, but it is indexed with {var} (rank "
                                    f"{rank_of(var)})", f"index it with {rank.lower()}, or with an expression "
                                    f"of ranks partitioned from {rank} such as {rank.lower()}1*{rank}0 + "
                                    f"{rank.lower()}0")
            if len(var_terms) == 2 and None not in affine:
                ones = [v for v, c in var_terms.items() if _is_one(c)]
                others = [v for v in var_terms if v not in ones]
                if len(ones) == 1 and len(others) == 1:
                    part = Partition(rank, rank_of(others[0]), rank_of(ones[0]), var_terms[others[0]])
                    if part not in self.partitions:
                        self.partitions.append(part)
        if access not in self.accesses:
            self.accesses.append(access)
