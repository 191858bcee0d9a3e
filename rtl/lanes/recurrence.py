"""Per-key recurrences on the lane core: a state updated at every key, read by the query at that key.

Causal linear attention keeps an E x F state over the tokens, ``KV[m+1, e, f] = KV[m, e, f] + FK[e, m] *
V[f, m]``, and the query at token m reads it after its own update, ``NUM[f, m] = sum[e] FQ[e, m] *
KV[m+1, e, f]``.  The golden model (``run_in_format``) runs the iterative rank as a loop: the state is a
chain of ``add(S, mul(A, B))`` per key in key order, then each query's product a ``mac`` chain over
``e``.  No chunked (tile) form reproduces those bits, so the core runs the recurrence per key:

* the **2D array's rows** are the rank the readers reduce (``e``, tiled by R), its **columns** the
  queries (the lanes, one per query m; the rank the state iterates over);
* a **state chain**: PE (k, c) of a value product that reads the state computes, in its column chain's
  cycle, ``s[k, c] = add(s[k, c-1], mul(u[k, c], B[f, m_c]))`` across the row (``s[k, -1]``: the state
  the block starts from, kept per (tile, k, f) in the core; the last column's value is the next block's),
  which is ``S[m_c + 1, e_k, f]`` for the lane's query, and multiplies it as the chain's value operand
  (``mac(acc, w[k, c], S)``: the reader's own multiply-accumulate, continued over the tiles of e);
* the update weights ``u = A[e, m]`` (``FK = phi(K)``) are computed by the lanes like the read weights
  (``FQ``): the lane program emits them as the weights of an **update product** (a value product the
  compiler sees as ``U[f, m] = A[e, m] * S[e, f]``; its column sums are not read), kept by the PEs in
  the format's full precision (the golden ``mul`` reads ``A`` unrounded); ``B`` is an input ``[f, m]``
  (``V``: the core's memory ``u<i>``, word (block, f) = the C lanes' values) or absent (``Z[m+1, e] =
  Z[m, e] + FK[e, m]``: ``u`` itself is added).

:func:`per_key_recurrence` finds this structure from the ranks and recurrences (never names) and gives
the lane core's view of the cascade (:class:`Recurrence`: a surrogate cascade whose key rank is ``e``
and whose states are value operands, plus the state chains); anything else over the key rank itself
is refused naming the Einsum and the missing capability (aaren's running max ``RM[m+1] = max(RM[m],
S[m])``: a state that is not a sum of products; a state read outside a product).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from einloom.einsum.cascade import Cascade, rank_of, var_of
from einloom.einsum.expr import Access, BinOp, Expr, Name, Num, Reduce, to_text, walk
from einloom.rtl.lanes.stages import _refuse


@dataclass(frozen=True)
class StateChain:
    """A state ``S`` the lane core keeps in its 2D array: ``S[m+1, e, (f)] = S[m, e, (f)] + A[e, m]
    (* B[f, m])``, read by the value product ``reader`` (``sum[e] W[e, m] * S[m+1, e, (f)]``)."""

    state: str
    reader: str
    weight: str                 # A: computed on the lanes, emitted as the update product's weights
    operand: str | None         # B: an input [f, m], or None (the state adds A itself)
    update: str                 # the update product carrying A's weights


@dataclass(frozen=True)
class Recurrence:
    """The lane core's view of a cascade with per-key states: ``cascade`` (the surrogate the lane
    compiler builds: key rank ``e``, the states as value operands, one update product per weight
    tensor) and its state chains.  The golden model is ``run_in_format`` of ``original``."""

    original: Cascade
    cascade: Cascade
    chains: tuple[StateChain, ...]
    states: tuple[str, ...]

    def surrogate_inputs(self, inputs: dict[str, Any], arith: Any, sizes: dict[str, int]) -> dict[str, Any]:
        """The surrogate's inputs: the original's (the update operands dropped) and each state as zeros
        (the state chains read the core's state registers, not these memories)."""
        import numpy as np
        out = {t: inputs[t] for t in self.cascade.inputs if t in inputs}
        for s in self.states:
            shape = tuple(sizes[r] for r in self.cascade.tensors[s].ranks)
            out[s] = np.zeros(shape, dtype=np.int64)
        return out


def _key_states(cascade: Cascade) -> list[str]:
    """States iterating over a key rank that is not a tile rank (``RM[m1+1]`` over M1 = M / M0 is
    the lane program's per-tile state; ``KV[m+1]`` over M itself is per key)."""
    outer = {p.outer for p in cascade.partitions}
    return [t for t, d in cascade.tensors.items()
            if d.iterative_rank and d.iterative_rank not in outer and
            cascade.sequence_rank in cascade.root_ranks(d.iterative_rank)]


def _own(a: Access, vars_: tuple[str, ...]) -> bool:
    return len(a.indices) == len(vars_) and all(isinstance(i, Name) and i.name == v for i, v in zip(a.indices, vars_))


def _is_next(index: Expr, var: str) -> bool:
    return isinstance(index, BinOp) and index.op == "+" and isinstance(index.left, Name) and \
        index.left.name == var and isinstance(index.right, Num) and index.right.value == 1


def _update_terms(cascade: Cascade, e: Any, state: str, it: str) -> tuple[Access, Access | None]:
    """``A`` and ``B`` of ``S[m+1, X] = S[m, X] + A (* B)`` (refused otherwise)."""
    rest = tuple(var_of(r) for r in cascade.tensors[state].ranks[1:])
    x = e.expr
    ok = isinstance(x, BinOp) and x.op == "+" and isinstance(x.left, Access) and x.left.tensor == state and \
        _own(x.left, (it,) + rest)
    term = x.right if ok else None
    if ok and isinstance(term, Access):
        return term, None
    if ok and isinstance(term, BinOp) and term.op == "*" and isinstance(term.left, Access) and \
            isinstance(term.right, Access):
        return term.left, term.right
    raise _refuse(cascade, e, f"its state {state} iterates over the key rank {rank_of(it)} itself and "
                  f"{to_text(e.output)} = {to_text(x)} is not a running sum of products ({state}[{it}+1, ...] = "
                  f"{state}[{it}, ...] + A * B); the lane core's per-key state chain adds one product (or one "
                  "lane value) per key and has no running max or rescaling along the keys",
                  "write the per-key state as a running sum, or partition the keys into tiles and carry the "
                  "state over the tile rank")


def per_key_recurrence(cascade: Cascade) -> Recurrence | None:
    """The :class:`Recurrence` of ``cascade`` when a state iterates over the key rank itself (None when
    none does); refusals name the Einsum and what the state chain cannot do."""
    states = _key_states(cascade)
    if not states:
        return None
    computed = {e.name for e in cascade.einsums}
    inits = {i.tensor: i for i in cascade.init}
    readers: dict[str, list[Any]] = {s: [] for s in states}
    for e in cascade.einsums:
        for s in states:
            if s in e.inputs and e.name != s:
                readers[s].append(e)
    reduced: set[str] = set()
    chains = []
    lane_var = None
    for s in states:
        e = cascade.einsum(s)
        it = e.iterative_var
        lane_var = lane_var or it
        a, b = _update_terms(cascade, e, s, it)
        rest = cascade.tensors[s].ranks[1:]
        init = inits.get(s)
        if init is None or not isinstance(init.value, Num) or init.value.value != 0:
            raise _refuse(cascade, e, f"its state {s} starts from a value other than 0 (the core's state "
                          "registers start at +0)", f"init: {{{s}[0, ...]: 0}}")
        if len(readers[s]) != 1:
            raise _refuse(cascade, e, f"its state {s} is read by {len(readers[s])} Einsums (the core's state "
                          "chain feeds one product)", f"read {s} in one product sum[e] W[e, {it}] * {s}[{it}+1, ...]")
        r = readers[s][0]
        body = r.expr.body if isinstance(r.expr, Reduce) else r.expr
        red = tuple(r.expr.vars) if isinstance(r.expr, Reduce) else tuple(r.implicit_vars)
        uses = [x for x in walk(body) if isinstance(x, Access) and x.tensor == s]
        product = isinstance(body, BinOp) and body.op == "*" and (not isinstance(r.expr, Reduce) or r.expr.op == "sum")
        if not product or len(red) != 1 or len(uses) != 1 or not _is_next(uses[0].indices[0], it) or \
                not _own(Access(s, uses[0].indices[1:]), tuple(var_of(x) for x in rest)):
            raise _refuse(cascade, r, f"it reads the per-key state {s} other than in one product reducing one "
                          f"rank at the state after its own key ({s}[{it}+1, ...])",
                          f"read it as sum[e] W[e, {it}] * {s}[{it}+1, e, ...]")
        reduced.add(red[0])
        rvar = red[0]
        if rest[0] != rank_of(rvar):
            raise _refuse(cascade, r, f"it reduces {rank_of(rvar)}, not the first rank of the state {s} "
                          f"({', '.join(rest)})", f"order the state's ranks [{it}, reduced rank, ...]")
        want_a = (rvar, it)
        if a.tensor not in computed or not _own(a, want_a) or a.tensor in states:
            raise _refuse(cascade, e, f"its update term {to_text(a)} is not a lane value [{', '.join(want_a)}] "
                          "(the core's update weights are the lanes' values per reduced index and key)",
                          f"compute the update factor as an Einsum over [{', '.join(want_a)}]")
        if b is not None:
            want_b = tuple(var_of(x) for x in rest[1:]) + (it,)
            if b.tensor not in cascade.inputs or not _own(b, want_b) or len(rest) != 2:
                raise _refuse(cascade, e, f"its update operand {to_text(b)} is not an input [{', '.join(want_b)}] "
                              "(the core's update operand memory holds an input per value column and query)",
                              "multiply the update factor by an input indexed [f, key]")
        elif len(rest) != 1:
            raise _refuse(cascade, e, f"its state {s} has a value rank but its update no operand over it",
                          f"update it with A * B[f, {it}]")
        chains.append((s, r.name, a.tensor, b.tensor if b is not None else None))
    if len(reduced) != 1:
        raise _refuse(cascade, cascade.einsum(states[0]), f"its per-key states are read over different ranks "
                      f"({', '.join(sorted(reduced))}; the 2D rows hold one)", "read every state over one rank")
    return _surrogate(cascade, states, chains, reduced.pop(), lane_var)


def _surrogate(cascade: Cascade, states: list[str], chains: list[tuple], rvar: str, it: str) -> Recurrence:
    from einloom.einsum.loader import cascade_from_dict
    from einloom.einsum.printer import _value
    import json
    key = rank_of(rvar)
    operands = {c[3] for c in chains if c[3]}
    vrank = next((cascade.tensors[c[0]].ranks[2] for c in chains if c[3]), None)
    vstate = next((c[0] for c in chains if c[3]), None)
    if vstate is None:
        raise _refuse(cascade, cascade.einsum(states[0]), "no per-key state has a value rank (the core's state "
                      "chains run per value column)", "keep an E x F state")
    updates = {}
    for s, _r, a, _b in chains:
        if a not in updates:
            name = f"U{a}"
            while name in cascade.tensors:
                name = "U" + name
            updates[a] = name
    inputs = [t for t in cascade.inputs if t not in operands] + list(states)
    tensors = {t: list(cascade.tensors[t].ranks) for t in cascade.inputs if t not in operands}
    for s in states:
        tensors[s] = list(cascade.tensors[s].ranks[1:])
    for t in cascade.outputs:
        tensors[t] = list(cascade.tensors[t].ranks)

    def strip(x: Expr) -> Expr:
        """``S[m+1, e, f]`` -> ``S[e, f]`` (the state operand of the surrogate)."""
        if isinstance(x, Access):
            if x.tensor in states:
                return Access(x.tensor, x.indices[1:])
            return Access(x.tensor, tuple(strip(i) for i in x.indices))
        if hasattr(x, "__dataclass_fields__"):
            kw = {}
            for fname in x.__dataclass_fields__:
                v = getattr(x, fname)
                if isinstance(v, Expr):
                    kw[fname] = strip(v)
                elif isinstance(v, tuple) and v and all(isinstance(y, Expr) for y in v):
                    kw[fname] = tuple(strip(y) for y in v)
            return replace(x, **kw) if kw else x
        return x

    lines = []
    for e in cascade.einsums:
        if e.name in states:
            continue
        lines.append(f"{to_text(e.output)} = {to_text(strip(e.expr))}")
    fv = var_of(vrank)
    for a, u in updates.items():
        lines.append(f"{u}[{fv}, {it}] = {a}[{rvar}, {it}] * {vstate}[{rvar}, {fv}]")
    data = {"name": "recurrence", "sequence_rank": key,
            "ranks": {r: json.loads(_value(x)) if _value(x).startswith('"') else float(_value(x))
                      for r, x in cascade.rank_defaults.items()},
            "params": {p: json.loads(_value(x)) if _value(x).startswith('"') else float(_value(x))
                       for p, x in cascade.params.items()},
            "tensors": tensors, "inputs": inputs, "outputs": list(cascade.outputs), "einsums": lines}
    if not data["params"]:
        del data["params"]
    sur = cascade_from_dict(data)
    sur = replace(sur, name=f"{cascade.name}.recurrence", file=cascade.file, description=cascade.description,
                  source=cascade.source, reference=None)
    return Recurrence(cascade, sur, tuple(StateChain(s, r, a, b, updates[a]) for s, r, a, b in chains),
                      tuple(states))
