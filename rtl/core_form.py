"""Which cascades and mappings the generated attention core implements, found from their structure.

The core (:mod:`einloom.rtl.attention`) has fixed phases: the FuseMax 1-pass softmax form (running
max, deferred division; Nayak et al., MICRO 2024, Cascade 5), with or without the bottom-right causal
mask.  :func:`match_core` matches a cascade against that form Einsum by Einsum, up to the names of
tensors, ranks and params and the order of commutative operands (a small unifier over the parsed
expressions, no name is looked up), and returns the roles it found; a cascade of another structure
is refused naming the Einsum that has no counterpart in the core and the phase the core would need.
:func:`core_mapping` is the mapping the core implements (its dataflow, written with the roles'
names), and :func:`check_schedule` refuses a lowered schedule that the core cannot run (a product
on the 1D lanes, the key tile not on the rows, more queries than columns...), naming the Einsum,
rank or field and the reason.
"""
from __future__ import annotations

import dataclasses

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

import numpy as np

from einloom.base.errors import Location, MappingError, SpecError
from einloom.einsum.cascade import rank_of
from einloom.einsum.expr import Access, BinOp, Call, Name, Num, Reduce, Unary, walk

# The core's phases; {S} is the score scale factor ("scale * " or nothing), {MASK}/{AVOUT} the causal parts.
_FORM = """\
name: core
params: {{M0: 4, scale: 1 / sqrt(E), offset: M - P}}
tensors: {{Q: [E, P], K: [E, M], V: [F, M], AV: [F, P]}}
inputs: [Q, K, V]
outputs: [AV]
init: {{"RM[0, p]": -inf, "RD[0, p]": 0, "RNV[0, f, p]": 0}}
einsums:
  - BK[e, m1, m0] = K[e, m1*M0 + m0]
  - BV[f, m1, m0] = V[f, m1*M0 + m0]
  - {SCORE}[m1, m0, p] = {S}Q[e, p] * BK[e, m1, m0]
{MASK}  - LM[m1, p] = max[m0] QK[m1, m0, p]
  - RM[m1+1, p] = max(RM[m1, p], LM[m1, p])
  - SLN[m1, m0, p] = exp(QK[m1, m0, p] - RM[m1+1, p])
  - PRM[m1, p] = exp(RM[m1, p] - RM[m1+1, p])
  - SPD[m1, p] = PRM[m1, p] * RD[m1, p]
  - SLD[m1, p] = sum[m0] SLN[m1, m0, p]
  - RD[m1+1, p] = SPD[m1, p] + SLD[m1, p]
  - SPNV[m1, f, p] = PRM[m1, p] * RNV[m1, f, p]
  - SLNV[m1, f, p] = SLN[m1, m0, p] * BV[f, m1, m0]
  - RNV[m1+1, f, p] = SPNV[m1, f, p] + SLNV[m1, f, p]
  - AV[f, p] = {AV}
"""
_CAUSAL = "  - QK[m1, m0, p] = where(m1*M0 + m0 <= p + offset, BQK[m1, m0, p])\n"
_AV_PLAIN = "RNV[M1, f, p] / RD[M1, p]"
_AV_GUARDED = "where(RD[M1, p] > 0, RNV[M1, f, p] / RD[M1, p], 0)"

#: What each phase of the core is (for error messages), by the tensor names of the core's own form
#: above (_FORM).  Safe: these name the template the RTL implements; a user's cascade is matched to it
#: structurally (:func:`match_core` unifies expressions, never reads the user's names), so a renamed
#: causal-1pass is the same core (tested).
PHASES = {"BK": "the key tile view", "BV": "the value tile view", "BQK": "the score product on the 2D array",
          "QK": "the scores (on the 2D array; with the causal mask in the 1D lanes)", "LM": "the tile max",
          "RM": "the running max", "SLN": "the exponentials", "PRM": "the running-max correction",
          "SPD": "the rescaled denominator", "SLD": "the tile denominator", "RD": "the running denominator",
          "SPNV": "the rescaled numerator", "SLNV": "the value product on the 2D array",
          "RNV": "the running numerator", "AV": "the deferred division"}
#: The form's Einsums the core runs on the 2D array (the rest run in the 1D lanes).
ON_2D = ("SLNV",)
_COMMUTATIVE = ("+", "*")


@dataclass(frozen=True)
class CoreRoles:
    """A cascade matched to the core: ``einsums`` maps each phase (the form's name) to the cascade's
    Einsum; ``ranks`` maps the form's ranks (``E F M M1 M0 P``) to the cascade's; ``tile_param`` is
    the cascade's key-tile param; ``causal`` whether the cascade has the mask; ``window`` and
    ``sinks`` the band its mask predicate describes (0: none; :func:`classify_mask`)."""

    cascade: str
    einsums: dict[str, str]
    ranks: dict[str, str]
    tile_param: str
    causal: bool
    scale: bool
    window: int = 0
    sinks: int = 0
    heads: tuple[str, ...] = ()          #: ranks of K/V heads: one core run per coordinate
    query_groups: tuple[str, ...] = ()   #: ranks of queries that share one K/V head: more query columns

    def einsum(self, phase: str) -> str:
        return self.einsums[phase]

    @property
    def on_2d(self) -> tuple[str, ...]:
        """The cascade's Einsums the core computes on its 2D array (the products)."""
        return (self.einsums["BQK" if self.causal else "QK"], self.einsums["SLNV"])


class _AnyPredicate:
    """Stands for the mask predicate of a band form: unifies with any coordinate predicate (one that
    reads no tensor); :func:`classify_mask` then decides whether the core's mask unit computes it."""


_ANY = _AnyPredicate()


@lru_cache(maxsize=None)
def _form(causal: bool, scale: bool, guarded: bool, band: int = 0) -> Any:
    """The core's form; ``band`` 2 or 3: the scores' ``where`` with any coordinate predicate (2 or 3
    arguments, the third -inf)."""

    from einloom.einsum.loader import parse_cascade_text
    mask = _CAUSAL if causal else ""
    if band == 3:
        mask = mask.replace("BQK[m1, m0, p])", "BQK[m1, m0, p], -inf)")
    text = _FORM.format(SCORE="BQK" if causal else "QK", S="scale * " if scale else "",
                        MASK=mask, AV=_AV_GUARDED if guarded else _AV_PLAIN)
    if not scale:
        text = text.replace("scale: 1 / sqrt(E), ", "")
    if not causal or band:
        text = text.replace(", offset: M - P", "")
    if band:
        text = text.replace("where(m1*M0 + m0 <= p + offset,", "where(m1*M0 + m0 <= p,")
    form = parse_cascade_text(text, "<einloom.rtl core form>")
    if band:
        # "QK" is this template's own tensor (_FORM), not a user's name: a user's cascade is matched to
        # the template structurally and its names come back through the match
        einsums = [dataclasses.replace(e, expr=dataclasses.replace(e.expr, args=(_ANY,) + tuple(e.expr.args[1:])))
                   if isinstance(e.expr, Call) and e.expr.func == "where" and e.output.tensor == "QK" else e
                   for e in form.einsums]
        form = dataclasses.replace(form, einsums=tuple(einsums) if isinstance(form.einsums, tuple) else einsums)
    return form


# ------------------------------------------------------------------------------------- unification
State = tuple[dict, dict]     # (form name -> cascade name for tensors/params/extents, form var -> var)


def _bind(table: dict, a: str, b: str) -> dict | None:
    if a in table:
        return table if table[a] == b else None
    if b in table.values():
        return None
    return {**table, a: b}


def _terms(e: Any, op: str) -> list[Any]:
    if isinstance(e, BinOp) and e.op == op:
        return _terms(e.left, op) + _terms(e.right, op)
    return [e]


def _unify(a: Any, b: Any, st: State) -> Iterator[State]:
    names, vars_ = st
    if a is _ANY:
        from einloom.einsum.expr import walk
        if not any(isinstance(n, Access) for n in walk(b)):
            yield st
    elif isinstance(a, Num):
        if isinstance(b, Num) and a.value == b.value:
            yield st
    elif isinstance(a, Name):
        if isinstance(b, Name):
            lower = a.name[:1].islower()
            if lower == b.name[:1].islower():
                table = _bind(vars_ if lower else names, a.name, b.name)
                if table is not None:
                    yield (names, table) if lower else (table, vars_)
    elif isinstance(a, Access):
        if isinstance(b, Access) and len(a.indices) == len(b.indices):
            table = _bind(names, a.tensor, b.tensor)
            if table is not None:
                yield from _unify_seq(a.indices, b.indices, (table, vars_))
    elif isinstance(a, Call):
        if isinstance(b, Call) and a.func == b.func and len(a.args) == len(b.args):
            orders = itertools.permutations(b.args) if a.func in ("max", "min") else [b.args]
            for args in orders:
                yield from _unify_seq(a.args, tuple(args), st)
    elif isinstance(a, BinOp):
        if a.op in _COMMUTATIVE:
            ta, tb = _terms(a, a.op), _terms(b, a.op)
            if len(ta) == len(tb) and len(ta) > 1:
                for perm in itertools.permutations(tb):
                    yield from _unify_seq(tuple(ta), tuple(perm), st)
        elif isinstance(b, BinOp) and a.op == b.op:
            yield from _unify_seq((a.left, a.right), (b.left, b.right), st)
    elif isinstance(a, Unary):
        if isinstance(b, Unary) and a.op == b.op:
            yield from _unify(a.operand, b.operand, st)
    elif isinstance(a, Reduce):
        if isinstance(b, Reduce) and a.op == b.op and len(a.vars) == len(b.vars):
            for var_a, var_b in zip(a.vars, b.vars):
                table = _bind(vars_, var_a, var_b)
                if table is None:
                    return
                vars_ = table
            yield from _unify(a.body, b.body, (names, vars_))


def _unify_seq(xs: tuple, ys: tuple, st: State) -> Iterator[State]:
    if not xs:
        yield st
        return
    for s in _unify(xs[0], ys[0], st):
        yield from _unify_seq(xs[1:], ys[1:], s)


def _match(form: Any, cascade: Any) -> tuple[State | None, int, dict[str, str]]:
    """(complete state or None, phases matched at best, the best partial einsum map)."""
    form_e, user = list(form.einsums), list(cascade.einsums)
    inputs = set(cascade.inputs)
    best: list[Any] = [0, {}]

    def ok_inputs(st: State) -> bool:
        return all((st[0][t] in inputs) for t in form.inputs if t in st[0])

    def search(i: int, st: State, used: dict[str, str]) -> State | None:
        if i > best[0]:
            best[0], best[1] = i, dict(used)
        if i == len(form_e):
            return st
        fe = form_e[i]
        for ue in user:
            if ue.name in used.values():
                continue
            for s in _unify_seq((fe.output, fe.expr), (ue.output, ue.expr), st):
                if not ok_inputs(s):
                    continue
                done = search(i + 1, s, {**used, fe.name: ue.name})
                if done is not None:
                    return done
        return None

    final = search(0, ({}, {}), {})
    return final, best[0], best[1]


def _params_and_inits(form: Any, cascade: Any, st: State) -> str | None:
    """None when the params the form defines by formula (scale, offset) and the initial iterates
    agree; else the reason."""
    names = st[0]
    for p, expr in form.params.items():
        mine = names.get(p, st[1].get(p))      # a lower-case param unifies like a rank variable
        if isinstance(expr, Num) or mine is None:
            continue
        theirs = cascade.params.get(mine)
        if theirs is None or next(_unify(expr, theirs, st), None) is None:
            want = {"scale": "1 / sqrt(E)", "offset": "M - P (the bottom-right causal mask)"}.get(p, p)
            return f"param {mine} must be {want}"
    inits = {i.tensor: i for i in cascade.init}
    for init in form.init:
        mine = inits.get(names.get(init.tensor, ""))
        if mine is None or next(_unify_seq((init.target, init.value), (mine.target, mine.value), st), None) is None:
            return f"the initial iterate of {names.get(init.tensor, init.tensor)} must be {init.value.value:g}"
    return None


def match_core(cascade: Any, *, scale: bool) -> CoreRoles:
    """Match ``cascade`` to the core's phases (see the module docstring); raise :class:`SpecError`
    naming the first Einsum the core has no phase for.

    A cascade with extra ranks on its output (heads, GQA/MQA groups) matches when removing them from
    every tensor leaves the core's form: a removed rank that indexes K and V is a head (one core run
    per head), one that indexes only Q and the output is a group of queries sharing the K/V head,
    run as more query columns (P x G queries per run)."""
    try:
        return _match_core(cascade, scale=scale)
    except SpecError as exc:
        error = exc
    for folded, dropped in _fold_heads(cascade):
        try:
            roles = _match_core(folded, scale=scale)
        except SpecError:
            continue
        # roles.einsums maps the template's names to the user's Einsums found by the structural match
        bk = next(e for e in cascade.einsums if e.name == roles.einsums["BK"])
        key = next(n.tensor for n in walk(bk.expr) if isinstance(n, Access))
        kv = set(cascade.tensors[key].ranks)
        heads = tuple(r for r in dropped if r in kv)
        groups = tuple(r for r in dropped if r not in kv)
        if groups and roles.causal:
            score = next(e for e in cascade.einsums if e.name == roles.einsums["QK"])
            raise SpecError(f"the RTL core cannot build cascade {cascade.name}: it folds the query groups "
                            f"{', '.join(groups)} into one run's query columns, which would move the causal "
                            f"diagonal of Einsum {score.name} for every group but the last",
                            location=Location(cascade.file, getattr(score, "line", None), score.name),
                            hint="give the cascade one query head per K/V head (G = 1), or drop the mask")
        return dataclasses.replace(roles, cascade=cascade.name, heads=heads, query_groups=groups)
    raise error


def _fold_heads(cascade: Any) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """The cascade without each candidate set of extra output ranks (see :func:`match_core`)."""
    import re
    from pathlib import Path

    import yaml

    from einloom.einsum.loader import parse_cascade_text
    if not cascade.file or not Path(cascade.file).exists() or len(cascade.outputs) != 1:
        return
    data = yaml.safe_load(Path(cascade.file).read_text())
    out = cascade.tensors[cascade.outputs[0]].ranks
    extra = len(out) - 2
    if extra < 1:
        return
    for drop in itertools.combinations(out, extra):
        lower = {r.lower() for r in drop} | set(drop)

        def strip(text: str) -> str:
            def keep(mt):
                items = [x.strip() for x in mt.group(1).split(",")]
                return "[" + ", ".join(x for x in items if x not in lower) + "]"
            return re.sub(r"\[([^\[\]]*)\]", keep, text)
        d = dict(data)
        d["ranks"] = {k: v for k, v in (data.get("ranks") or {}).items() if k not in drop}
        d["tensors"] = {k: [r for r in v if r not in drop] for k, v in data["tensors"].items()}
        d["init"] = {strip(k): v for k, v in (data.get("init") or {}).items()}
        d["einsums"] = [strip(e) for e in data["einsums"]]
        d.pop("reference", None)
        try:
            folded = parse_cascade_text(yaml.safe_dump(d, sort_keys=False), cascade.file)
        except SpecError:
            continue
        yield folded, drop


def _match_core(cascade: Any, *, scale: bool) -> CoreRoles:
    if len(cascade.outputs) != 1:          # the core streams one output; a second one (LSE) would be dropped
        raise SpecError(f"cascade {cascade.name}: the RTL core emits one output, the cascade has "
                        f"{len(cascade.outputs)} ({', '.join(cascade.outputs)})",
                        location=Location(cascade.file, None, "outputs"))
    causal = any(isinstance(e.expr, Call) and e.expr.func == "where" and not (
        e.name in cascade.outputs) for e in cascade.einsums)
    tried = []
    forms = [(g, 0) for g in ((True,) if causal else (False, True))] + ([(True, 2), (True, 3)] if causal else [])
    for guarded, band in forms:
        form = _form(causal, scale, guarded, band)
        st, depth, partial = _match(form, cascade)
        tried.append((depth, partial, form))
        if st is not None:
            names, vars_ = st
            ranks = {v.upper(): rank_of(vars_[v]) for v in ("e", "f", "m1", "m0", "p") if v in vars_}
            ranks["M"] = next(p.root for p in cascade.partitions if p.inner == ranks["M0"])
            for form_rank, rank in ranks.items():     # a param's formula names the extents (M - P)
                seeded = _bind(names, form_rank, rank) if form_rank != "M0" else names
                if seeded is None:
                    raise SpecError(f"cascade {cascade.name}: rank {rank} plays two roles of the RTL core's form",
                                    location=Location(cascade.file, None, "einsums"))
                names = seeded
            problem = _params_and_inits(form, cascade, (names, vars_))
            if problem is not None:
                raise SpecError(f"cascade {cascade.name} has the structure of the RTL core's 1-pass form, but "
                                f"{problem}", location=Location(cascade.file, None, "params"),
                                hint="compare with the library's fusemax-1pass / causal-1pass")
            window = sinks = 0
            if band:
                qk = next(e for e in cascade.einsums if e.name == names["QK"])   # "QK": the template role (_FORM) matched to the user's score Einsum
                window, sinks = classify_mask(cascade, qk, ranks, vars_, names["M0"])
            return CoreRoles(cascade.name, {f.name: names[f.name] for f in form.einsums}, ranks,
                             names["M0"], causal, scale, window, sinks)
    depth, partial, form = max(tried, key=lambda t: t[0])
    missing = form.einsums[depth]
    extra = [e for e in cascade.einsums if e.name not in partial.values()]
    first = extra[0] if extra else None
    what = (f"its Einsum {first.name} (`{first.text.strip()}`) has no counterpart in the core"
            if first is not None else "it has fewer Einsums than the core")
    scaled = " (with the 1/sqrt(E) scale: rtl.scale is true)" if scale else " (without a scale: rtl.scale is false)"
    raise SpecError(
        f"the RTL core cannot build cascade {cascade.name}: {what}; the core's phase '{PHASES[missing.name]}' "
        f"(`{missing.canonical_text()}`) matches no Einsum of it",
        location=Location(cascade.file, getattr(first, "line", None), first.name if first else None),
        hint="the core implements the FuseMax 1-pass softmax form" + scaled + ", with or without a "
             "bottom-right causal mask, a sliding window and attention sinks: the library's fusemax-1pass, "
             "causal-1pass, sliding-window and sinks-window")


def _evaluate(expr: Any, env: dict[str, Any]) -> Any:
    """A coordinate predicate or param formula on NumPy arrays (``env``: rank variables, params, extents)."""
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Name):
        if expr.name not in env:
            raise KeyError(expr.name)
        return env[expr.name]
    if isinstance(expr, Unary):
        x = _evaluate(expr.operand, env)
        return np.logical_not(x) if expr.op == "not" else -x
    if isinstance(expr, Call) and expr.func in ("sqrt", "min", "max") and expr.args:
        args = [_evaluate(a, env) for a in expr.args]
        return {"sqrt": lambda: np.sqrt(args[0]), "min": lambda: np.minimum(*args),
                "max": lambda: np.maximum(*args)}[expr.func]()
    if isinstance(expr, BinOp):
        a, b = _evaluate(expr.left, env), _evaluate(expr.right, env)
        ops = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "<": np.less,
               "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal,
               "and": np.logical_and, "or": np.logical_or}
        if expr.op in ops:
            return ops[expr.op](a, b)
    raise KeyError(type(expr).__name__)


def classify_mask(cascade: Any, qk: Any, ranks: dict[str, str], vars_: dict[str, str],
                  tile_param: str) -> tuple[int, int]:
    """(window, sinks) of the band the scores' ``where`` predicate describes, or :class:`SpecError`.

    The core's mask unit computes the bottom-right causal band (``einloom.sim.rtl_core.core_mask``):
    key m is visible to query p iff ``m <= p + M - P`` and (``p + M - P - m < window`` or ``m < sinks``).
    The predicate is evaluated over every (key, query) of three shapes (P = M, P < M, P > M) with the
    cascade's params; the band's window and sinks are read off the last query's visible keys and the
    whole mask must then equal the core's on all three shapes."""
    from einloom.sim.rtl_core import core_mask
    pred = qk.expr.args[0]
    where = Location(cascade.file, getattr(qk, "line", None), qk.name)
    big = 8 + 2 * int(max([abs(float(v.value)) for v in cascade.params.values() if isinstance(v, Num)] + [64]))
    masks = {}
    for m_dim, p_dim in ((big, big), (big, big // 3), (big // 3, big)):
        env: dict[str, Any] = {ranks["M"]: m_dim, ranks["P"]: p_dim}
        for name, expr in cascade.params.items():
            try:
                env.setdefault(name, _evaluate(expr, env))
            except KeyError:
                pass
        keys, queries = np.arange(m_dim)[:, None], np.arange(p_dim)[None, :]
        t = int(env[tile_param])
        env.update({vars_["m1"]: keys // t, vars_["m0"]: keys % t, vars_["p"]: queries})
        try:
            masks[(m_dim, p_dim)] = np.broadcast_to(np.asarray(_evaluate(pred, env), dtype=bool), (m_dim, p_dim))
        except KeyError as exc:
            raise SpecError(f"cascade {cascade.name}: the mask of {qk.name} reads {exc.args[0]}, which the RTL core's "
                            "mask unit cannot evaluate", location=where) from None
    valid = masks[(big, big)][:, -1]
    sinks = int(np.argmin(valid)) if not valid.all() else big
    window = int(valid[sinks:].sum())
    if window == big - sinks:       # the band reaches the sinks: a plain causal mask
        window = sinks = 0
    for (m_dim, p_dim), got in masks.items():
        if not np.array_equal(got, core_mask(m_dim, p_dim, True, window, sinks)):
            raise SpecError(f"cascade {cascade.name}: the mask of {qk.name} (`{qk.text.strip()}`) is not a bottom-right "
                            "causal band (m <= p + M - P, within a window of the last keys or among the first sink "
                            "keys), the masks the RTL core's 1D lanes compute", location=where,
                            hint="the library's causal-1pass, sliding-window and sinks-window masks are supported")
    return window, sinks


def core_mapping(roles: CoreRoles, arch: Any) -> Any:
    """The mapping the core implements: the products on the 2D array with the key tile (M0 = R) on the
    rows and the queries on the columns, everything else in the 1D lanes (one per query column), E
    and F temporal in the PEs, consecutive key tiles interleaved across the two arrays (the 2D array
    computes tile m1+1's scores while the 1D lanes do tile m1's softmax bookkeeping)."""
    from einloom.mapper.mapping import FusionGroup, Mapping
    rk = roles.ranks
    on_2d = set(roles.on_2d)
    rows, cols = arch.array_2d.rows, arch.array_2d.cols
    views = {roles.einsums["BK"], roles.einsums["BV"]}
    binding = {e: ("2d" if e in on_2d else "1d") for e in roles.einsums.values() if e not in views}
    return Mapping(
        name="rtl-core", cascade=roles.cascade, params={roles.tile_param: rows},
        description="the generated core: key tile on the 2D rows, queries on the columns and the 1D lanes, "
                    "key tiles interleaved across the arrays",
        binding=binding, spatial={"2d": {"rows": (rk["M0"],), "cols": (rk["P"],)}, "1d": {"lanes": (rk["P"],)}},
        tiling={rk["M0"]: {"spatial": rows}, rk["P"]: {"spatial": cols}},
        loop_order={"GLB": roles.heads + roles.query_groups + (rk["P"], rk["M1"]), "PE": (rk["E"], rk["F"])},
        groups=(FusionGroup(("all",), "interleave", rk["M1"]),))


def check_schedule(schedule: Any, roles: CoreRoles, arch: Any) -> dict[str, int]:
    """Refuse a schedule the core cannot run; return the sizes it fixes: ``head_dim``, ``value_dim``
    (E, F), ``tile_m`` (the key tile on the 2D rows) and ``tile_p`` (queries on the columns)."""
    rk, mapping = roles.ranks, schedule.mapping
    on_2d = set(roles.on_2d)

    def fail(message: str, *path: Any, hint: str) -> MappingError:
        return MappingError(message, location=mapping.where(*path), hint=hint)

    for name, e in schedule.einsums.items():
        want = "2d" if name in on_2d else "1d"
        if e.array != want:
            role = next(p for p, n in roles.einsums.items() if n == name)
            raise fail(f"Einsum {name} ({PHASES[role]}) is bound to the {e.array} array; the RTL core computes it "
                       f"{'on the 2D array' if want == '2d' else 'in the 1D lanes'}", "binding",
                       hint=f"bind {name} to {want} (or leave --mapping out: the core's own mapping)")
    for i, group in enumerate(schedule.groups):
        arrays = {schedule.einsums[e].array for e in group.einsums}
        if len(arrays) > 1 and (group.pipeline != "interleave" or group.interleave_rank not in (None, rk["M1"])):
            how = group.pipeline + (f" over {group.interleave_rank}" if group.pipeline == "interleave" else "")
            raise fail(f"the RTL core interleaves consecutive key tiles ({rk['M1']}) across its 2D and 1D arrays; "
                       f"this mapping's group {i} is '{how}', a schedule the core does not build", "groups", i,
                       hint=f"write groups: [{{einsums: all, pipeline: interleave, interleave_rank: {rk['M1']}}}], "
                            "or leave --mapping out (the core's own mapping)")
    for einsum in schedule.einsums.values():
        for r, dim, f in einsum.spatial:
            if r in (rk["E"], rk["F"]) and f > 1:
                raise fail(f"Einsum {einsum.name} spreads {r} over {dim}; the RTL core runs {r} in time inside "
                           "each PE", "spatial", hint=f"remove {r} from spatial")
    score = schedule.einsums[roles.einsums["BQK" if roles.causal else "QK"]]
    spatial = {(r, dim): f for r, dim, f in score.spatial}
    tile_m = schedule.sizes[rk["M0"]]
    if spatial.get((rk["M0"], "2d.rows"), 1) != tile_m or tile_m != arch.array_2d.rows:
        raise fail(f"the RTL core puts the key tile {rk['M0']} ({arch.array_2d.rows} keys) on the 2D rows; this "
                   f"mapping has {rk['M0']} = {tile_m} with {spatial.get((rk['M0'], '2d.rows'), 1)} on the rows",
                   "spatial", hint=f"spatial: {{2d: {{rows: [{rk['M0']}]}}}} and params: {{{roles.tile_param}: "
                                   f"{arch.array_2d.rows}}}")
    tile_p = spatial.get((rk["P"], "2d.cols"), 1)
    if tile_p != min(arch.array_2d.cols, schedule.sizes[rk["P"]]):
        raise fail(f"the RTL core spreads the queries {rk['P']} over the {arch.array_2d.cols} 2D columns; this "
                   f"mapping puts {tile_p} there", "spatial", hint=f"spatial: {{2d: {{cols: [{rk['P']}]}}}}")
    return {"head_dim": schedule.sizes[rk["E"]], "value_dim": schedule.sizes[rk["F"]], "tile_m": tile_m,
            "tile_p": tile_p, "P": schedule.sizes[rk["P"]], "M": schedule.sizes[rk["M"]]}



#: The fixed core's 1D units, by the op class they run (rtl/vector.py, rtl/units).
CORE_UNITS_1D = {"max": "max (tile and running max, mask select)", "add": "add (denominator, exp's subtraction)",
                 "exp": "exp", "mul": "mac (rescale of the running denominator and numerator)",
                 "div": "recip + mul (deferred division at the output)",
                 "cmp": "mask unit (causal/window compare, select; empty tiles skipped)",
                 "select": "mask unit (causal/window compare, select; empty tiles skipped)"}


def runs_and_group(schedule: Any, roles: CoreRoles) -> tuple[int, int]:
    """``(runs, group)`` of the fixed core for ``schedule``: one core run per K/V head (the roles' head
    ranks), each run's queries of every query group (GQA's query heads sharing a K/V head) as one block
    sequence of ``group x P`` queries."""
    runs = group = 1
    for r in roles.heads:
        runs *= int(schedule.sizes.get(r, 1))
    for r in roles.query_groups:
        group *= int(schedule.sizes.get(r, 1))
    return runs, group


def input_views(cascade: Any) -> dict[str, tuple[str, ...]]:
    """Input tensor -> the ranks it is iterated by (a partitioned rank's outer and inner ranks too)."""
    out = {}
    for t in cascade.inputs:
        ranks: list[str] = []
        for r in cascade.tensors[t].ranks:
            ranks.append(r)
            for p in cascade.partitions:
                if p.root == r:
                    ranks += [p.outer, p.inner]
        out[t] = tuple(ranks)
    return out


def core_structure(schedule: Any, roles: CoreRoles, cascade: Any, arch: Any, *, max_keys: int,
                   max_queries: int) -> Any:
    """The fixed core's :class:`~einloom.rtl.schedule.CoreStructure` for a checked schedule: counters
    from its loop nest, phases from the group's Einsums, buffers from its residency (refused when
    above ``rtl.max_keys`` / ``rtl.max_queries``)."""
    from einloom.rtl.schedule import CoreRanks, derive_structure
    rk = roles.ranks
    ranks = CoreRanks(query=rk["P"], key=rk["M0"], tile=rk["M1"], contraction=(rk["E"],), value=rk["F"],
                      heads=roles.heads, groups=roles.query_groups)
    rows, cols = arch.array_2d.rows, arch.array_2d.cols
    views = input_views(cascade)
    capacity = {t: ((-(-max_queries // cols), "rtl.max_queries") if rk["P"] in own else
                    (-(-max_keys // rows), "rtl.max_keys")) for t, own in views.items()}
    return derive_structure(schedule, ranks, rows=rows, cols=cols, units_1d=CORE_UNITS_1D, capacity=capacity,
                            views=views)
