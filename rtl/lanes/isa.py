"""The 1D lane's instruction set: registers, instructions, sections, programs, and their cycle counts.

A lane (one per query column) runs a :class:`Program` compiled from a cascade
(:func:`einloom.rtl.lanes.compile.compile_lanes`).  The program is straight-line code in
**sections**, each run once or once per element of an iteration:

=========  ==========================  ======================================================================
section    runs                        what it holds (derived from the Einsums' ranks, never their names)
=========  ==========================  ======================================================================
``init``   F times (value column f)    initial values of the running state (the cascade's ``init``;
                                       scalars are written F times, value vectors entry by entry)
``begin``  once per key tile           identities of the reductions over the tile's elements in pass 0
``score``  R times (element ``k``)     pass 0: Einsums over the key tile fed by the tile's R scores
``tile``   once per key tile           per-tile scalars that need a pass-0 reduction (the tile max)
``weight`` R times (element ``k``)     pass 1: Einsums over the key tile that read ``tile``; emits the R weights
``merge``  once per key tile           per-tile scalars that need a pass-1 reduction (the tile sum)
``value``  F times (value column f)    per-value-column state fed by the 2D array's tile sums (``RNV[f]``)
``commit`` once per key tile           the new iterates become the current ones (``RM <- RM'``)
``final``  once per query block        scalars of the final iterates (``1 / RD``)
``output`` F times (value column f)    the block's outputs (``AV[f]``), emitted
=========  ==========================  ======================================================================

**Registers** (:class:`Reg`) are per lane and typed by residency: ``scalar`` (one value),
``tile`` (R values, indexed by the element ``k`` of the running iteration) and ``value`` (F values,
indexed by the value column ``f``); ``pred`` registers hold one bit.  Every value register also holds
a *valid* bit: the cascade's absent coordinates (masked scores, ragged tiles) are values whose valid
bit is clear, and the instructions propagate it as the interpreter does (``union`` ops read an absent
operand as their identity; all other ops are absent where any operand is; an ``acc`` reduction skips
an absent operand).

**Operands** (:class:`Operand`) are a register, an input port (``score<i>``: the element's sum of
score product i; ``value<i>``: the column's tile sum of value product i), a format constant, or a
coordinate register (``c<n>``, exact integers: the key index, the query index, params).

**Cycle model** (static, compiler-scheduled; :meth:`Section.schedule`): two issue slots, ``main``
(format units and moves) and ``coord`` (the coordinate unit), each issuing in order, one instruction
per cycle; instruction ``i`` issues at the first cycle ``t_i`` after its slot's previous instruction
at which its operands are ready (a result is ready ``latency(op class)`` cycles after its issue).
A section that iterates (R or F times) is modulo-scheduled: iteration ``j`` issues instruction ``i``
at ``j * II + t_i``, with the smallest ``II`` (from the larger slot's instruction count up) for which
the ``t_i`` of each slot are distinct modulo II, no iteration overwrites a temporary before the
previous one has read it, and a loop-carried register (a reduction's accumulator) is written before
the next iteration reads it.  It ends when the last iteration's last result is written:
``cycles = (n - 1) * II + end`` with ``end = max_i (t_i + L_i)``; a once section takes ``end``.
:meth:`Program.cycles` gives a whole query block; the RTL lane runs exactly this schedule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

#: Section names in execution order; per tile: begin .. commit.
SECTIONS = ("init", "begin", "score", "tile", "weight", "merge", "value", "commit", "final", "output")
#: Sections that run once per key tile.
TILE_SECTIONS = ("begin", "score", "tile", "weight", "merge", "value", "commit")
#: What each section iterates over: "" (once), "k" (the tile's R elements), "f" (the F value columns).
SECTION_INDEX = {"init": "f", "begin": "", "score": "k", "tile": "", "weight": "k", "merge": "",
                 "value": "f", "commit": "", "final": "", "output": "f"}
#: The sections of one pass over the key tiles (a multi-pass program runs them once per pass; ``final``
#: of a pass before the last is its pass-end section), then ``output`` once.
PASS_SECTIONS = SECTIONS[:-1]


def section_name(base: str, pass_: int) -> str:
    """The name of section ``base`` of pass ``pass_`` (pass 0 keeps the plain name: ``score``,
    ``score.1``, ``score.2``)."""
    return base if pass_ == 0 or base == "output" else f"{base}.{pass_}"


def section_base(name: str) -> str:
    """``score.2`` -> ``score``."""
    return name.split(".", 1)[0]


def section_names(passes: int = 1) -> tuple[str, ...]:
    """Section names of a program of ``passes`` passes over the keys, in execution order."""
    return tuple(section_name(s, p) for p in range(passes) for s in PASS_SECTIONS) + ("output",)

#: Opcode -> (op class of the functional unit, number of value operands).  ``c*`` opcodes run on the
#: coordinate unit (exact integer arithmetic), ``mov``/``init``/``sel``/``wout``/``out`` on the move
#: path (op class ``select``).
OPCODES: dict[str, tuple[str, int]] = {
    "add": ("add", 2), "sub": ("add", 2), "neg": ("select", 1),   # neg: a sign flip on the move path
    "mul": ("mul", 2), "div": ("div", 2), "recip": ("recip", 1),
    "max": ("max", 2), "min": ("max", 2),
    "exp": ("exp", 1), "log": ("log", 1),
    "cmp": ("cmp", 2),            # imm: "<", "<=", ">", ">=", "==", "!=" -> pred
    "and": ("cmp", 2), "or": ("cmp", 2), "not": ("cmp", 1),
    "sel": ("select", 3),         # sel dst, pred, a, b
    "sel0": ("select", 2),        # where(pred, a): dst = a where pred, else absent (data 0)
    "mov": ("select", 1), "init": ("select", 0),   # init dst <- imm, valid bit imm2
    "acc": ("", 1),               # dst = op(dst, src) where src is valid (imm: add/max/min/mul); class of op
    "cvt": ("cvt", 1),            # coordinate -> format value (exact)
    "mulx": ("mul", 2),           # the product a mac adds (a lane mac chain's term): bf16 operands and their
                                  # exact fp32 product in bf16, the exact product (fa + fb bits) in fixed point
    "fn": ("fn", -1),             # imm: a map operator without a unit model (evaluated, rounded once)
    "wout": ("select", 1),        # emit weight of value product imm (the element's weight)
    "out": ("select", 1),         # emit output imm (per value column, or once)
    "cvar": ("coord", 0),         # imm: "k0", "k1", "k", "q" or an instance rank variable
    "cconst": ("coord", 0),       # imm: an exact number
    "cadd": ("coord", 2), "csub": ("coord", 2), "cmul": ("coord", 2),
    "ccmp": ("coord", 2),         # imm: comparison -> coordinate boolean (0/1)
    "cand": ("coord", 2), "cor": ("coord", 2), "cnot": ("coord", 1),
}
UNION_IDENTITY = {"add": 0.0, "max": float("-inf"), "min": float("inf")}


@dataclass(frozen=True)
class Reg:
    """A lane register: ``kind`` is ``scalar``, ``tile`` (R entries), ``value`` (F entries), ``pred``
    (a bit) or ``coord`` (an exact integer); ``tensor`` is the cascade tensor it holds (for reports)."""

    name: str
    kind: str
    tensor: str | None = None
    index: int = 0


@dataclass(frozen=True)
class Operand:
    """``reg`` (a :class:`Reg`), ``port`` (``score<i>`` / ``value<i>``) or ``const`` (a real number)."""

    kind: str
    reg: Reg | None = None
    port: str | None = None
    value: float | None = None

    def __str__(self) -> str:
        if self.kind == "reg":
            r = self.reg
            return r.name + ("[k]" if r.kind == "tile" else "[f]" if r.kind == "value" else "")
        if self.kind == "port":
            return self.port
        return repr(self.value)


def reg(r: Reg) -> Operand:
    return Operand("reg", reg=r)


def port(name: str) -> Operand:
    return Operand("port", port=name)


def const(x: float) -> Operand:
    return Operand("const", value=float(x))


@dataclass(frozen=True)
class Instr:
    """``op dst, srcs`` with an immediate (``exp``'s folded constant, ``cmp``'s relation, ``acc``'s
    reduction, ``fn``'s operator, ``init``'s value, ``cvar``'s coordinate); ``source`` is the Einsum
    it was compiled from (for errors and listings)."""

    op: str
    dst: Reg | None
    srcs: tuple[Operand, ...] = ()
    imm: Any = None
    imm2: Any = None
    source: str = ""

    @property
    def unit(self) -> str:
        """The op class of the functional unit that executes it."""
        if self.op == "acc":
            return {"add": "add", "max": "max", "min": "max", "mul": "mul"}[self.imm]
        return OPCODES[self.op][0]

    @property
    def slot(self) -> str:
        """Issue slot: ``coord`` for the coordinate unit's instructions, ``main`` for the rest (two
        instructions, one of each, may issue in one cycle)."""
        return "coord" if self.op.startswith("c") and OPCODES[self.op][0] == "coord" else "main"

    def reads(self) -> list[Reg]:
        regs = [s.reg for s in self.srcs if s.kind == "reg"]
        if self.op == "acc":
            regs.append(self.dst)
        return regs

    def __str__(self) -> str:
        dst = "" if self.dst is None else str(reg(self.dst)) + ", "
        args = ", ".join(str(s) for s in self.srcs)
        imm = "" if self.imm is None else f" #{self.imm}" + ("" if self.imm2 is None else f",{self.imm2}")
        return f"{self.op:6s} {dst}{args}{imm}" + (f"    ; {self.source}" if self.source else "")


@dataclass(frozen=True)
class SectionSchedule:
    """Static schedule of one section: issue cycle of each instruction, initiation interval, length."""

    issue: tuple[int, ...]
    ii: int
    end: int

    def cycles(self, iterations: int) -> int:
        """Cycles of ``iterations`` overlapped iterations (0 when the section is empty)."""
        if not self.issue or iterations <= 0:
            return 0
        return (iterations - 1) * self.ii + self.end


@dataclass(frozen=True)
class Section:
    """Straight-line code run once, or once per element ``k`` / value column ``f`` (``index``)."""

    name: str
    instrs: tuple[Instr, ...] = ()

    @property
    def index(self) -> str:
        return SECTION_INDEX[section_base(self.name)]

    def schedule(self, latency: Mapping[str, int]) -> SectionSchedule:
        """Modulo schedule (see the module docstring): the smallest II from the instruction count up
        for which in-order issue slots are distinct modulo II and every register hazard between
        overlapped iterations holds; once sections (no index) issue as soon as operands are ready."""
        if not self.instrs:
            return SectionSchedule((), 0, 0)
        lats = [latency_of(ins, latency) for ins in self.instrs]
        if not self.index:
            issue, end = self._issue(lats, None)
            return SectionSchedule(tuple(issue), max(issue) + 1, end)
        ii = max(sum(1 for i in self.instrs if i.slot == s) for s in ("main", "coord"))
        while True:
            issue, end = self._issue(lats, ii)
            if self._overlap_ok(issue, lats, ii):
                return SectionSchedule(tuple(issue), ii, end)
            ii += 1

    def _issue(self, lats: list[int], ii: int | None) -> tuple[list[int], int]:
        ready: dict[Reg, int] = {}
        used: dict[str, set[int]] = {"main": set(), "coord": set()}
        last = {"main": -1, "coord": -1}
        issue: list[int] = []
        end = 0
        for ins, lat in zip(self.instrs, lats):
            slot = ins.slot
            t = max([last[slot] + 1] + [ready.get(r, 0) for r in ins.reads()])
            while ii is not None and t % ii in used[slot]:
                t += 1
            if ii is not None:
                used[slot].add(t % ii)
            last[slot] = t
            issue.append(t)
            if ins.dst is not None:
                ready[ins.dst] = t + lat
            end = max(end, t + lat)
        return issue, end

    def _overlap_ok(self, issue: list[int], lats: list[int], ii: int) -> bool:
        """Iteration j + 1 must not clobber a register before iteration j has read it, and a
        loop-carried register must be written before the next iteration reads it."""
        writes: dict[Reg, list[int]] = {}
        for ins, t, lat in zip(self.instrs, issue, lats):
            if ins.dst is not None and not _indexed(ins.dst, self.index):
                writes.setdefault(ins.dst, []).append(t + lat)
        first_write: dict[Reg, int] = {}
        for ins, t in zip(self.instrs, issue):
            if ins.dst is not None:
                first_write.setdefault(ins.dst, t)
        for ins, t in zip(self.instrs, issue):
            for r in ins.reads():
                if r not in writes:
                    continue
                if any(ii + w <= t for w in writes[r]):                  # next iteration's write lands first
                    return False
                carried = first_write.get(r, 1 << 30) >= t              # read before (or as) it is written
                if carried and max(writes[r]) > ii + t:                 # the value the next iteration reads
                    return False
        return True


def _indexed(r: Reg, index: str) -> bool:
    return (index == "k" and r.kind == "tile") or (index == "f" and r.kind == "value")


def latency_of(ins: Instr, latency: Mapping[str, int]) -> int:
    """Cycles from issue to result of ``ins`` (move-path and coordinate ops: ``select`` / ``coord``)."""
    unit = ins.unit
    if unit == "fn":
        unit = f"fn:{ins.imm}"
    return int(latency.get(unit, latency.get("select", 1) if unit in ("coord", "cvt") else 1))


@dataclass(frozen=True)
class Chain:
    """A value product the 2D array computes with the lane's weights: ``weight`` is the weight port
    number, ``carry`` the lane register whose value starts each tile's column sum (``None``: 0, a
    per-tile product such as ``SLNV``; a register: the product reduces the whole key rank and its sum
    continues across tiles, e.g. sigmoid attention's ``AV``)."""

    einsum: str
    weight: int
    carry: Reg | None = None


@dataclass(frozen=True)
class Program:
    """A compiled lane program (see the module docstring).

    ``scores`` / ``chains`` name the 2D products feeding / fed by the lane; ``outputs`` the cascade
    outputs it emits (``value`` kind: F beats, ``scalar``: one); ``tile`` is R, ``values`` F;
    ``coords`` maps coordinate names (``k0``, ``k1``, ``k``, ``q``, instance ranks) to the rank
    variables of the cascade they stand for; ``regs`` all registers by kind.
    """

    cascade: str
    sections: Mapping[str, Section]
    regs: tuple[Reg, ...]
    scores: tuple[str, ...]
    chains: tuple[Chain, ...]
    outputs: Mapping[str, str]
    tile: int
    values: int
    key_rank: str
    lane_rank: str
    unit_classes: tuple[str, ...]
    score_consts: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    structure: Any = field(default=None, repr=False, compare=False)
    #: passes over the key tiles per query block (``rtl/lanes/passes.py``); per pass the score slots
    #: and value products (chains) it runs, ``(lo, hi)`` ranges (empty: all of them, one pass)
    passes: int = 1
    pass_scores: tuple[tuple[int, int], ...] = ()
    pass_chains: tuple[tuple[int, int], ...] = ()

    def section_names(self) -> tuple[str, ...]:
        """Section names in execution order (:func:`section_names`)."""
        return section_names(self.passes)

    def pass_ranges(self) -> tuple[tuple[tuple[int, int], tuple[int, int]], ...]:
        """Per pass ``((score lo, hi), (chain lo, hi))``."""
        if not self.pass_scores:
            return (((0, len(self.scores)), (0, len(self.chains))),)
        return tuple(zip(self.pass_scores, self.pass_chains))

    def section(self, name: str) -> Section:
        return self.sections.get(name, Section(name))

    def listing(self) -> str:
        """Human-readable assembly, one section after another."""
        lines = [f"; lane program of {self.cascade}: R = {self.tile}, F = {self.values}, "
                 f"units: {', '.join(self.unit_classes)}"]
        if self.passes > 1:
            for k, ((s0, s1), (c0, c1)) in enumerate(self.pass_ranges()):
                lines.append(f"; pass {k + 1} of {self.passes} over the key tiles: score products "
                             f"{', '.join(self.scores[s0:s1]) or '-'}; value products "
                             f"{', '.join(c.einsum for c in self.chains[c0:c1]) or '-'}")
        for r in self.regs:
            lines.append(f";   {r.kind:6s} {r.name}" + (f" = {r.tensor}" if r.tensor else ""))
        for name in self.section_names():
            sec = self.section(name)
            if not sec.instrs:
                continue
            loop = {"k": f" (x{self.tile}, element k)", "f": f" (x{self.values}, value column f)"}.get(sec.index, "")
            lines.append(f"{name}:{loop}")
            lines += [f"    {ins}" for ins in sec.instrs]
        return "\n".join(lines)

    def units(self) -> tuple[str, ...]:
        return self.unit_classes

    def block_cycles(self, tiles: int, latency: Mapping[str, int]) -> dict[str, int]:
        """Cycles of each section over one query block of ``tiles`` key tiles (the lane's own work;
        the 2D array's products run between ``weight`` and ``value``)."""
        reps = {"init": self.values, "final": 1, "output": self.values}
        out = {}
        for name in self.section_names():
            base = section_base(name)
            sched = self.section(name).schedule(latency)
            if base in TILE_SECTIONS:
                n = {"k": self.tile, "f": self.values}.get(SECTION_INDEX[base], 1)
                out[name] = tiles * sched.cycles(n)
            else:
                out[name] = sched.cycles(reps[base] if SECTION_INDEX[base] else 1)
        return out

    def cycles(self, tiles: int, latency: Mapping[str, int]) -> int:
        """Total lane cycles of one query block (sum of :meth:`block_cycles`)."""
        return sum(self.block_cycles(tiles, latency).values())

    def to_dict(self) -> dict[str, Any]:
        return {"cascade": self.cascade, "tile": self.tile, "values": self.values, "key_rank": self.key_rank,
                "lane_rank": self.lane_rank, "units": list(self.unit_classes), "scores": list(self.scores),
                "chains": [{"einsum": c.einsum, "weight": c.weight, "carry": c.carry.name if c.carry else None}
                           for c in self.chains],
                "outputs": dict(self.outputs),
                "registers": [{"name": r.name, "kind": r.kind, "tensor": r.tensor} for r in self.regs],
                "sections": {n: [str(i) for i in self.section(n).instrs] for n in self.section_names()},
                **({"passes": self.passes, "pass_scores": [list(r) for r in self.pass_scores],
                    "pass_chains": [list(r) for r in self.pass_chains]} if self.passes > 1 else {})}


def units_of(sections: Iterable[Section]) -> tuple[str, ...]:
    """The op classes (functional units) the instructions of ``sections`` use, sorted."""
    found = set()
    for sec in sections:
        for ins in sec.instrs:
            u = ins.unit
            found.add(f"fn:{ins.imm}" if u == "fn" else u)
    return tuple(sorted(found))
