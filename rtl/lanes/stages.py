"""Split a cascade into lane-core **stages**: runs of the 2D array + lanes, one after the other.

The lane core runs one structure per run: products that output the key rank (scores), products that
reduce it (value products), lane work in between.  Some cascades reduce the key rank into a *state*
first and read that state with products over another rank afterwards.  Linear attention is the
example: ``KV[e, f] = sum[m] FK[e, m] * V[f, m]`` reduces the keys, then ``NUM[f, p] = sum[e] FQ[e, p]
* KV[e, f]`` reduces the feature rank ``e`` against the state.  The second product neither outputs nor
reduces the key rank, so it cannot run in the pass over the keys; it runs in a second stage whose own
key rank (the rank on the 2D rows) is the rank it reduces.

Rule (from the products' ranks, never from names):

* a **late product** is a multiply-accumulate (``sum`` of a product) whose iteration ranks contain no
  key rank (the sequence rank or a rank partitioned from it) and that reads, through other Einsums, a
  tensor over the keys (a product of inputs alone, a projection before attention, is refused);
* the late stage holds the late products, every Einsum that depends on one, and every Einsum off the
  keys that reads no early Einsum and whose readers are all in the late stage (``FQ = phi(Q)``, read
  only by ``NUM`` and ``DEN``); everything else is the early stage;
* the tensors the early stage computes and the late stage reads are **handed over**: outputs of the
  early stage, inputs of the late one (on the core: the early run's output beats are the late run's
  memory words; bf16 codes, which is exactly how the golden model's ``mac`` rounds a product's operand,
  so a handed-over tensor may be read by the late stage's products only);
* the late stage's sequence rank is the one rank its late products reduce; the late stage is split
  again by the same rule.

The mirror, a **prologue** (``_split_prologue``): a product of inputs alone (through views of them) that
reduces no key rank and either iterates no key rank (mla-absorbed's ``QL = sum[e] QC * WUK``) or is read
only as another product's operand (mla-explicit's projections ``KH = sum[c] CKV * WUK``, ``VH``) runs
first, with the rank it reduces on the 2D rows (one stage per output rank set: one value rank per run);
its outputs are handed over as inputs of the rest, which is split again.

A cascade with no late product and no prologue is one stage (itself).  Refused: late products reducing different or
several ranks, an iterative tensor handed over (a per-key state read by every query at its own key:
causal linear attention's ``KV[m+1, e, f]``), a handed-over tensor read at a shifted iterate, a prologue's
products reducing different or several ranks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from einloom.base.errors import Location, SpecError
from einloom.einsum.cascade import Cascade, TensorDecl, rank_of
from einloom.einsum.expr import Access, BinOp, Reduce


@dataclass(frozen=True)
class Stage:
    """One run of the lane core: its sub-cascade and the tensors an earlier stage hands it."""

    cascade: Cascade
    handed: tuple[str, ...]


def _readers(cascade: Cascade, deps: dict[str, set[str]]) -> dict[str, set[str]]:
    """Tensor -> the Einsums that read it (``deps``: Einsum -> the computed tensors it reads)."""
    readers: dict[str, set[str]] = {}
    for e in cascade.einsums:
        for t in deps[e.name]:
            readers.setdefault(t, set()).add(e.name)
    return readers


def _is_sum_product(e: Any) -> bool:
    if isinstance(e.expr, Reduce):
        return e.expr.op == "sum" and not e.implicit_vars and isinstance(e.expr.body, BinOp) and \
            e.expr.body.op == "*"
    return bool(e.implicit_vars) and isinstance(e.expr, BinOp) and e.expr.op == "*"


def _key_ranks(cascade: Cascade) -> set[str]:
    ranks = {r for t in cascade.tensors.values() for r in t.ranks} | \
        {rank_of(v) for e in cascade.einsums for v in e.iteration_vars}
    return {r for r in ranks if cascade.sequence_rank in cascade.root_ranks(r)}


def _refuse(cascade: Cascade, einsum: Any, what: str, hint: str) -> SpecError:
    name = getattr(einsum, "name", None)
    where = f"Einsum {name}: " if name else ""
    return SpecError(f"the lane core cannot run {cascade.name}: {where}{what}",
                     location=Location(cascade.file, getattr(einsum, "line", None), name), hint=hint)


def split_stages(cascade: Cascade) -> list[Stage]:
    """The stages of ``cascade`` in execution order (one stage: the cascade itself)."""
    keys = _key_ranks(cascade)
    names = {e.name for e in cascade.einsums}
    deps = {e.name: {t for t in e.inputs if t in names and t != e.name} for e in cascade.einsums}
    keyed: set[str] = set()             # Einsums over the keys and everything computed from them
    for e in cascade.einsums:           # (topological order)
        if set(e.iteration_ranks) & keys or deps[e.name] & keyed:
            keyed.add(e.name)
    unkeyed = [e for e in cascade.einsums if _is_sum_product(e) and not set(e.iteration_ranks) & keys]
    prologue = [e for e in unkeyed if e.name not in keyed] or _projections(cascade, keys, deps)
    if prologue:
        return _split_prologue(cascade, prologue, deps)
    late_products = [e for e in unkeyed if e.name in keyed]
    if not late_products:
        return [Stage(cascade, ())]
    readers = _readers(cascade, deps)
    late = {e.name for e in late_products}
    changed = True
    while changed:
        changed = False
        for e in cascade.einsums:
            if e.name in late:
                continue
            after = deps[e.name] & late
            feeds_late = readers.get(e.name) and readers[e.name] <= late and not deps[e.name] - late and \
                not set(e.iteration_ranks) & keys
            if after or feeds_late:
                late.add(e.name)
                changed = True
    early = [e for e in cascade.einsums if e.name not in late]
    later = [e for e in cascade.einsums if e.name in late]
    if not early:
        return [Stage(cascade, ())]
    handed = tuple(e.name for e in early if readers.get(e.name, set()) & late)
    if not handed:          # the late products read nothing of the pass over the keys (a prologue)
        return [Stage(cascade, ())]
    reduced = {r for e in late_products for r in e.reduced_ranks}
    if len(reduced) != 1 or any(len(e.reduced_ranks) != 1 for e in late_products):
        raise _refuse(cascade, late_products[0], f"its products after the pass over the keys reduce "
                      f"{', '.join(sorted(reduced))} (a later stage reduces one rank on the 2D rows)",
                      "reduce one rank in every product that reads the state")
    for t in handed:
        if cascade.tensors[t].iterative_rank:
            user = cascade.einsum(sorted(readers[t] & late)[0])
            raise _refuse(cascade, user, f"it reads the state {t}, an iterate over "
                          f"{cascade.tensors[t].iterative_rank}, after the pass that updates it (each query "
                          "reads its own iterate: a per-key recurrence the lane core cannot hand over)",
                          "the lane core hands over a state complete after the keys (non-causal form)")
        for user in sorted(readers[t] & late):
            e = cascade.einsum(user)
            if not _is_sum_product(e):
                raise _refuse(cascade, e, f"it reads {t}, handed over from the pass over the keys, outside a "
                              "multiply-accumulate (the core hands a state over in bf16 as a product's operand; "
                              "the golden model keeps it in fp32 for other uses)",
                              f"read {t} only in products (e.g. sum[e] FQ[e, p] * {t}[e, ...])")
    first = _sub(cascade, early, cascade.sequence_rank, handed, (), "state")
    second = _sub(cascade, later, reduced.pop(), (), handed, "read")
    return [Stage(first, ())] + [Stage(s.cascade, handed if k == 0 else s.handed)
                                 for k, s in enumerate(split_stages(second))]


def _projections(cascade: Cascade, keys: set[str], deps: dict[str, set[str]]) -> list[Any]:
    """Products of inputs that iterate the keys without reducing them and are read only as an operand of
    other products (through views): projections of the inputs (mla-explicit's per-head keys and values
    ``KH[h, e, m] = sum[c] CKV[c, m] * WUK[h, c, e]``).  A score product is read by the lanes, not here."""
    views = {e.name for e in cascade.einsums if isinstance(e.expr, Access)}
    readers = _readers(cascade, deps)

    def users(t: str) -> set[str]:       # readers through views
        out = set()
        for r in readers.get(t, set()):
            out |= users(r) if r in views else {r}
        return out

    def of_inputs(e: Any) -> bool:
        return all(d in views and of_inputs(cascade.einsum(d)) for d in deps[e.name])
    return [e for e in cascade.einsums if _is_sum_product(e) and e.name not in views and of_inputs(e) and
            not set(e.reduced_ranks) & keys and users(e.name) and
            all(_is_sum_product(cascade.einsum(u)) for u in users(e.name))]


def _split_prologue(cascade: Cascade, products: list[Any], deps: dict[str, set[str]]) -> list[Stage]:
    """The **prologue** stage, the mirror of the late stage: products of inputs alone before the pass over
    the keys (``QL[h, c, p] = sum[e] QC[h, e, p] * WUK[h, c, e]``, their iteration ranks no key rank, reading
    nothing computed over the keys) run first, with the rank they reduce on the 2D rows; their outputs are
    handed over to the rest of the cascade (split again) as inputs.  The prologue holds those products and
    the Einsums off the keys that only they read."""
    readers = _readers(cascade, deps)
    first = {e.name for e in products}
    changed = True
    while changed:
        changed = False
        for e in cascade.einsums:
            if e.name not in first and readers.get(e.name) and readers[e.name] <= first:
                first.add(e.name)
                changed = True
    outs = {frozenset(cascade.tensors[e.name].ranks) for e in products}
    if len(outs) > 1:       # one value rank per stage: KH [h, e, m] and VH [h, f, m] run one after the other
        first_group = [e for e in products if frozenset(cascade.tensors[e.name].ranks) ==
                       frozenset(cascade.tensors[products[0].name].ranks)]
        return _split_prologue(cascade, first_group, deps)
    reduced = {r for e in products for r in e.reduced_ranks}
    if len(reduced) != 1 or any(len(e.reduced_ranks) != 1 for e in products):
        raise _refuse(cascade, products[0], f"its products of inputs before the pass over the keys reduce "
                      f"{', '.join(sorted(reduced))} (a prologue stage reduces one rank on the 2D rows)",
                      "reduce one rank in every projection before the keys")
    early = [e for e in cascade.einsums if e.name in first]
    rest = [e for e in cascade.einsums if e.name not in first]
    handed = tuple(e.name for e in early if readers.get(e.name, set()) - first)
    views = {e.name for e in cascade.einsums if isinstance(e.expr, Access)}

    def users(x: str) -> set[str]:       # readers through views (BK = KH[h, e, m1*M0 + m0])
        out = set()
        for r in readers.get(x, set()) - first:
            out |= users(r) if r in views else {r}
        return out
    for t in handed:
        for user in sorted(users(t)):
            e = cascade.einsum(user)
            if not _is_sum_product(e):
                raise _refuse(cascade, e, f"it reads {t}, handed over from a prologue stage (a product of inputs "
                              "before the keys), outside a multiply-accumulate (the core hands it over in bf16 "
                              "as a product's operand; the golden model keeps it in fp32 for other uses)",
                              f"read {t} only in products")
    pro = _sub(cascade, early, reduced.pop(), handed, (), "prologue")
    later = _sub(cascade, rest, cascade.sequence_rank, (), handed, "main")
    out = [Stage(pro, ())]
    names = [pro.name]
    for s in split_stages(later):       # the stages after it keep the cascade's own name
        name = s.cascade.name.replace(f"{cascade.name}.main", cascade.name, 1)
        name += str(names.count(name) + 1) if name in names else ""        # a second prologue: .prologue2
        names.append(name)
        # what earlier stages hand it: its inputs that are not the cascade's
        out.append(Stage(replace(s.cascade, name=name), tuple(x for x in s.cascade.inputs if x not in cascade.inputs)))
    return out


def _sub(cascade: Cascade, einsums: list[Any], sequence_rank: str, extra_outputs: tuple[str, ...],
         extra_inputs: tuple[str, ...], suffix: str) -> Cascade:
    names = {e.name for e in einsums}
    used = {t for e in einsums for t in e.inputs} | names
    inputs = tuple(t for t in cascade.inputs if t in used) + extra_inputs
    outputs = tuple(t for t in cascade.outputs if t in names) + \
        tuple(t for t in extra_outputs if t not in cascade.outputs)
    tensors = {}
    for t in used | set(extra_inputs):
        decl = cascade.tensors[t]
        role = "input" if t in inputs else "output" if t in outputs else "intermediate"
        tensors[t] = TensorDecl(decl.name, decl.ranks, role, decl.iterative_rank if t in names else None)
    ranks = {rank_of(v) for e in einsums for v in e.iteration_vars} | {r for t in tensors.values() for r in t.ranks}
    partitions = tuple(p for p in cascade.partitions if p.inner in ranks or p.outer in ranks)
    dropped = {r for p in cascade.partitions if p not in partitions for r in (p.inner, p.outer)}
    return replace(cascade, name=f"{cascade.name}.{suffix}", tensors=tensors, inputs=inputs, outputs=outputs,
                   init=tuple(i for i in cascade.init if i.tensor in names), einsums=tuple(einsums),
                   partitions=partitions, ranks=tuple(r for r in cascade.ranks if r not in dropped),
                   sequence_rank=sequence_rank, reference=None)
