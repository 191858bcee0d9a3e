"""A lane program as the RTL lane's machine image: register map, constant pool, VLIW bundles, section table.

:func:`encode` turns a :class:`~einloom.rtl.lanes.isa.Program` into an :class:`Image` for a lane of a
given :class:`LaneShape` (the capacities fixed at generation: registers, constants, bundles, units).

* **Addresses**: registers first (a ``tile`` register takes R consecutive entries, a ``value``
  register F; the 2D array's input buffers ``in.score<i>`` / ``in.value<i>`` are registers too), then
  the constant pool (fp32 bit patterns and Q.8 coordinate constants, read-only), then the coordinate
  sources ``k0``, ``k1``, ``k`` and ``q`` (and instance coordinates).  An operand is an address and an
  ``indexed`` bit (add the iteration index: the element k or the value column f).
* **Bundles**: a section with initiation interval II occupies II bundle words; word ``s`` holds the
  ``main`` and the ``coord`` instruction whose issue cycle ``t_i`` is ``s`` modulo II, with its
  stage ``t_i // II``: at section cycle ``c`` the lane issues the word ``c mod II`` for iteration
  ``c // II - stage`` when that is in range (:meth:`Section.schedule` guarantees one instruction
  per slot and cycle).
* **Section table**: per section its first bundle, II, iteration kind (once, R, F), the cycles of
  one iteration ``end`` and its length ``total = (n - 1) * II + end``.

Coordinates are signed 32-bit Q.8 numbers (``COORD_FRAC``): a coordinate constant must be a multiple
of 2**-8 and coordinates must stay below 2**15 in magnitude.  The RTL lane executes the bf16 format
(fp32 values, :mod:`einloom.rtl.float`); what it lacks (``log``, operators without a unit, a value
product continued across tiles) is refused here with the instruction's Einsum.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from einloom.base.errors import SpecError
from einloom.rtl.lanes.isa import OPCODES, SECTIONS, Instr, Operand, Program, Reg, section_names

COORD_FRAC = 8
MAIN_OPS = ("nop", "add", "sub", "neg", "mul", "div", "recip", "max", "min", "exp", "cmp", "and", "or", "not",
            "sel", "sel0", "mov", "init", "acc", "cvt", "wout", "out", "fn", "log", "mulx")
COORD_OPS = ("nop", "cadd", "csub", "cmul", "ccmp", "cand", "cor", "cnot")
RELATIONS = ("<", "<=", ">", ">=", "==", "!=")
ACC_OPS = ("add", "max", "min", "mul")
KIND_CODE = {"": 0, "k": 1, "f": 2}
COORD_NAMES = ("k0", "k1", "k", "q")
#: op classes the RTL lane has a unit for (bf16 format: fp32 arithmetic)
RTL_UNITS = ("add", "mul", "max", "exp", "recip", "div", "log", "cmp", "select", "cvt", "coord")
#: op classes a fixed-point RTL lane has a unit for (``rtl/lanes/fixed_units.py``)
FIXED_RTL_UNITS = ("add", "mul", "max", "exp", "recip", "div", "log", "cmp", "select", "cvt", "coord")


@dataclass(frozen=True)
class LaneShape:
    """Capacities of a generated lane (a programmable lane runs any program that fits them)."""

    tile: int
    values: int
    registers: int
    constants: int
    bundles: int
    stages: int
    scores: int
    chains: int
    outputs: int
    units: tuple[str, ...]
    passes: int = 1                 # passes over the key tiles (section table: passes x 9 entries + output)

    @property
    def table_names(self) -> tuple[str, ...]:
        """The section table's entries, in table order (:func:`~.isa.section_names`)."""
        return section_names(self.passes)

    @property
    def addresses(self) -> int:
        return self.registers + self.constants + len(COORD_NAMES)

    @property
    def addr_bits(self) -> int:
        return max(1, (self.addresses - 1).bit_length())

    @property
    def index_bits(self) -> int:
        return max(1, max(self.tile, self.values).bit_length())

    def fits(self, image: "Image") -> list[str]:
        """What of ``image`` exceeds this shape (empty when it fits)."""
        out = []
        for what, need, have in (("registers", image.registers, self.registers),
                                 ("constants", len(image.constants), self.constants),
                                 ("bundles", len(image.bundles), self.bundles),
                                 ("stages", image.stages, self.stages),
                                 ("score products", image.scores, self.scores),
                                 ("value products", image.chains, self.chains),
                                 ("outputs", len(image.outputs), self.outputs),
                                 ("passes over the keys", image.program.passes, self.passes)):
            if need > have:
                out.append(f"{what}: needs {need}, the lane has {have}")
        if image.tile != self.tile or image.values != self.values:
            out.append(f"shape R x F = {image.tile} x {image.values}, the lane is {self.tile} x {self.values}")
        missing = sorted(set(image.units) - set(self.units))
        if missing:
            out.append(f"units {', '.join(missing)} missing")
        return out

    @staticmethod
    def covering(*images: "Image") -> "LaneShape":
        """The smallest shape that runs every one of ``images``."""
        return LaneShape(images[0].tile, images[0].values, max(i.registers for i in images),
                         max(len(i.constants) for i in images), max(len(i.bundles) for i in images),
                         max(i.stages for i in images), max(i.scores for i in images),
                         max(i.chains for i in images), max(len(i.outputs) for i in images),
                         tuple(sorted({u for i in images for u in i.units})),
                         max(i.program.passes for i in images))


@dataclass
class Image:
    """The machine image of one program (see the module docstring)."""

    program: Program
    latency: Mapping[str, int]
    address: dict[str, int]                   # register name -> first address
    registers: int
    constants: list[tuple[str, float]]        # ("fp", value) or ("coord", value), by pool slot
    bundles: list[dict[str, Any]]             # {"main": {...} | None, "coord": {...} | None}
    sections: dict[str, dict[str, int]]       # name -> base, ii, kind, end, cycles per iteration count
    stages: int
    units: tuple[str, ...]
    tile: int
    values: int
    scores: int
    chains: int
    outputs: list[str]
    buffers: dict[str, int] = field(default_factory=dict)
    fn_units: list[str] = field(default_factory=list)   # the lane's function units, in tag order
    const_base: int | None = None             # where the lane's constant pool starts (its registers)
    coord_base: int | None = None             # where its coordinate sources start
    fixed: Any = None                         # the FixedArith of a fixed-point lane (None: bf16, fp32 units)

    def const_address(self, kind: str, value: float) -> int:
        base = self.registers if self.const_base is None else self.const_base
        return base + self.constants.index((kind, float(value)))

    def coord_address(self, name: str) -> int:
        base = self.registers + len(self.constants) if self.coord_base is None else self.coord_base
        return base + COORD_NAMES.index(name)

    def reach(self) -> dict[str, dict[str, set[int]]]:
        """Which addresses each read port (``a``, ``b``, ``c`` of ``main``; ``ca``, ``cb`` of ``coord``)
        reads and which registers each writer (a unit's op class, ``comb``, ``coord``, ``buf``) writes:
        a lane fixed at generation is built with only these paths."""
        from einloom.rtl.lanes.units import UNITS
        size = {self.address[r.name]: {"tile": self.tile, "value": self.values}.get(r.kind, 1)
                for r in self.program.regs}

        def span(addr: int, indexed: int) -> range:
            return range(addr, addr + (size.get(addr, 1) if indexed else 1))
        reads: dict[str, set[int]] = {k: set() for k in ("a", "b", "c", "ca", "cb")}
        writes: dict[str, set[int]] = {}
        for word in self.bundles:
            for slot in ("main", "coord"):
                f = word[slot]
                if f is None:
                    continue
                prefix = "c" if slot == "coord" else ""
                for key in ("a", "b") + (("c",) if slot == "main" else ()):
                    reads[prefix + key] |= set(span(f[key], f[key[0] + "ix"]))
                if slot == "coord":
                    writer = "coord"
                else:
                    op = MAIN_OPS[f["op"]]
                    if op in ("wout", "out", "nop"):
                        continue
                    unit = OPCODES[op][0]                     # a pipelined unit's class, else the comb path
                    writer = unit if unit in UNITS else "comb"
                    if op == "acc":
                        writer = {"add": "add", "max": "max", "min": "max", "mul": "mul"}[ACC_OPS[f["sub"]]]
                    if op == "fn":
                        writer = self.fn_units[f["tag"]]
                writes.setdefault(writer, set()).update(span(f["dst"], f["dix"]))
        writes["buf"] = {a for name, base in self.buffers.items() for a in span(base, 1)}
        return {"read": reads, "write": writes}

    def uses(self, op: str) -> bool:
        """Whether the program issues opcode ``op`` (a lane fixed at generation builds only what it uses)."""
        return any(word["main"] is not None and MAIN_OPS[word["main"]["op"]] == op for word in self.bundles)

    def cycles(self, tiles: int) -> int:
        """Lane cycles spent issuing in one query block of ``tiles`` tiles (= Program.cycles)."""
        return self.program.cycles(tiles, self.latency)


def _fail(program: Program, ins: Instr | None, what: str) -> SpecError:
    src = f"Einsum {ins.source} of {program.cascade}" if ins is not None and ins.source else program.cascade
    return SpecError(f"the RTL lane cannot run {src}: {what}",
                     hint="the RTL lane has fp32 add, mul, max, exp, reciprocal, division, compare, select and "
                          "a Q.8 coordinate unit (bf16 format); the reference executor runs the rest")


def encode(program: Program, latency: Mapping[str, int], shape: LaneShape | None = None, *,
           carry_in_array: bool = False, fixed: Any = None) -> Image:
    """The :class:`Image` of ``program`` with the RTL units' ``latency`` (op class -> cycles), for a
    lane of exactly its size, or for the generated lane ``shape`` (refused when it does not fit).
    ``carry_in_array``: the 2D array keeps a continued value product's running column sums itself
    (the lane core, ``rtl/lane_core.py``), so such a chain is accepted.  ``fixed``: the
    :class:`~einloom.sim.formats.arith.fixed.FixedArith` of a fixed-point lane (its units:
    ``rtl/lanes/fixed_units.py``; every ``exp`` gets its folded constant, 1 when the cascade has none)."""
    for chain in program.chains:
        if chain.carry is not None and not carry_in_array:
            raise _fail(program, None, f"value product {chain.einsum} reduces the whole key rank (its sum "
                                       "continues across tiles), which the RTL lane's 2D interface does not carry")
    from einloom.rtl.lanes.units import FIXED_FN_UNITS, FN_UNITS
    for sec in program.sections.values():
        for ins in sec.instrs:
            unit = ins.unit
            if unit == "fn" and ins.imm in (FN_UNITS if fixed is None else FIXED_FN_UNITS):
                continue
            if unit not in RTL_UNITS or (fixed is not None and unit not in FIXED_RTL_UNITS):
                raise _fail(program, ins, f"{ins.op} needs a '{'fn:' + str(ins.imm) if unit == 'fn' else unit}' unit "
                                          "(register one with einloom.rtl.lanes.units.register_fn_unit)"
                                          if unit == "fn" else f"{ins.op} needs a '{unit}' unit")
            if ins.op in ("exp",) and ins.imm is not None and not np.isfinite(ins.imm):
                raise _fail(program, ins, "exp's constant is not finite")
    R, F = program.tile, program.values
    address: dict[str, int] = {}
    nxt = 0
    for r in program.regs:
        address[r.name] = nxt
        nxt += {"tile": R, "value": F}.get(r.kind, 1)
    registers = nxt
    consts: list[tuple[str, float]] = []

    def const_slot(kind: str, value: float) -> None:
        if (kind, float(value)) not in consts:
            consts.append((kind, float(value)))

    for sec in program.sections.values():
        for ins in sec.instrs:
            coord = ins.slot == "coord"
            for s in ins.srcs:
                if s.kind == "const":
                    if coord:
                        q = s.value * (1 << COORD_FRAC)
                        if q != int(q) or abs(q) >= (1 << 31):
                            raise _fail(program, ins, f"coordinate constant {s.value} is not a multiple of 2^-8")
                    const_slot("coord" if coord else "fp", s.value)
            if ins.op == "init":
                const_slot("fp", ins.imm)
            if ins.op == "exp" and (ins.imm is not None or fixed is not None):
                const_slot(*_exp_const(ins, fixed))
    image = Image(program, dict(latency), address, registers, consts, [], {}, 1,
                  tuple(sorted(set(program.units()) | {"select"})), R, F,
                  len(program.scores), len(program.chains), list(program.outputs))
    image.fixed = fixed
    image.fn_units = [u for u in (shape.units if shape is not None else image.units) if u.startswith("fn:")]
    if shape is not None:               # addresses of a (larger) generated lane
        image.const_base, image.coord_base = shape.registers, shape.registers + shape.constants
    bundles: list[dict[str, Any]] = []
    stages = 1
    for name in program.section_names():
        sec = program.section(name)
        sched = sec.schedule(latency)
        if not sec.instrs:
            image.sections[name] = {"base": 0, "ii": 1, "kind": KIND_CODE[sec.index], "end": 0, "total": 0}
            continue
        base = len(bundles)
        words = [{"main": None, "coord": None} for _ in range(sched.ii)]
        for ins, t in zip(sec.instrs, sched.issue):
            word = words[t % sched.ii]
            word[ins.slot] = _fields(image, ins, t // sched.ii)
            stages = max(stages, t // sched.ii + 1)
        bundles += words
        n = {"k": R, "f": F}.get(sec.index, 1)
        image.sections[name] = {"base": base, "ii": sched.ii, "kind": KIND_CODE[sec.index], "end": sched.end,
                                "total": sched.cycles(n)}
    image.sections[section_names(program.passes)[-2]]["last"] = 1     # the last pass's final section
    image.bundles = bundles
    image.stages = stages
    image.units = tuple(sorted(set(program.units()) | {"select"}))
    image.buffers = {r.name: address[r.name] for r in program.regs if r.name.startswith("in.")}
    if shape is not None:
        problems = shape.fits(image)
        if problems:
            raise _fail(program, None, "it does not fit the generated lane (" + "; ".join(problems) + ")")
    return image


def _exp_const(ins: Instr, fixed: Any) -> tuple[str, float]:
    """The constant-pool entry of an ``exp``'s folded constant: an fp32 value (bf16 lane) or, in a
    fixed-point lane, ``("exp", premul)`` packed as ``fixed_units.exp_constant``."""
    if fixed is None:
        return "fp", float(ins.imm)
    return "exp", 1.0 if ins.imm is None else float(ins.imm)


def _operand(image: Image, o: Operand, coord: bool) -> tuple[int, int]:
    """(address, indexed) of an operand."""
    if o.kind == "reg":
        return image.address[o.reg.name], int(o.reg.kind in ("tile", "value"))
    if o.kind == "const":
        return image.const_address("coord" if coord else "fp", o.value), 0
    if o.port in COORD_NAMES:
        return image.coord_address(o.port), 0
    raise _fail(image.program, None, f"coordinate {o.port} (an instance rank) has no RTL source")


def _fields(image: Image, ins: Instr, stage: int) -> dict[str, int]:
    coord = ins.slot == "coord"
    f = {"stage": stage, "dst": 0, "dix": 0, "a": 0, "aix": 0, "b": 0, "bix": 0, "c": 0, "cix": 0,
         "sub": 0, "tag": 0}
    if coord:
        f["op"] = COORD_OPS.index(ins.op)
    else:
        f["op"] = MAIN_OPS.index(ins.op)
    if ins.dst is not None:
        f["dst"] = image.address[ins.dst.name]
        f["dix"] = int(ins.dst.kind in ("tile", "value"))
    srcs = list(ins.srcs)
    if ins.op == "acc":
        srcs = [Operand("reg", reg=ins.dst)] + srcs         # a = the accumulator, b = the new element
        f["sub"] = ACC_OPS.index(ins.imm)
    if ins.op == "init":
        srcs = [Operand("const", value=ins.imm)]
        f["sub"] = int(bool(ins.imm2))
    if ins.op == "exp" and (ins.imm is not None or image.fixed is not None):
        kind, value = _exp_const(ins, image.fixed)
        f["b"], f["bix"] = image.const_address(kind, value), 0
        f["sub"] = 1
    if ins.op in ("cmp", "ccmp"):
        f["sub"] = RELATIONS.index(ins.imm)
    if ins.op == "wout":
        f["tag"] = int(ins.imm)
    if ins.op == "out":
        f["tag"] = image.outputs.index(ins.imm)
    if ins.op == "fn":
        f["tag"] = image.fn_units.index(f"fn:{ins.imm}")
        f["sub"] = len(ins.srcs) - 1
    for key, o in zip(("a", "b", "c"), srcs):
        f[key], f[key[0] + "ix"] = _operand(image, o, coord)
    return f


__all__ = ["COORD_FRAC", "Image", "LaneShape", "encode", "MAIN_OPS", "COORD_OPS", "Reg"]
