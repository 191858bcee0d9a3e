"""Reference interpreter: executes any valid cascade with NumPy in float64.

Every Einsum is evaluated over its whole iteration space at once (products summed through
``numpy.einsum``, maps and reductions as array operations).  Einsums that carry state along an
iterative rank ``v`` (``RM[m1+1, p] = max(RM[m1, p], LM[m1, p])`` and everything that reads the
current iterate) run as one group in a Python loop over the iterations of ``v`` -- a loop over tiles,
never over elements -- and each step is vectorized over all other ranks.

Absent coordinates (outside a tensor, e.g. a ragged last tile, or removed by ``where(c, x)``) are
tracked with boolean masks: reductions skip them, ``+``/``max``/``min`` treat them as their identity,
other operators propagate them.  Output coordinates that end up absent are returned as NaN and counted
in :attr:`RunResult.absent`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import networkx as nx
import numpy as np

from einloom.einsum import operators
from einloom.einsum.cascade import Cascade, Einsum, rank_of
from einloom.base.errors import EinloomError, Location, SpecError
from einloom.einsum.expr import Access, BinOp, Call, Expr, Name, Num, Reduce, Unary, walk
from einloom.einsum.ranks import resolve


@dataclass
class Val:
    """An array over named rank variables (one axis per variable, in ``vars`` order)."""

    data: np.ndarray
    vars: tuple[str, ...]
    valid: np.ndarray | None = None  # broadcastable to data; None means every coordinate is present


@dataclass
class RunResult:
    """Outputs of a run, the resolved rank sizes and params, and how many output values are absent."""

    outputs: dict[str, np.ndarray]
    ranks: dict[str, int]
    params: dict[str, float]
    absent: dict[str, int] = field(default_factory=dict)
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)


def _align(data: np.ndarray, have: tuple[str, ...], want: tuple[str, ...]) -> np.ndarray:
    """Transpose ``data`` (axes ``have``) to the order of ``want`` with size-1 axes for the missing."""
    data = np.asarray(data)
    if data.ndim == 0 or have == want:
        return data
    order = sorted(range(len(have)), key=lambda k: want.index(have[k]))
    data = data.transpose(order)
    present = [have[k] for k in order]
    shape = []
    j = 0
    for var in want:
        if j < len(present) and present[j] == var:
            shape.append(data.shape[j])
            j += 1
        else:
            shape.append(1)
    return data.reshape(shape)


def where_valid(vals: list[Val], want: tuple[str, ...], cond: np.ndarray) -> np.ndarray | None:
    """Validity of ``where(c, a[, b])`` over ``want``: ``where(c, a)`` is absent where ``c`` is false,
    and every operand's absent coordinates stay absent."""
    valid = cond if len(vals) == 2 else None
    for v in vals:
        if v.valid is not None:
            m = _align(v.valid, v.vars, want)
            valid = m if valid is None else valid & m
    return valid


def merge_absent(op: operators.MapOperator, vals: list[Val], want: tuple[str, ...], datas: list[np.ndarray],
                 identity) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Operands and validity of ``op`` applied to ``vals`` (aligned ``datas`` over ``want``): a union
    operator reads an absent operand as ``identity`` and is absent where all are; any other operator
    is absent where any operand is."""
    valids = [None if v.valid is None else _align(v.valid, v.vars, want) for v in vals]
    valid = None
    if any(m is not None for m in valids):
        if op.merge == "union":
            datas = [d if m is None else np.where(m, d, identity) for d, m in zip(datas, valids)]
            if all(m is not None for m in valids):
                valid = valids[0]
                for m in valids[1:]:
                    valid = valid | m
        else:
            for m in valids:
                if m is not None:
                    valid = m if valid is None else valid & m
    return datas, valid


def _product_factors(expr: Expr) -> list[Expr]:
    if isinstance(expr, BinOp) and expr.op == "*":
        return _product_factors(expr.left) + _product_factors(expr.right)
    return [expr]


class Interpreter:
    """Evaluates one cascade for one set of rank sizes; see :func:`run_cascade`."""

    def __init__(self, cascade: Cascade, sizes: dict[str, int], params: dict[str, float], *,
                 origins: dict[str, int] | None = None, extents: dict[str, int] | None = None):
        self.cascade = cascade
        self.sizes = sizes
        self.params = params
        # a slice of a larger problem (run_cascade's ``slice_of``): a rank variable used as a value is
        # its coordinate in the whole problem, and a rank extent used as a value is the whole extent
        self.origins = origins or {}
        self.extents = extents or sizes
        self.store: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        self.order: tuple[str, ...] = ()

    # ------------------------------------------------------------------ plan
    def plan(self) -> list[tuple[str | None, list[Einsum]]]:
        """Execution units in order: (None, [einsum]) or (iterative var, group members)."""
        cascade = self.cascade
        iterative = {t.name: t.iterative_rank.lower() for t in cascade.tensors.values() if t.iterative_rank}
        groups: dict[str, set[str]] = {}
        for var in sorted(set(iterative.values())):
            members = {e.name for e in cascade.einsums if e.iterative_var == var}
            changed = True
            while changed:
                changed = False
                for einsum in cascade.einsums:
                    if einsum.name in members or var not in einsum.output_vars:
                        continue
                    reads = set(einsum.inputs)
                    if reads & members or any(iterative.get(t) == var for t in reads):
                        members.add(einsum.name)
                        changed = True
            # only what the recurrence needs runs inside the loop; an Einsum that merely reads iterates
            # (and may read the final one, e.g. a normalization after the loop) runs after it
            needed = {e.name for e in cascade.einsums if e.iterative_var == var}
            changed = True
            while changed:
                changed = False
                for einsum in cascade.einsums:
                    if einsum.name in needed:
                        for source in set(einsum.inputs) & members:
                            if source not in needed:
                                needed.add(source)
                                changed = True
            for einsum in cascade.einsums:
                if einsum.name not in needed:
                    continue
                for access in (n for n in walk(einsum.expr) if isinstance(n, Access)):
                    if iterative.get(access.tensor) != var:
                        continue
                    index = access.indices[cascade.tensors[access.tensor].ranks.index(rank_of(var))]
                    if not (isinstance(index, Name) and index.name == var) and \
                            not (isinstance(index, Num) and index.value == 0) and \
                            not (isinstance(index, BinOp) and index.op == "+" and isinstance(index.left, Name)
                                 and index.left.name == var and isinstance(index.right, Num)
                                 and index.right.value == 1):
                        raise SpecError(f"{einsum.name} is computed inside the iteration over {var} but reads "
                                        f"{access.tensor} at a fixed or final iterate",
                                        location=Location(cascade.file, einsum.line, einsum.text),
                                        hint=f"inside the iteration read iterates {var} or {var}+1 only; "
                                             f"read the final iterate in an Einsum after the iteration")
            members = needed
            groups[var] = members
        owner: dict[str, str] = {}
        for var, members in groups.items():
            for name in members:
                if name in owner:
                    raise SpecError(f"{name} belongs to two iterative ranks ({owner[name]}, {var}); nested "
                                    f"iterative ranks are not supported", location=Location(cascade.file))
                owner[name] = var
        graph = nx.DiGraph()
        unit_of = {e.name: (f"group:{owner[e.name]}" if e.name in owner else e.name) for e in cascade.einsums}
        for einsum in cascade.einsums:
            graph.add_node(unit_of[einsum.name])
        for einsum in cascade.einsums:
            for access in (n for n in walk(einsum.expr) if isinstance(n, Access)):
                src = access.tensor
                if src not in unit_of:
                    continue
                if unit_of[src] != unit_of[einsum.name]:
                    graph.add_edge(unit_of[src], unit_of[einsum.name])
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            raise SpecError("the iteration feeds on a value that needs the whole iteration first: "
                            + " -> ".join(e[0] for e in cycle),
                            location=Location(self.cascade.file),
                            hint="a tensor that reduces over an iterative rank cannot be read inside that iteration")
        position = {e.name: k for k, e in enumerate(cascade.einsums)}
        unit_position = {}
        for name, unit in unit_of.items():
            unit_position[unit] = min(unit_position.get(unit, 10**9), position[name])
        units = list(nx.lexicographical_topological_sort(graph, key=lambda u: unit_position[u]))
        plan: list[tuple[str | None, list[Einsum]]] = []
        for unit in units:
            if unit.startswith("group:"):
                var = unit[len("group:"):]
                members = [e for e in cascade.einsums if unit_of[e.name] == unit]
                sub = nx.DiGraph()
                for e in members:
                    sub.add_node(e.name)
                for e in members:
                    for access in (n for n in walk(e.expr) if isinstance(n, Access)):
                        if access.tensor in groups[var] and access.tensor != e.name and \
                                not self._reads_previous(access, e, iterative):
                            sub.add_edge(access.tensor, e.name)
                ordered = list(nx.lexicographical_topological_sort(sub, key=lambda n: position[n]))
                plan.append((var, [cascade.einsum(n) for n in ordered]))
            else:
                plan.append((None, [cascade.einsum(unit)]))
        return plan

    def _reads_previous(self, access: Access, einsum: Einsum, iterative: dict[str, str]) -> bool:
        var = iterative.get(access.tensor)
        if var is None:
            return False
        pos = self.cascade.tensors[access.tensor].ranks.index(rank_of(var))
        index = access.indices[pos]
        return isinstance(index, Name) and index.name == var

    # ------------------------------------------------------------------- run
    def run(self, inputs: dict[str, np.ndarray]) -> None:
        for unit_var, members in self.plan():
            if unit_var is None:
                self.evaluate_einsum(members[0], {})
                continue
            extent = self.sizes[rank_of(unit_var)]
            for einsum in members:
                self.allocate(einsum.name)
            for init in self.cascade.init:
                if init.tensor in {e.name for e in members}:
                    self.initialise(init)
            for step in range(extent):
                for einsum in members:
                    self.evaluate_einsum(einsum, {unit_var: step})

    def shape_of(self, tensor: str) -> tuple[int, ...]:
        decl = self.cascade.tensors[tensor]
        return tuple(self.sizes[r] + (1 if r == decl.iterative_rank else 0) for r in decl.ranks)

    def allocate(self, tensor: str) -> None:
        self.store[tensor] = (np.full(self.shape_of(tensor), np.nan), None)

    def initialise(self, init) -> None:
        decl = self.cascade.tensors[init.tensor]
        other = tuple(r.lower() for r in decl.ranks if r != decl.iterative_rank)
        self.order = other
        value = self.stored_value(self.eval(init.value, {}))
        data = np.broadcast_to(_align(value.data, value.vars, other), [self.sizes[v.upper()] for v in other])
        index = tuple(0 if r == decl.iterative_rank else slice(None) for r in decl.ranks)
        stored, valid = self.store[init.tensor]
        stored[index] = data
        if value.valid is not None:
            valid = self._valid_array(init.tensor, valid)
            valid[index] = np.broadcast_to(_align(value.valid, value.vars, other), data.shape)
            self.store[init.tensor] = (stored, valid)

    def stored_value(self, value: Val) -> Val:
        """``value`` as a tensor stores it (booleans as 0/1); a number-format interpreter converts here."""
        if value.data.dtype == bool:
            return Val(value.data.astype(float), value.vars, value.valid)
        return value

    def _valid_array(self, tensor: str, valid: np.ndarray | None) -> np.ndarray:
        if valid is None:
            valid = np.ones(self.shape_of(tensor), dtype=bool)
        return valid

    def evaluate_einsum(self, einsum: Einsum, fixed: dict[str, int]) -> None:
        self.order = tuple(v for v in einsum.iteration_vars if v not in fixed)
        expr = einsum.expr
        if einsum.implicit_vars:
            expr = Reduce("sum", einsum.implicit_vars, expr)
        value = self.stored_value(self.eval(expr, fixed))
        out_vars = tuple(v for v in einsum.output_vars if v not in fixed)
        shape = tuple(self.sizes[rank_of(v)] for v in out_vars)
        data = np.broadcast_to(_align(value.data, value.vars, out_vars), shape)
        decl = self.cascade.tensors[einsum.name]
        index = []
        for var in einsum.output_vars:
            if var == einsum.iterative_var:
                index.append(fixed[var] + 1 if var in fixed else slice(1, None))
            elif var in fixed:
                index.append(fixed[var])
            else:
                index.append(slice(None))
        index = tuple(index)
        if einsum.name not in self.store:
            self.allocate(einsum.name)
        stored, valid = self.store[einsum.name]
        stored[index] = data
        if value.valid is not None:
            mask = np.broadcast_to(_align(value.valid, value.vars, out_vars), shape)
            if not mask.all():
                valid = self._valid_array(einsum.name, valid)
                valid[index] = mask
        elif valid is not None:
            valid[index] = True
        self.store[einsum.name] = (stored, valid)
        del decl

    # ------------------------------------------------------------------ eval
    def eval(self, expr: Expr, fixed: dict[str, int]) -> Val:
        if isinstance(expr, Num):
            return Val(np.asarray(expr.value), ())
        if isinstance(expr, Name):
            return self.name(expr.name, fixed)
        if isinstance(expr, Access):
            return self.access(expr, fixed)
        if isinstance(expr, BinOp):
            op = operators.BINARY_SYMBOLS[expr.op]
            return self.combine(op, [self.eval(expr.left, fixed), self.eval(expr.right, fixed)],
                                logical=expr.op in ("and", "or"))
        if isinstance(expr, Unary):
            op = operators.UNARY_SYMBOLS[expr.op]
            return self.combine(op, [self.eval(expr.operand, fixed)], logical=expr.op == "not")
        if isinstance(expr, Call):
            if expr.func == "where":
                return self.where([self.eval(a, fixed) for a in expr.args])
            op = operators.map_operator(expr.func)
            return self.combine(op, [self.eval(a, fixed) for a in expr.args])
        if isinstance(expr, Reduce):
            return self.reduce(expr, fixed)
        raise TypeError(expr)  # pragma: no cover

    def name(self, name: str, fixed: dict[str, int]) -> Val:
        if name in self.params:
            return Val(np.asarray(self.params[name]), ())
        if name in self.sizes and not name.islower():
            return Val(np.asarray(float(self.extents[name])), ())
        origin = self.origins.get(name, 0)
        if name in fixed:
            return Val(np.asarray(float(fixed[name] + origin)), ())
        return Val(np.arange(origin, origin + self.sizes[rank_of(name)], dtype=float), (name,))

    def union_vars(self, vals: list[Val]) -> tuple[str, ...]:
        present = {v for val in vals for v in val.vars}
        ordered = tuple(v for v in self.order if v in present)
        extra = tuple(sorted(present - set(ordered)))
        return ordered + extra

    def combine(self, op: operators.MapOperator, vals: list[Val], logical: bool = False) -> Val:
        want = self.union_vars(vals)
        datas = [_align(v.data, v.vars, want) for v in vals]
        if logical:
            datas = [d.astype(bool) if d.dtype != bool else d for d in datas]
        else:
            datas = [d.astype(float) if d.dtype == bool else d for d in datas]
        datas, valid = merge_absent(op, vals, want, datas, op.identity)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            data = np.asarray(op.function(*datas))
        return Val(data, want, valid)

    def where(self, vals: list[Val]) -> Val:
        cond = vals[0]
        want = self.union_vars(vals)
        c = _align(cond.data, cond.vars, want).astype(bool)
        a = _align(vals[1].data, vals[1].vars, want)
        a = a.astype(float) if a.dtype == bool else a
        valid = where_valid(vals, want, c)
        if len(vals) == 3:
            b = _align(vals[2].data, vals[2].vars, want)
            b = b.astype(float) if b.dtype == bool else b
            data = np.where(c, a, b)
        else:
            data = np.where(c, a, np.nan)
        return Val(np.asarray(data), want, valid)

    def reduce(self, expr: Reduce, fixed: dict[str, int]) -> Val:
        red = operators.reduction(expr.op)
        if expr.op == "sum" and isinstance(expr.body, BinOp) and expr.body.op == "*":
            return self.contract(expr, fixed)
        body = self.eval(expr.body, fixed)
        data = body.data.astype(float) if body.data.dtype == bool else body.data
        want = body.vars
        missing = [v for v in expr.vars if v not in want]
        if missing:  # the body is constant along a reduced rank: broadcast it
            want = want + tuple(missing)
            data = np.broadcast_to(_align(data, body.vars, want).reshape(data.shape + (1,) * len(missing)),
                                   data.shape + tuple(self.sizes[rank_of(v)] for v in missing))
        full_shape = tuple(self.sizes[rank_of(v)] if v not in body.vars else data.shape[want.index(v)]
                           for v in want)
        data = np.broadcast_to(data, full_shape)
        axes = tuple(want.index(v) for v in expr.vars)
        valid_out = None
        if body.valid is not None:
            mask = np.broadcast_to(_align(body.valid, body.vars, want) if not missing else
                                   _align(body.valid, body.vars, body.vars).reshape(
                                       body.valid.shape + (1,) * len(missing)), full_shape)
            data = np.where(mask, data, red.identity)
            valid_out = mask.any(axis=axes)
        with np.errstate(invalid="ignore", over="ignore"):
            result = red.apply(np.asarray(data), axes)
        rest = tuple(v for v in want if v not in expr.vars)
        return Val(np.asarray(result), rest, valid_out)

    def contract(self, expr: Reduce, fixed: dict[str, int]) -> Val:
        """``sum[vars] a * b * ...`` through ``numpy.einsum``."""
        factors = [self.eval(f, fixed) for f in _product_factors(expr.body)]
        present = [v for f in factors for v in f.vars]
        all_vars = tuple(dict.fromkeys(v for v in self.order if v in present)) + tuple(
            sorted(set(present) - set(self.order)))
        missing = [v for v in expr.vars if v not in all_vars]
        letters = {v: chr(ord("a") + k) for k, v in enumerate(all_vars + tuple(missing))}
        out_vars = tuple(v for v in all_vars if v not in expr.vars)
        operands, subscripts, masks = [], [], []
        any_mask = False
        for f in factors:
            data = f.data.astype(float) if f.data.dtype == bool else f.data
            if f.valid is not None:
                any_mask = True
                mask = np.broadcast_to(f.valid, data.shape)
                data = np.where(mask, data, 0.0)
                masks.append(mask.astype(float))
            else:
                masks.append(None)
            operands.append(data)
            subscripts.append("".join(letters[v] for v in f.vars))
        out = "".join(letters[v] for v in out_vars)
        spec = ",".join(subscripts) + "->" + out
        with np.errstate(invalid="ignore", over="ignore"):
            result = np.einsum(spec, *operands, optimize=len(operands) > 2)
        scale = 1.0
        for v in missing:  # a reduced rank none of the factors uses contributes its extent
            scale *= self.sizes[rank_of(v)]
        if scale != 1.0:
            result = result * scale
        valid = None
        if any_mask:
            mask_operands = [m if m is not None else np.ones(o.shape) for m, o in zip(masks, operands)]
            valid = np.einsum(spec, *mask_operands, optimize=len(operands) > 2) > 0
        return Val(np.asarray(result), out_vars, valid)

    def index_value(self, expr: Expr, fixed: dict[str, int]) -> Val:
        """Integer value of an index expression over its unfixed variables."""
        if isinstance(expr, Num):
            return Val(np.asarray(int(expr.value)), ())
        if isinstance(expr, Name):
            if expr.name in self.params:
                value = self.params[expr.name]
                if value != int(value):
                    raise SpecError(f"param {expr.name} = {value:g} is used as an index but is not an integer",
                                    location=Location(self.cascade.file))
                return Val(np.asarray(int(value)), ())
            if expr.name in self.sizes and not expr.name.islower():
                return Val(np.asarray(self.sizes[expr.name]), ())
            if expr.name in fixed:
                return Val(np.asarray(fixed[expr.name]), ())
            return Val(np.arange(self.sizes[rank_of(expr.name)]), (expr.name,))
        if isinstance(expr, BinOp):
            left, right = self.index_value(expr.left, fixed), self.index_value(expr.right, fixed)
            want = self.union_vars([left, right])
            a, b = _align(left.data, left.vars, want), _align(right.data, right.vars, want)
            if expr.op == "+":
                return Val(a + b, want)
            if expr.op == "-":
                return Val(a - b, want)
            if expr.op == "*":
                return Val(a * b, want)
            if expr.op == "/":
                return Val(np.floor_divide(a, b), want)
        if isinstance(expr, Unary) and expr.op == "-":
            inner = self.index_value(expr.operand, fixed)
            return Val(-inner.data, inner.vars)
        value = self.eval(expr, fixed)
        return Val(np.asarray(value.data).astype(np.int64), value.vars)

    def access(self, node: Access, fixed: dict[str, int]) -> Val:
        data, valid = self.store[node.tensor]
        # fast path: every index is a fixed integer or a distinct free variable within the axis
        basic: list = []
        free: list[str] = []
        fast = True
        for dim, index in zip(data.shape, node.indices):
            if isinstance(index, Name) and index.name.islower() and index.name not in self.params:
                if index.name in fixed:
                    basic.append(fixed[index.name])
                    continue
                extent = self.sizes[rank_of(index.name)]
                if extent <= dim and index.name not in free:
                    basic.append(slice(0, extent))
                    free.append(index.name)
                    continue
            elif isinstance(index, Num) and 0 <= index.value < dim:
                basic.append(int(index.value))
                continue
            elif isinstance(index, Name) and index.name in self.sizes and not index.name.islower() \
                    and index.name not in self.params and self.sizes[index.name] < dim:
                basic.append(self.sizes[index.name])
                continue
            fast = False
            break
        if fast:
            view = data[tuple(basic)]
            mask = None if valid is None else valid[tuple(basic)]
            want = tuple(v for v in self.order if v in free) + tuple(v for v in free if v not in self.order)
            perm = [free.index(v) for v in want]
            return Val(view.transpose(perm), want, None if mask is None else mask.transpose(perm))
        indices = [self.index_value(index, fixed) for index in node.indices]
        want = self.union_vars(indices)
        arrays = [_align(i.data, i.vars, want) for i in indices]
        in_range = None
        clipped = []
        for dim, arr in zip(data.shape, arrays):
            ok = (arr >= 0) & (arr < dim)
            if not np.all(ok):
                in_range = ok if in_range is None else in_range & ok
            clipped.append(np.clip(arr, 0, dim - 1))
        gathered = data[tuple(clipped)]
        mask = None if valid is None else valid[tuple(clipped)]
        if in_range is not None:
            mask = in_range if mask is None else mask & in_range
        if mask is not None:
            mask = np.broadcast_to(mask, gathered.shape)
        # advanced indexing of broadcast index arrays yields the broadcast shape over `want`
        gathered = np.asarray(gathered)
        if gathered.ndim != len(want):  # all indices were scalars
            gathered = gathered.reshape([1] * len(want)) if want else gathered
        full = tuple(self.sizes[rank_of(v)] for v in want)
        gathered = np.broadcast_to(gathered, full)
        if mask is not None:
            mask = np.broadcast_to(mask, full)
        return Val(gathered, want, mask)


def input_sizes(cascade: Cascade, inputs: dict[str, np.ndarray], given: dict[str, int],
                where: Callable[[str], Location], error: type[EinloomError] = SpecError) -> dict[str, int]:
    """``given`` rank sizes completed from the input arrays' shapes.

    Raises ``error`` at ``where(name)`` when an array has the wrong number of dimensions or disagrees
    with ``given`` or with another array on a rank's size.
    """
    given = dict(given)
    source = {rank: "--ranks" for rank in given}
    for name in cascade.inputs:
        if name not in inputs:
            continue
        array = np.asarray(inputs[name])
        ranks = cascade.tensors[name].ranks
        if array.ndim != len(ranks):
            raise error(f"input {name} has {array.ndim} dimensions but its ranks are [{', '.join(ranks)}]",
                        location=where(name), hint=f"give {name} as an array of shape ({', '.join(ranks)})")
        for rank, size in zip(ranks, array.shape):
            if rank in given and given[rank] != size:
                raise error(f"inconsistent rank sizes: input {name} has {rank} = {size} but {source[rank]} has "
                            f"{rank} = {given[rank]}", location=where(name),
                            hint=f"every input (and --ranks) must agree on the size of {rank}; {name} is "
                                 f"[{', '.join(ranks)}]")
            given.setdefault(rank, size)
            source.setdefault(rank, f"input {name}")
    return given


def run_cascade(cascade: Cascade, inputs: dict[str, np.ndarray], ranks: dict[str, int] | None = None,
                *, keep_intermediates: bool = False, slice_of: tuple[str, int, int] | None = None) -> RunResult:
    """Execute ``cascade`` on ``inputs`` (arrays in the declared rank order) in float64.

    ``ranks`` gives rank sizes (and may override params); sizes missing there are taken from the
    input shapes, the spec's defaults and partition rules.  Raises :class:`SpecError` for missing,
    extra or wrongly shaped inputs and for inconsistent rank sizes.

    ``slice_of = (rank, lo, hi)`` runs coordinates ``lo .. hi-1`` of ``rank`` of the problem that
    ``ranks`` describes: the inputs hold only that slice along ``rank``, but the rank's coordinates
    keep their values in the whole problem (``where(m <= p + M - P, ...)`` masks the slice as in a
    whole run) and params and extents are the whole problem's.  The rank must be one that no Einsum
    reduces or iterates over, not partitioned, and read only as itself in tensor indices (ValueError
    otherwise).
    """
    for name in inputs:
        if name not in cascade.inputs:
            raise SpecError(f"unexpected input {name!r}", location=Location(cascade.file, None, "inputs"),
                            hint=f"inputs of {cascade.name}: {', '.join(cascade.inputs)}")
    for name in cascade.inputs:
        if name not in inputs:
            raise SpecError(f"missing input {name!r}", location=Location(cascade.file, None, "inputs"),
                            hint=f"inputs of {cascade.name}: {', '.join(cascade.inputs)}")
    if slice_of is not None:
        return _run_slice(cascade, inputs, dict(ranks or {}), slice_of, keep_intermediates)
    given = dict(ranks or {})
    given = input_sizes(cascade, inputs, given, lambda name: Location(cascade.file, None, f"inputs.{name}"))
    sizes, params = resolve(cascade, given)
    interpreter = Interpreter(cascade, sizes, params)
    for name in cascade.inputs:
        interpreter.store[name] = (np.asarray(inputs[name], dtype=float), None)
    interpreter.run(inputs)
    return _result(cascade, interpreter, sizes, params, keep_intermediates)


def _result(cascade: Cascade, interpreter: Interpreter, sizes: dict[str, int], params: dict[str, float],
            keep_intermediates: bool) -> RunResult:
    outputs: dict[str, np.ndarray] = {}
    absent: dict[str, int] = {}
    for name in cascade.outputs:
        data, valid = interpreter.store[name]
        data = np.array(data, dtype=float)
        if valid is not None and not valid.all():
            absent[name] = int((~valid).sum())
            data[~valid] = np.nan
        outputs[name] = data
    intermediates = {}
    if keep_intermediates:
        intermediates = {n: d for n, (d, _) in interpreter.store.items() if n not in cascade.inputs}
    return RunResult(outputs, sizes, params, absent, intermediates)


def slice_refusal(cascade: Cascade, ranks: dict[str, int], rank: str) -> str | None:
    """Why ``rank`` cannot be run a slice at a time (``run_cascade``'s ``slice_of``), or None if it can:
    it is partitioned, an Einsum reduces or iterates over it, another rank's size derives from it,
    or an index is computed from its variable."""
    parts = sorted({r for p in cascade.partitions if p.root == rank for r in (p.outer, p.inner)})
    if parts:
        return f"rank {rank} cannot be sliced: {', '.join(parts)} partition it"
    sizes, _ = resolve(cascade, ranks)
    try:
        sub_sizes, _ = resolve(cascade, {**ranks, rank: 1})
    except SpecError as err:                # a given size no longer fits a one-coordinate rank
        return f"rank {rank} cannot be sliced: {err.message}"
    coupled = sorted(r for r in sizes if r != rank and sizes[r] != sub_sizes[r])
    if coupled:
        return f"rank {rank} cannot be sliced: the sizes of {', '.join(coupled)} derive from it"
    var = rank.lower()
    for einsum in cascade.einsums:
        if var in einsum.reduced_vars or var == einsum.iterative_var:
            return f"rank {rank} cannot be sliced: Einsum {einsum.name} reduces or iterates over it"
        for node in walk(einsum.expr):
            if isinstance(node, Access) and any(
                    index != Name(var) and any(n == Name(var) for n in walk(index)) for index in node.indices):
                return f"rank {rank} cannot be sliced: Einsum {einsum.name} computes an index from {var}"
    return None


def _run_slice(cascade: Cascade, inputs: dict[str, np.ndarray], ranks: dict[str, int],
               slice_of: tuple[str, int, int], keep_intermediates: bool) -> RunResult:
    rank, lo, hi = slice_of
    sizes, params = resolve(cascade, ranks)
    if not 0 <= lo < hi <= sizes[rank]:
        raise ValueError(f"slice {lo}..{hi} outside rank {rank} of size {sizes[rank]}")
    refusal = slice_refusal(cascade, ranks, rank)
    if refusal:
        raise ValueError(refusal)
    sub_sizes, _ = resolve(cascade, {**ranks, rank: hi - lo})
    given = input_sizes(cascade, inputs, dict(sub_sizes), lambda name: Location(cascade.file, None, f"inputs.{name}"))
    interpreter = Interpreter(cascade, {**sizes, **given, rank: hi - lo}, params,
                              origins={rank.lower(): lo}, extents=sizes)
    for name in cascade.inputs:
        interpreter.store[name] = (np.asarray(inputs[name], dtype=float), None)
    interpreter.run(inputs)
    return _result(cascade, interpreter, sub_sizes, params, keep_intermediates)


def random_inputs(cascade: Cascade, ranks: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Standard-normal float64 inputs of the right shapes (for ``einloom run`` and tests)."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(tuple(ranks[r] for r in cascade.tensors[name].ranks))
            for name in cascade.inputs}
