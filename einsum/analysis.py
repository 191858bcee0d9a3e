"""Static analyses of a cascade: dependency DAG, passes, footprints, op counts.

* **Dependency DAG** (networkx): a node per tensor, an edge producer -> consumer per read, labelled
  ``same`` (same iteration), ``carried`` (reads the previous iterate of an iterative rank) or
  ``final`` (reads the final iterate).
* **Passes over a rank R** (FuseMax, MICRO 2024, §III): how many times the cascade must traverse the
  full extent of R.  An Einsum *traverses* R when its iteration space contains R at element
  granularity (R itself, or the inner rank of a partition of R; an Einsum over the tile index M1 alone
  walks partials, not R).  A value is *complete along R* when it was reduced over R, or is the final
  iterate of an iterative rank partitioned from R.  An Einsum that traverses R and reads a complete
  value needs a new traversal: ``level = level(input) + 1``.  passes(R) is the largest level.
* **Footprints**: an intermediate whose consumer runs in a later pass than its producer must be held
  (or recomputed) along R; its buffer grows with R.
* **Op counts**: every operator node costs one op of its class(es) per point of its own index space;
  a sum-reduction of a product costs one ``mac`` per point of the product's space.  Formulas are
  polynomials in the rank sizes; masks are counted densely (no tile skipping).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from einloom.einsum import operators
from einloom.einsum.cascade import Cascade, Einsum, rank_of
from einloom.einsum.errors import SpecError
from einloom.einsum.expr import Access, BinOp, Call, Expr, Name, Num, Reduce, Unary, walk
from einloom.einsum.ranks import resolve

Monomial = tuple[str, ...]
Polynomial = dict[Monomial, int]


def format_polynomial(poly: Polynomial) -> str:
    if not poly:
        return "0"
    terms = []
    for mono, coeff in sorted(poly.items(), key=lambda kv: (-len(kv[0]), kv[0])):
        body = "*".join(mono)
        if not body:
            terms.append(str(coeff))
        elif coeff == 1:
            terms.append(body)
        else:
            terms.append(f"{coeff}*{body}")
    return " + ".join(terms)


def evaluate_polynomial(poly: Polynomial, sizes: dict[str, int]) -> int:
    total = 0
    for mono, coeff in poly.items():
        term = coeff
        for rank in mono:
            term *= sizes[rank]
        total += term
    return total


def _add(poly: Polynomial, mono: Monomial, coeff: int = 1) -> None:
    poly[mono] = poly.get(mono, 0) + coeff


@dataclass
class EinsumReport:
    name: str
    text: str
    line: int | None
    iteration_ranks: tuple[str, ...]
    reduced_ranks: tuple[str, ...]
    iterative_rank: str | None
    inputs: tuple[str, ...]
    op_formulas: dict[str, str]
    op_counts: dict[str, int] | None
    levels: dict[str, int]


@dataclass
class Footprint:
    tensor: str
    ranks: tuple[str, ...]
    elements_formula: str
    elements: int | None
    grows_with: tuple[str, ...]
    live_elements_formula: str


@dataclass
class Analysis:
    """Everything ``einloom check`` reports; :meth:`to_dict` is its ``--json``."""

    cascade: str
    rank_sizes: dict[str, int] | None
    params: dict[str, float] | None
    passes: dict[str, int]
    sequence_rank: str
    einsums: list[EinsumReport]
    footprints: list[Footprint]
    op_totals_formula: dict[str, str]
    op_totals: dict[str, int] | None
    graph: nx.DiGraph = field(repr=False)

    @property
    def op_counts(self) -> dict[str, dict[str, int]]:
        """{einsum: {op_class: count}} for the analysed sizes."""
        return {e.name: dict(e.op_counts or {}) for e in self.einsums}

    @property
    def tensor_sizes(self) -> dict[str, int]:
        return {f.tensor: f.elements for f in self.footprints if f.elements is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "cascade": self.cascade,
            "rank_sizes": self.rank_sizes,
            "params": self.params,
            "sequence_rank": self.sequence_rank,
            "passes": self.passes,
            "einsums": [vars(e) | {"iteration_ranks": list(e.iteration_ranks),
                                   "reduced_ranks": list(e.reduced_ranks), "inputs": list(e.inputs)}
                        for e in self.einsums],
            "footprints": [vars(f) | {"ranks": list(f.ranks), "grows_with": list(f.grows_with)}
                           for f in self.footprints],
            "op_totals_formula": self.op_totals_formula,
            "op_totals": self.op_totals,
            "dag": {"nodes": list(self.graph.nodes),
                    "edges": [{"from": a, "to": b, "kind": d["kind"]} for a, b, d in self.graph.edges(data=True)]},
        }


class _Walker:
    """Per-Einsum helpers: variables of nodes, read kinds."""

    def __init__(self, cascade: Cascade):
        self.cascade = cascade
        self.params = set(cascade.params)
        self.iterative = {t.name: t.iterative_rank for t in cascade.tensors.values() if t.iterative_rank}

    def is_var(self, name: str) -> bool:
        return name.islower() and name not in self.params and name.upper() in self.cascade.ranks

    def node_vars(self, node: Expr) -> frozenset[str]:
        if isinstance(node, Name):
            return frozenset([node.name]) if self.is_var(node.name) else frozenset()
        if isinstance(node, Num):
            return frozenset()
        if isinstance(node, Access):
            return frozenset(v for i in node.indices for n in walk(i) if isinstance(n, Name) and self.is_var(n.name)
                             for v in [n.name])
        if isinstance(node, Reduce):
            return self.node_vars(node.body) - set(node.vars)
        if isinstance(node, Call):
            return frozenset().union(*(self.node_vars(a) for a in node.args))
        if isinstance(node, BinOp):
            return self.node_vars(node.left) | self.node_vars(node.right)
        if isinstance(node, Unary):
            return self.node_vars(node.operand)
        return frozenset()

    def read_kind(self, access: Access, einsum: Einsum) -> str:
        rank = self.iterative.get(access.tensor)
        if rank is None:
            return "same"
        pos = self.cascade.tensors[access.tensor].ranks.index(rank)
        index = access.indices[pos]
        var = rank.lower()
        if isinstance(index, Name) and index.name == var and var in einsum.output_vars:
            return "carried"
        if isinstance(index, Name) and index.name == rank:
            return "final"
        return "same"


def _has_tensor(node: Expr) -> bool:
    return any(isinstance(n, Access) for n in walk(node))


def op_polynomials(cascade: Cascade, einsum: Einsum) -> dict[str, Polynomial]:
    """Op counts of one Einsum as polynomials in rank sizes, per op class."""
    walker = _Walker(cascade)
    result: dict[str, Polynomial] = defaultdict(dict)

    def mono(vars_: frozenset[str]) -> Monomial:
        return tuple(sorted(rank_of(v) for v in vars_))

    def emit(costs: dict[str, int], vars_: frozenset[str]) -> None:
        for op_class, count in costs.items():
            _add(result[op_class], mono(vars_), count)

    def visit(node: Expr) -> None:
        if isinstance(node, (Num, Name, Access)):
            return
        if not walker.node_vars(node) and not _has_tensor(node) and not isinstance(node, Reduce):
            return  # constant expression, folded
        if isinstance(node, Reduce):
            body_vars = walker.node_vars(node.body) | set(node.vars)
            if node.op == "sum" and isinstance(node.body, BinOp) and node.body.op == "*":
                emit({"mac": 1}, body_vars)
                visit(node.body.left)
                visit(node.body.right)
                return
            emit(operators.reduction(node.op).cost, body_vars)
            visit(node.body)
            return
        if isinstance(node, BinOp):
            emit(operators.BINARY_SYMBOLS[node.op].cost, walker.node_vars(node))
            visit(node.left)
            visit(node.right)
            return
        if isinstance(node, Unary):
            emit(operators.UNARY_SYMBOLS[node.op].cost, walker.node_vars(node))
            visit(node.operand)
            return
        if isinstance(node, Call):
            costs = operators.SPECIAL_COST.get(node.func) or operators.map_operator(node.func).cost
            emit(costs, walker.node_vars(node))
            for arg in node.args:
                visit(arg)

    expr = einsum.expr
    if einsum.implicit_vars:
        expr = Reduce("sum", einsum.implicit_vars, expr)
    if isinstance(expr, (Access, Num, Name)):
        pass  # a copy or a broadcast: data movement, no arithmetic
    visit(expr)
    return {k: v for k, v in result.items() if v}


def dependency_graph(cascade: Cascade) -> nx.DiGraph:
    """Tensor-level DAG; edges carry ``kind`` = same | carried | final."""
    walker = _Walker(cascade)
    graph = nx.DiGraph()
    for name, decl in cascade.tensors.items():
        graph.add_node(name, role=decl.role)
    for einsum in cascade.einsums:
        for access in (n for n in walk(einsum.expr) if isinstance(n, Access)):
            if access.tensor == einsum.name:
                continue
            kind = walker.read_kind(access, einsum)
            previous = graph.get_edge_data(access.tensor, einsum.name)
            if previous and previous["kind"] != "carried":
                continue
            graph.add_edge(access.tensor, einsum.name, kind=kind)
    return graph


def _pass_levels(cascade: Cascade, root: str) -> tuple[dict[str, int], dict[str, bool]]:
    walker = _Walker(cascade)
    outers = {p.outer for p in cascade.partitions}

    def related(var: str) -> bool:
        return root in cascade.root_ranks(rank_of(var))

    def element_level(var: str) -> bool:
        return related(var) and rank_of(var) not in outers

    level: dict[str, int] = {name: 0 for name in cascade.inputs}
    complete: dict[str, bool] = {name: False for name in cascade.inputs}
    graph = nx.DiGraph()
    for einsum in cascade.einsums:
        graph.add_node(einsum.name)
        for access in (n for n in walk(einsum.expr) if isinstance(n, Access)):
            if access.tensor != einsum.name and cascade.producer(access.tensor) is not None and \
                    walker.read_kind(access, einsum) != "carried":
                graph.add_edge(access.tensor, einsum.name)
    position = {e.name: k for k, e in enumerate(cascade.einsums)}
    for name in nx.lexicographical_topological_sort(graph, key=lambda n: position[n]):
        einsum = cascade.einsum(name)
        traverses = any(element_level(v) for v in einsum.iteration_vars)
        lvl = 1 if traverses else 0
        reads_complete = False
        for access in (n for n in walk(einsum.expr) if isinstance(n, Access)):
            if access.tensor == einsum.name:
                continue
            kind = walker.read_kind(access, einsum)
            if kind == "carried":
                continue
            src_level = level.get(access.tensor, 0)
            is_complete = complete.get(access.tensor, False)
            if kind == "final" and related(rank_of(cascade.tensors[access.tensor].iterative_rank.lower())):
                is_complete = True
            reads_complete |= is_complete
            lvl = max(lvl, src_level + (1 if is_complete and traverses else 0))
        level[name] = lvl
        output_related = any(related(v) for v in einsum.output_vars)
        reduces = any(related(v) for v in einsum.reduced_vars)
        complete[name] = not output_related and (reduces or reads_complete)
    return level, complete


def analyse(cascade: Cascade, sizes: dict[str, int] | None = None) -> Analysis:
    """Analyse ``cascade``; ``sizes`` (rank sizes) evaluate the formulas (spec defaults if omitted)."""
    try:
        rank_sizes, params = resolve(cascade, sizes or {})
    except SpecError:
        if sizes:
            raise
        rank_sizes, params = None, None

    roots = sorted({r for name in cascade.inputs for rank in cascade.tensors[name].ranks
                    for r in cascade.root_ranks(rank)})
    levels = {root: _pass_levels(cascade, root) for root in roots}
    passes = {root: max([lvl for lvl in levels[root][0].values()] + [0]) for root in roots}

    graph = dependency_graph(cascade)
    reports = []
    totals: dict[str, Polynomial] = defaultdict(dict)
    for einsum in cascade.einsums:
        polys = op_polynomials(cascade, einsum)
        for op_class, poly in polys.items():
            for mono, coeff in poly.items():
                _add(totals[op_class], mono, coeff)
        counts = None
        if rank_sizes is not None:
            counts = {k: evaluate_polynomial(p, rank_sizes) for k, p in polys.items()}
        reports.append(EinsumReport(
            name=einsum.name, text=einsum.canonical_text(), line=einsum.line,
            iteration_ranks=einsum.iteration_ranks, reduced_ranks=einsum.reduced_ranks,
            iterative_rank=einsum.iterative_rank, inputs=einsum.inputs,
            op_formulas={k: format_polynomial(p) for k, p in polys.items()}, op_counts=counts,
            levels={root: levels[root][0][einsum.name] for root in roots}))

    footprints = []
    for einsum in cascade.einsums:
        if einsum.name in cascade.outputs:
            continue
        decl = cascade.tensors[einsum.name]
        grows = []
        for root in roots:
            if not any(root in cascade.root_ranks(r) for r in decl.ranks):
                continue
            producer_level = levels[root][0][einsum.name]
            for _, consumer, data in graph.out_edges(einsum.name, data=True):
                if data["kind"] == "carried":
                    continue
                if levels[root][0].get(consumer, 0) > producer_level:
                    grows.append(root)
                    break
        ranks = decl.ranks
        full: Polynomial = {tuple(sorted(ranks)): 1}
        seq = cascade.sequence_rank
        outers = {p.outer for p in cascade.partitions}

        def streamed(rank: str) -> bool:  # walked one tile / element at a time along the sequence rank
            return seq not in grows and seq in cascade.root_ranks(rank) and (rank == seq or rank in outers)

        live_ranks = tuple(r for r in ranks if r != decl.iterative_rank and not streamed(r))
        elements = None
        if rank_sizes is not None:
            elements = 1
            for r in ranks:
                elements *= rank_sizes[r] + (1 if r == decl.iterative_rank else 0)
        footprints.append(Footprint(einsum.name, ranks, format_polynomial(full), elements, tuple(grows),
                                    format_polynomial({tuple(sorted(live_ranks)): 1})))

    op_totals = None
    if rank_sizes is not None:
        op_totals = {k: evaluate_polynomial(p, rank_sizes) for k, p in sorted(totals.items())}
    return Analysis(
        cascade=cascade.name, rank_sizes=rank_sizes, params=params, passes=passes,
        sequence_rank=cascade.sequence_rank if cascade.sequence_rank in passes else (roots[0] if roots else ""),
        einsums=reports, footprints=footprints,
        op_totals_formula={k: format_polynomial(p) for k, p in sorted(totals.items())},
        op_totals=op_totals, graph=graph)
