"""Architecture description: a FuseMax-style 2D PE array + 1D PE array + global buffer + DRAM.

Load one with :func:`load_arch` (a YAML path or a preset name such as ``fusemax-cloud``) or
:func:`arch_from_dict`.  Every field is validated once, with errors that name the file, line and
field; past the loader the :class:`Architecture` object is trusted.

The YAML schema (key names are a contract other packages rely on)::

    name: fusemax-cloud
    description: ...
    source: where the numbers come from
    clock_mhz: 940
    technology_nm: 45                       # optional, default 45 (the node of the published data)
    data: {format: fp16, bits: 16}          # int8, int16, fixed, bf16, fp16, fp32
    array_2d:
      rows: 256
      cols: 256
      units:                                # op class -> cycles per op on one PE
        mac: 1
        exp: {as_mac: 6, add: 1}            # composite: 6 sequential MACs then 1 add
        log: {cycles: 4, energy_pj: 40, area_um2: 20000}   # dedicated unit without built-in data
        max: {cycles: 1, latency: 3}        # optional latency: cycles from operands to result
      register_file: {entries: 12, bits: 16}
    array_1d:
      width: 256
      units: {...}
      register_file: {entries: 32, bits: 16}
    global_buffer: {capacity_bytes: 16777216, row_bits: 4096, banks: 32}
    dram: {bandwidth_GBps: 429.5}
    rtl: {...}                              # optional: the generated core's own settings, kept raw
                                            # in Architecture.rtl and read by einloom.rtl (RtlConfig)

Op costs (:meth:`Architecture.op_cost`): an op class runs on the unit of the same name; if there is
none, ``mul`` runs on the MAC, ``cmp``/``select`` on the max unit, ``recip`` on the divider; ``sub``
is an ``add`` and ``min`` a ``max``.  A composite unit costs the sum of its parts, run one after the
other.  An op that no unit can run raises :class:`ArchError`: an op is never free.
"""
from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from einloom.base.errors import ArchError, Location
from einloom.base.fields import FieldReader, describe
from einloom.base.limits import MAX_ARRAY_DIM
from einloom.base.yamlio import LineMap, load_yaml
from einloom.cost_models.technology import DATA_FORMATS, TechnologyModel

if TYPE_CHECKING:  # pragma: no cover
    from einloom.cost_models.area import AreaReport

#: The op vocabulary of cascade analysis.
OP_CLASSES: tuple[str, ...] = ("mac", "mul", "add", "max", "exp", "div", "recip", "cmp", "log", "sqrt",
                               "select")
#: Op names that are another op class on the hardware.
OP_ALIASES: Mapping[str, str] = MappingProxyType({"sub": "add", "min": "max", "fma": "mac"})
#: Where an op runs when its array has no unit of its own name.
OP_FALLBACKS: Mapping[str, str] = MappingProxyType({"mul": "mac", "cmp": "max", "select": "max",
                                                    "recip": "div"})

PRESET_DIR = Path(__file__).parent / "presets"


class ArrayKind(str, enum.Enum):
    """Which PE array: the 2D array (tensor products) or the 1D array (softmax-style work)."""

    TWO_D = "2d"
    ONE_D = "1d"

    @property
    def key(self) -> str:
        """The YAML key of this array (``array_2d`` / ``array_1d``)."""
        return f"array_{self.value}"

    @classmethod
    def parse(cls, value: "ArrayKind | str") -> "ArrayKind":
        """Accept ``ArrayKind``, ``'2d'``/``'1d'`` or ``'array_2d'``/``'array_1d'``."""
        if isinstance(value, ArrayKind):
            return value
        text = str(value).lower().removeprefix("array_")
        for kind in cls:
            if kind.value == text:
                return kind
        raise ArchError(f"unknown array '{value}'", hint="use '2d' or '1d' (or 'array_2d'/'array_1d')")


@dataclass(frozen=True)
class DataFormat:
    """Number format of the datapath: ``format`` (int8/int16/fixed/bf16/fp16/fp32) and width."""

    format: str = "fp16"
    bits: int = 16

    @property
    def bytes(self) -> float:
        """Bytes per value (may be fractional for odd fixed-point widths)."""
        return self.bits / 8


@dataclass(frozen=True)
class UnitSpec:
    """How one op class executes on one PE.

    A *dedicated* unit has ``cycles`` (cycles the PE is busy per op; 1 for a pipelined unit) and
    optionally ``energy_pj``/``area_um2`` overriding the technology data.  A *composite* unit has
    ``parts``: ``(op_class, count)`` pairs run sequentially on the PE's other units; it adds no area.
    ``latency`` (optional, dedicated units) is the pipeline depth: cycles from an op's operands to its
    result (``cycles`` is the issue interval).  The cost model does not use it; the simulator and the
    RTL generator (which checks it against the unit it builds) do.
    """

    op: str
    cycles: int | None = None
    parts: tuple[tuple[str, int], ...] = ()
    energy_pj: float | None = None
    area_um2: float | None = None
    latency: int | None = None

    @property
    def is_composite(self) -> bool:
        return bool(self.parts)


@dataclass(frozen=True)
class RegisterFile:
    """A per-PE register file of ``entries`` values of ``bits`` bits."""

    entries: int
    bits: int


@dataclass(frozen=True)
class PEArray:
    """A PE array: ``rows`` x ``cols`` PEs (the 1D array has ``rows == 1``, ``cols == width``)."""

    kind: ArrayKind
    rows: int
    cols: int
    units: Mapping[str, UnitSpec]
    register_file: RegisterFile
    #: 1D array only: the PE's dedicated units run different Einsums' ops in the same cycles (each unit
    #: its own pipeline, as the generated core's lanes: max, exp, add, rescale, output multiply), so an
    #: interleaved group's 1D time is its busiest unit's, not the sum of its Einsums (the default, a PE
    #: that issues one Einsum's ops at a time, as FuseMax's 1D PE)
    concurrent_units: bool = False

    @property
    def name(self) -> str:
        """``array_2d`` or ``array_1d``."""
        return self.kind.key

    @property
    def num_pes(self) -> int:
        return self.rows * self.cols

    @property
    def width(self) -> int:
        """Number of PEs of the 1D array (``cols``); for the 2D array, its column count."""
        return self.cols

    @property
    def dedicated_units(self) -> dict[str, UnitSpec]:
        """The units that are hardware (have area) in every PE."""
        return {op: spec for op, spec in self.units.items() if not spec.is_composite}


@dataclass(frozen=True)
class GlobalBuffer:
    """The on-chip global buffer (FuseMax's L3): capacity, row width (one access), banks."""

    capacity_bytes: int
    row_bits: int
    banks: int = 1

    @property
    def values_per_row(self) -> int:
        """Values of ``bits`` bits in one row (for 16-bit data at 4096-bit rows: 256)."""
        return self.row_bits // 16


@dataclass(frozen=True)
class Dram:
    """Off-chip memory: bandwidth in GB/s (10**9 bytes per second)."""

    bandwidth_GBps: float

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth_GBps * 1e9


@dataclass(frozen=True)
class OpCost:
    """Cost of one op on one PE.

    Members
    -------
    cycles:
        Cycles the PE is busy (composite ops: the sum of their parts).
    energy_pj:
        Energy of the op, at the architecture's node and data format.
    unit_actions:
        Actions per physical unit, e.g. ``{"mac": 6, "add": 1}`` for exp on the MAC.
    """

    cycles: int
    energy_pj: float
    unit_actions: Mapping[str, float]

    def __mul__(self, count: float) -> "OpCost":
        return OpCost(int(round(self.cycles * count)), self.energy_pj * count,
                      {k: v * count for k, v in self.unit_actions.items()})

    def __add__(self, other: "OpCost") -> "OpCost":
        actions = dict(self.unit_actions)
        for k, v in other.unit_actions.items():
            actions[k] = actions.get(k, 0) + v
        return OpCost(self.cycles + other.cycles, self.energy_pj + other.energy_pj, actions)


@dataclass(frozen=True)
class Architecture:
    """A validated accelerator description (see the module docstring for the schema)."""

    name: str
    description: str
    source: str
    clock_mhz: float
    technology_nm: int
    data: DataFormat
    array_2d: PEArray
    array_1d: PEArray
    global_buffer: GlobalBuffer
    dram: Dram
    rtl: Mapping[str, Any] | None = None
    file: str | None = None
    linemap: LineMap | None = field(default=None, repr=False, compare=False)

    # -- basic derived quantities ---------------------------------------------------------------
    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def cycle_s(self) -> float:
        """Seconds per cycle."""
        return 1.0 / self.clock_hz

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per clock cycle."""
        return self.dram.bandwidth_bytes_per_s / self.clock_hz

    @cached_property
    def technology(self) -> TechnologyModel:
        """The technology model at this architecture's node."""
        return TechnologyModel(self.technology_nm)

    def array(self, which: ArrayKind | str) -> PEArray:
        """The PE array for ``'2d'``/``'1d'`` (or ``ArrayKind``, or ``'array_2d'``)."""
        return self.array_2d if ArrayKind.parse(which) is ArrayKind.TWO_D else self.array_1d

    # -- op costs -------------------------------------------------------------------------------
    def can_execute(self, array: ArrayKind | str, op_class: str) -> bool:
        """Whether some unit of ``array`` can run ``op_class``."""
        try:
            self.op_cost(array, op_class)
        except ArchError:
            return False
        return True

    def op_cost(self, array: ArrayKind | str, op_class: str) -> OpCost:
        """Cycles, energy and unit actions of one ``op_class`` on one PE of ``array``.

        Raises :class:`ArchError` naming the array and op when no unit can execute it.
        """
        pe_array = self.array(array)
        key = (pe_array.kind, op_class)
        cached = self._op_cache.get(key)
        if cached is None:
            cached = self._op_cache[key] = self._op_cost(pe_array, op_class, ())
        return cached

    @cached_property
    def _op_cache(self) -> dict[tuple[ArrayKind, str], OpCost]:
        return {}

    def _op_cost(self, pe_array: PEArray, op_class: str, stack: tuple[str, ...]) -> OpCost:
        op = OP_ALIASES.get(op_class, op_class)
        if op not in OP_CLASSES:
            close = difflib.get_close_matches(op, OP_CLASSES + tuple(OP_ALIASES), n=1)
            raise ArchError(f"unknown op class '{op_class}'",
                            hint=(f"did you mean '{close[0]}'? " if close else "")
                            + f"op classes: {', '.join(OP_CLASSES)}")
        if op in stack:
            raise ArchError(f"unit '{stack[0]}' is composed of itself "
                            f"({' -> '.join(stack + (op,))})",
                            location=self._where(pe_array.name, "units", stack[0]),
                            hint="compose a unit only from other units")
        spec = pe_array.units.get(op)
        if spec is None:
            fallback = OP_FALLBACKS.get(op)
            if fallback is not None and fallback in pe_array.units:
                return self._op_cost(pe_array, fallback, stack)
            raise ArchError(f"{pe_array.name} has no unit for op '{op}'",
                            location=self._where(pe_array.name, "units"),
                            hint=_missing_unit_hint(op))
        if spec.is_composite:
            total = OpCost(0, 0.0, {})
            for part, count in spec.parts:
                total = total + self._op_cost(pe_array, part, stack + (op,)) * count
            return total
        return OpCost(spec.cycles or 1, self.unit_energy_pj(pe_array.kind, op), {op: 1})

    def unit_energy_pj(self, array: ArrayKind | str, unit: str) -> float:
        """Energy of one operation of the dedicated ``unit`` of ``array``."""
        spec = self.array(array).units[unit]
        if spec.energy_pj is not None:
            return spec.energy_pj
        return self.technology.action_energy_pj(unit, data_format=self.data.format, bits=self.data.bits)

    def unit_latency(self, array: ArrayKind | str, unit: str) -> int | None:
        """Pipeline depth of the dedicated ``unit`` of ``array`` (cycles from operands to result), or
        None when the file gives none (or the array has no such unit)."""
        spec = self.array(array).units.get(unit)
        return None if spec is None else spec.latency

    def unit_area_um2(self, array: ArrayKind | str, unit: str) -> float:
        """Area of one instance of the dedicated ``unit`` of ``array`` (0 for a composite unit)."""
        spec = self.array(array).units[unit]
        if spec.is_composite:
            return 0.0
        if spec.area_um2 is not None:
            return spec.area_um2
        return self.technology.component_area_um2(unit, data_format=self.data.format, bits=self.data.bits)

    # -- storage energies -----------------------------------------------------------------------
    def register_file_energy_pj(self, array: ArrayKind | str, action: str) -> float:
        """Energy of one value ``read``/``write`` in one PE register file of ``array``."""
        rf = self.array(array).register_file
        return self.technology.action_energy_pj("register_file", action, entries=rf.entries, bits=rf.bits)

    def buffer_energy_pj(self, action: str) -> float:
        """Energy of one row ``read``/``write`` of the global buffer."""
        gb = self.global_buffer
        return self.technology.action_energy_pj("global_buffer", action, capacity_bytes=gb.capacity_bytes,
                                                row_bits=gb.row_bits, banks=gb.banks)

    def dram_energy_pj_per_byte(self) -> float:
        """DRAM energy per byte moved (the 64-bit access energy / 8)."""
        return self.technology.action_energy_pj("dram", "read") / 8

    def energy_per_action(self) -> dict[str, float]:
        """A flat energy-reference table (pJ), Accelergy-ERT style.

        Keys: ``dram.read``/``dram.write`` (per 64-bit access), ``global_buffer.read``/``write``
        (per row), ``array_2d.register_file.read``/``write`` (per value), ``array_2d.<unit>`` per
        op for each dedicated unit, and the same for ``array_1d``.
        """
        table = {"dram.read": self.technology.action_energy_pj("dram", "read"),
                 "dram.write": self.technology.action_energy_pj("dram", "write"),
                 "global_buffer.read": self.buffer_energy_pj("read"),
                 "global_buffer.write": self.buffer_energy_pj("write")}
        for pe_array in (self.array_2d, self.array_1d):
            for action in ("read", "write"):
                table[f"{pe_array.name}.register_file.{action}"] = self.register_file_energy_pj(
                    pe_array.kind, action)
            for unit in pe_array.dedicated_units:
                table[f"{pe_array.name}.{unit}"] = self.unit_energy_pj(pe_array.kind, unit)
        return table

    def area_report(self) -> "AreaReport":
        """Area roll-up of the whole design (see :func:`einloom.cost_models.area.area_report`)."""
        from einloom.cost_models.area import area_report
        return area_report(self)

    def _where(self, *path: Any) -> Location:
        if self.linemap is not None:
            return self.linemap.at(*path)
        return Location(self.file, None, ".".join(map(str, path)))


def _missing_unit_hint(op: str) -> str:
    if op == "exp":
        return "add units.exp (cycles) or units.exp: {as_mac: 6, add: 1}"
    if op in ("mac", "add", "max"):
        return f"add units.{op}: 1 (cycles per op)"
    fallback = next((f for o, f in OP_FALLBACKS.items() if o == op), None)
    if fallback is not None:
        return f"add units.{op} (cycles per op), or units.{fallback}, which also runs '{op}'"
    if op in ("log", "sqrt"):
        return (f"add units.{op}: {{cycles: N, energy_pj: E, area_um2: A}} (no built-in data for it), "
                f"or compose it from other units, e.g. units.{op}: {{as_mac: 4, add: 1}}")
    return f"add units.{op} (cycles per op), or compose it from other units, e.g. units.{op}: {{as_mac: 4, add: 1}}"


# ==================================================================================================
# Loading and validation
# ==================================================================================================

_TOP_REQUIRED = ("name", "clock_mhz", "data", "array_2d", "array_1d", "global_buffer", "dram")
_TOP_OPTIONAL = ("technology_nm", "description", "source", "rtl")
#: Node of the published technology data; the default when an architecture names none.
DEFAULT_TECHNOLOGY_NM = 45


#: Largest count or size an architecture field may give (bytes, bits, cycles, entries): 2**48.
_MAX_INT = 2 ** 48
#: Largest energy (pJ), area (um^2), clock (MHz) or bandwidth (GB/s) value: 1e12.
_MAX_NUMBER = 1e12


class _Reader(FieldReader):
    """The field reader with the architecture's number rules (positive, finite, bounded)."""

    def __init__(self, linemap: LineMap | None, file: str | None):
        super().__init__(linemap, ArchError, file=file)

    def positive_int(self, value: Any, path: tuple[Any, ...], high: int = _MAX_INT) -> int:
        return self.integer(value, path, low=1, high=high, allow_integral_float=True,
                            what="a positive integer")

    def positive_number(self, value: Any, path: tuple[Any, ...]) -> float:
        return self.number(value, path, positive=True, high=_MAX_NUMBER, what="a positive number")


def _read_units(r: _Reader, raw: Any, path: tuple[Any, ...]) -> dict[str, UnitSpec]:
    if not isinstance(raw, dict) or not raw:
        raise r.fail(path, f"expected a mapping of op class -> cycles, got {describe(raw)}",
                     hint="write e.g. units: {mac: 1, add: 1, max: 1}")
    units: dict[str, UnitSpec] = {}
    for op, value in raw.items():
        upath = path + (op,)
        if op not in OP_CLASSES:
            close = difflib.get_close_matches(str(op), OP_CLASSES, n=1)
            alias = OP_ALIASES.get(str(op))
            hint = (f"'{op}' runs on units.{alias}" if alias else
                    (f"did you mean '{close[0]}'? " if close else "") + f"op classes: {', '.join(OP_CLASSES)}")
            raise r.fail(upath, f"unknown op class '{op}'", hint=hint)
        if isinstance(value, dict) and "cycles" in value:
            r.mapping(value, upath, ("cycles",), ("energy_pj", "area_um2", "latency"))
            units[op] = UnitSpec(op, cycles=r.positive_int(value["cycles"], upath + ("cycles",)),
                                 latency=(r.positive_int(value["latency"], upath + ("latency",), 1 << 16)
                                          if "latency" in value else None),
                                 energy_pj=(r.positive_number(value["energy_pj"], upath + ("energy_pj",))
                                            if "energy_pj" in value else None),
                                 area_um2=(r.positive_number(value["area_um2"], upath + ("area_um2",))
                                           if "area_um2" in value else None))
        elif isinstance(value, dict):
            if not value:
                raise r.fail(upath, "empty composite unit", hint="write e.g. {as_mac: 6, add: 1}")
            parts = []
            for key, count in value.items():
                part = str(key).removeprefix("as_")
                part = OP_ALIASES.get(part, part)
                if part not in OP_CLASSES:
                    close = difflib.get_close_matches(part, OP_CLASSES, n=1)
                    raise r.fail(upath + (key,), f"unknown op class '{key}' in composite unit",
                                 hint=(f"did you mean '{close[0]}'? " if close else "")
                                 + "write {as_mac: 6, add: 1} (op: count), or {cycles: N} for a dedicated unit")
                parts.append((part, r.positive_int(count, upath + (key,))))
            units[op] = UnitSpec(op, parts=tuple(parts))
        else:
            units[op] = UnitSpec(op, cycles=r.positive_int(value, upath))
    return units


def _read_array(r: _Reader, raw: Any, kind: ArrayKind) -> PEArray:
    path = (kind.key,)
    if kind is ArrayKind.TWO_D:
        body = r.mapping(raw, path, ("rows", "cols", "units", "register_file"))
        rows = r.positive_int(body["rows"], path + ("rows",), MAX_ARRAY_DIM)
        cols = r.positive_int(body["cols"], path + ("cols",), MAX_ARRAY_DIM)
    else:
        body = r.mapping(raw, path, ("width", "units", "register_file"), ("concurrent_units",))
        rows, cols = 1, r.positive_int(body["width"], path + ("width",), MAX_ARRAY_DIM)
    rf_raw = r.mapping(body["register_file"], path + ("register_file",), ("entries", "bits"))
    rf = RegisterFile(r.positive_int(rf_raw["entries"], path + ("register_file", "entries")),
                      r.positive_int(rf_raw["bits"], path + ("register_file", "bits")))
    units = _read_units(r, body["units"], path + ("units",))
    concurrent = r.boolean(body["concurrent_units"], path + ("concurrent_units",)) if "concurrent_units" in body else False
    return PEArray(kind, rows, cols, MappingProxyType(units), rf, concurrent)


def arch_from_dict(data: Any, linemap: LineMap | None = None, *, file: str | None = None) -> Architecture:
    """Validate ``data`` (a parsed arch YAML) and build an :class:`Architecture`.

    ``linemap`` (from :func:`einloom.einsum.yamlio.load_yaml`) lets errors name lines.
    """
    file = file or (linemap.file if linemap is not None else None)
    r = _Reader(linemap, file)
    if isinstance(data, dict) and "rtl" in data:
        missing = [k for k in _TOP_REQUIRED if k not in data]
        if missing:
            raise r.fail((), f"missing required fields {', '.join(missing)}: one architecture file serves the "
                         "cost model, the simulator and the RTL generator (its rtl: section holds only the "
                         "core's own settings)", hint="add them as in examples/archs/rtl-4x4-int8.yaml")
    top = r.mapping(data, (), _TOP_REQUIRED, _TOP_OPTIONAL)
    data_raw = r.mapping(top["data"], ("data",), ("format", "bits"))
    fmt = data_raw["format"]
    if fmt not in DATA_FORMATS:
        close = difflib.get_close_matches(str(fmt), list(DATA_FORMATS), n=1)
        raise r.fail(("data", "format"), f"unknown data format '{fmt}'",
                     hint=(f"did you mean '{close[0]}'? " if close else "") + f"use one of {', '.join(DATA_FORMATS)}")
    bits = r.positive_int(data_raw["bits"], ("data", "bits"))
    if DATA_FORMATS[fmt] is not None and DATA_FORMATS[fmt] != bits:
        raise r.fail(("data", "bits"), f"format {fmt} is {DATA_FORMATS[fmt]} bits, not {bits}",
                     hint=f"write bits: {DATA_FORMATS[fmt]}, or format: fixed for other widths")
    gb_raw = r.mapping(top["global_buffer"], ("global_buffer",), ("capacity_bytes", "row_bits"), ("banks",))
    gb = GlobalBuffer(r.positive_int(gb_raw["capacity_bytes"], ("global_buffer", "capacity_bytes")),
                      r.positive_int(gb_raw["row_bits"], ("global_buffer", "row_bits")),
                      r.positive_int(gb_raw.get("banks", 1), ("global_buffer", "banks")))
    dram_raw = r.mapping(top["dram"], ("dram",), ("bandwidth_GBps",))
    rtl = top.get("rtl")
    if rtl is not None and not isinstance(rtl, dict):
        raise r.fail(("rtl",), f"expected a mapping, got {describe(rtl)}")
    if not isinstance(top.get("description") or "", str) or not isinstance(top.get("source") or "", str):
        key = "description" if not isinstance(top.get("description") or "", str) else "source"
        raise r.fail((key,), f"expected text, got {describe(top[key])}", "quote the text")
    technology_nm = r.positive_int(top.get("technology_nm", DEFAULT_TECHNOLOGY_NM), ("technology_nm",))
    try:
        TechnologyModel(technology_nm)
    except ArchError as exc:
        raise r.fail(("technology_nm",), exc.message, exc.hint) from None
    arch = Architecture(
        name=r.string(top["name"], ("name",)),
        description=str(top.get("description") or ""),
        source=str(top.get("source") or ""),
        clock_mhz=r.positive_number(top["clock_mhz"], ("clock_mhz",)),
        technology_nm=technology_nm,
        data=DataFormat(fmt, bits),
        array_2d=_read_array(r, top["array_2d"], ArrayKind.TWO_D),
        array_1d=_read_array(r, top["array_1d"], ArrayKind.ONE_D),
        global_buffer=gb,
        dram=Dram(r.positive_number(dram_raw["bandwidth_GBps"], ("dram", "bandwidth_GBps"))),
        rtl=MappingProxyType(dict(rtl)) if rtl is not None else None,
        file=file,
        linemap=linemap,
    )
    # Check every declared unit now: composites resolve, dedicated units have energy and area data.
    for pe_array in (arch.array_2d, arch.array_1d):
        for op, spec in pe_array.units.items():
            where = (pe_array.name, "units", op)
            try:
                arch.op_cost(pe_array.kind, op)
                if not spec.is_composite:
                    arch.unit_area_um2(pe_array.kind, op)
            except ArchError as exc:
                raise r.fail(where, exc.message, exc.hint) from None
    return arch


def presets() -> list[str]:
    """Names of the built-in architecture presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_arch(path_or_name: str | Path) -> Architecture:
    """Load an architecture from a YAML file, or a preset by name (see :func:`presets`)."""
    text = str(path_or_name)
    path = Path(text)
    if not (path.suffix in (".yaml", ".yml") or path.exists() or "/" in text):
        preset = PRESET_DIR / f"{text}.yaml"
        if not preset.exists():
            close = difflib.get_close_matches(text, presets(), n=1)
            raise ArchError(f"unknown architecture preset '{text}'",
                            hint=(f"did you mean '{close[0]}'? " if close else "")
                            + f"presets: {', '.join(presets())}; or give a path to a .yaml file")
        path = preset
    data, linemap = load_yaml(path, error=ArchError)
    return arch_from_dict(data, linemap, file=str(path))
