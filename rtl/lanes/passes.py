"""Multi-pass lane programs: several passes over the key tiles in one run of the lane core.

Some cascades read, inside the loop over the keys, a value that is complete only after that loop:
3-pass softmax's ``SN[m, p] = exp(QK[m, p] - GM[p])`` reads the global max ``GM[p] = max[m] QK``,
split-KV decode's merge weight ``W[m1, p] = exp(LSE[m1, p] - GM[p])`` reads the max over all splits.
Such a cascade runs as **passes**: the core streams the key tiles once per pass (the K/V memories are
resident), and the lanes keep the per-query values an earlier pass completed (``GM``, ``SD``) in their
registers, where the later passes read them.  Everything per key or per tile that a pass needs is
recomputed in that pass from the 2D array's products (the scores are recomputed too: the lanes have
no per-key memory), so each pass is an ordinary one-pass program over the tiles.

The passes come from the cascade's dependences, never from names.  An Einsum is *in the loop* when it
iterates a key rank (the key tile, the tile rank): per key or per tile (``SN``, ``LSE``), or a
reduction over the keys (``GM``, ``SD``, a value product ``AV``); otherwise it runs *after the loop*
(``AV = SNV / SD``).  Its pass is the smallest one in which everything it reads is available:

* a per-key or per-tile tensor is available in its own pass and in every later one (recomputed);
* a reduction over the keys, a value after the loop, and the final iterate of a state over the tiles
  (``RM[M1, p]``) are complete at the end of their pass: available after the loop of that pass, and
  inside the loop of the next passes only.

Pass k computes the reductions and after-loop values whose pass is k (and, in the last pass, the
cascade's outputs), with the per-key and per-tile Einsums they need; what it reads from earlier passes
is *resident* (a register the earlier pass wrote in its ``final`` section, the pass's end).  Each pass
is compiled by the one-pass compiler (``compile.py``) with those residents, into sections named
``score.k`` (:func:`~.isa.section_name`); the core runs, per query block, ``init`` .. ``final`` of
pass 0 (its tiles in between), then of pass 1, ..., then ``output`` (``rtl/lane_core.py``; cycles:
``sim/rtl_core.lane_core_cycles``).

Limits (refused naming the Einsum): a pass's score products and value products must be consecutive
slots of the cascade's products (the core's table holds one range per pass); every pass reads at
least one score product; a tensor handed from one pass to a later one is a per-query scalar (not a
per-column vector, not a value product's sum).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from einloom.einsum.cascade import Cascade, rank_of, var_of
from einloom.einsum.expr import Access, Name, walk
from einloom.rtl.lanes.isa import PASS_SECTIONS, Program, Section, section_name, units_of


def _reads(cascade: Cascade, e: Any) -> list[tuple[str, str]]:
    """(tensor, version) of every tensor ``e`` reads other than its own previous iterate; version
    ``final`` for a state's final iterate (``RM[M1, p]``), else ``plain``."""
    out = []
    for a in walk(e.expr):
        if not isinstance(a, Access) or a.tensor == e.name:
            continue
        decl = cascade.tensors.get(a.tensor)
        it = getattr(decl, "iterative_rank", None)
        version = "plain"
        if it:
            idx = a.indices[decl.ranks.index(it)]
            if isinstance(idx, Name) and idx.name == it and idx.name != var_of(it):
                version = "final"
        out.append((a.tensor, version))
    return out


def pass_numbers(cascade: Cascade, st: Any, computed: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Pass (0, 1, ...) and kind (``key``: per key or per tile; ``reduce``: a reduction over the keys;
    ``post``: after the loop) of every Einsum in ``computed`` (the lanes' and the 2D array's), by the
    rule of the module docstring."""
    keys = {r for r in (st.key, st.outer) if r}
    kind, number = {}, {}
    by_name = {e.name: e for e in cascade.einsums if e.name in computed}
    for name, e in by_name.items():
        if any(rank_of(v) in keys for v in e.output_vars):
            kind[name] = "key"
        elif any(rank_of(v) in keys for v in e.iteration_vars):
            kind[name] = "reduce"
        else:
            kind[name] = "post"
        number[name] = 0
    changed = True
    while changed:                       # a fixpoint: the cascade's order need not be topological
        changed = False
        for name, e in by_name.items():
            in_loop = kind[name] != "post"
            need = 0
            for t, version in _reads(cascade, e):
                if t not in number:
                    continue            # an input or a view of the inputs: every pass has it
                p = number[t]
                complete_after = kind[t] != "key" or version == "final"
                need = max(need, p + 1 if complete_after and in_loop else p)
            if need != number[name]:
                if need > 64:
                    raise ValueError(f"passes of {cascade.name} do not converge at {name}")
                number[name], changed = need, True
    return number, kind


def compile_passes(cascade: Cascade, schedule: Any, st: Any) -> Program | None:
    """The multi-pass :class:`Program` of ``cascade`` (None when one pass over the keys suffices)."""
    from einloom.rtl.lanes.compile import PassContext, _Compiler, _refuse
    on_2d = [n for n, e in schedule.einsums.items() if e.array == "2d"]
    computed = [e.name for e in cascade.einsums if e.name not in st.input_side or e.name in on_2d]
    number, kind = pass_numbers(cascade, st, computed)
    last = max(number.values(), default=0)
    if last == 0:
        return None
    by_name = {e.name: e for e in cascade.einsums}
    roots: list[set[str]] = [set() for _ in range(last + 1)]
    for name in computed:
        if kind[name] != "key":
            roots[number[name]].add(name)
    for o in cascade.outputs:
        if o in number:
            roots[number[o]].add(o)
    for name in computed:                # a state's final iterate read by a later pass: its pass computes it
        for t, version in _reads(cascade, by_name[name]):
            if version == "final" and t in number and number[t] < number[name]:
                roots[number[t]].add(t)
    members: list[set[str]] = []
    resident: list[dict[str, int]] = []          # per pass: tensor -> the pass that computed it
    for p in range(last + 1):
        todo, have, res = list(roots[p]), set(), {}
        while todo:
            x = todo.pop()
            if x in have:
                continue
            have.add(x)
            for t, version in _reads(cascade, by_name[x]):
                if t not in number:
                    continue
                if kind[t] == "key" and version != "final" or number[t] == p:
                    todo.append(t)                  # recomputed (or computed) in this pass
                else:
                    res[t] = number[t]
        members.append(have)
        resident.append(res)
    slot = {n: i for i, n in enumerate(st.scores)}
    cslot = {n: i for i, n in enumerate(st.value_products)}
    ranges_s, ranges_c = [], []
    for p, have in enumerate(members):
        for t in resident[p]:
            if t in st.value_products:
                raise _refuse(cascade, by_name[t], f"pass {p + 1} over the keys reads its sums from pass "
                              f"{number[t] + 1} (the lanes hand a per-query scalar from one pass to the next)",
                              f"divide or combine {t} in the pass that computes it")
        used = [slot[n] for n in st.scores if n in have or n in st.direct and _reads_input(cascade, by_name, have, n)]
        chains = [cslot[n] for n in st.value_products if n in have]
        if not used:
            raise _refuse(cascade, None, f"pass {p + 1} over the keys reads no score product (the lanes of a "
                          "pass wait for the scores of each tile)", "read the scores in every pass")
        for what, got in (("score products", used), ("value products", chains)):
            if got and got != list(range(min(got), max(got) + 1)):
                names = st.scores if what == "score products" else st.value_products
                raise _refuse(cascade, None, f"pass {p + 1} over the keys runs the {what} "
                              f"{', '.join(names[i] for i in got)}, not consecutive ones (the core runs one "
                              "range per pass)", f"order the {what} by the pass that first reads them")
        ranges_s.append((min(used), max(used) + 1))
        ranges_c.append((min(chains), max(chains) + 1) if chains else (0, 0))
    for o in cascade.outputs:            # an output an earlier pass completes: emitted by the last
        if o in number and number[o] < last:
            resident[last][o] = number[o]
    regs, buffers, temp = [], {}, [0]
    programs, handed = [], {}
    for p, have in enumerate(members):
        sub = replace(st, scores=tuple(n for n in st.scores if slot[n] in range(*ranges_s[p])),
                      value_products=tuple(n for n in st.value_products if cslot[n] in range(*ranges_c[p])))
        ctx = PassContext(frozenset(have), {t: handed[t] for t in resident[p]},
                          tuple(cascade.outputs) if p == last else (), slot, cslot, regs, buffers,
                          "" if p == 0 else f".{p}", temp)
        comp = _Compiler(cascade, schedule, sub, ctx)
        prog = comp.compile()
        if p < last and prog.section("output").instrs:
            bad = prog.section("output").instrs[0].source
            raise _refuse(cascade, by_name.get(bad), "a per-column value computed between passes over the keys "
                          "(the lanes hand per-query scalars from one pass to the next)",
                          "compute it in the last pass")
        for t in sorted({t for res in resident[p + 1:] for t, q in res.items() if q == p}):
            r = comp.tensor_reg.get((t, "final")) or comp.tensor_reg.get((t, "plain"))
            if r is None or r.kind != "scalar":
                raise _refuse(cascade, by_name[t], f"a later pass over the keys reads it, which pass {p + 1} "
                              f"leaves {'in no register' if r is None else 'in a ' + r.kind + ' register'} (the "
                              "lanes hand per-query scalars from one pass to the next)", "")
            handed[t] = r
        programs.append(prog)
    carried = {}
    for p, prog in enumerate(programs):
        for c in prog.chains:
            if c.carry is not None and carried.setdefault(c.weight, p) != p:
                raise _refuse(cascade, by_name[c.einsum], "a value product over the whole key rank in several "
                              "passes (its running column sums start once per query block)", "")
    sections = {}
    for p, prog in enumerate(programs):
        for base in PASS_SECTIONS:
            name = section_name(base, p)
            sections[name] = Section(name, prog.section(base).instrs)
    sections["output"] = Section("output", programs[-1].section("output").instrs)
    used_regs = {r for sec in sections.values() for i in sec.instrs
                 for r in [i.dst, *(o.reg for o in i.srcs if o.kind == "reg")] if r is not None}
    chains = tuple(sorted({c.weight: c for prog in programs for c in prog.chains}.values(), key=lambda c: c.weight))
    last_prog = programs[-1]
    return Program(cascade.name, sections, tuple(r for r in regs if r in used_regs), st.scores, chains,
                   last_prog.outputs, st.tile, st.values, st.key, st.lane, units_of(sections.values()),
                   dict(st.consts), st, passes=last + 1, pass_scores=tuple(ranges_s), pass_chains=tuple(ranges_c))


def _reads_input(cascade: Cascade, by_name: dict, have: set[str], tensor: str) -> bool:
    """Whether an Einsum of ``have`` reads the input ``tensor`` (a direct slot: read by the lanes per key)."""
    return any(t == tensor for x in have if x in by_name for t, _ in _reads(cascade, by_name[x]))
