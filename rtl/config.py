"""The RTL generator's configuration, derived from a validated :class:`~einloom.cost_models.arch.Architecture`.

One architecture file serves the cost model, the simulator and the RTL: :func:`load_arch` reads and
validates it once; :meth:`RtlConfig.from_arch` derives the core from that object (never a second parse
of the file) and checks that the architecture describes the core einloom builds, naming the field
and the value to write when it does not:

* ``array_2d.rows`` = R (keys of a tile, the mapping's M0), ``array_2d.cols`` = C (queries of a
  block), ``array_1d.width`` = C (one softmax lane per query column), R and C at most 64;
* ``data`` is the number format's input width (``int8``/``int16``/``fixed`` for fixed point, ``bf16``);
* the units the core builds exist with the latencies it builds (2D ``mac``; 1D ``max``, ``add``,
  ``exp``, ``mac`` (the RD/RNV rescale), ``mul`` (the output unit), ``recip``), so the simulator
  reads the generated core's latencies from the same file;
* ``global_buffer`` is the core's Q, K, V banks: capacity, bank word (``row_bits``) and bank count;
* the fixed schedule's slack (:mod:`einloom.rtl.schedule`).

RTL-only settings live in the file's ``rtl:`` section::

    rtl:
      number_format: {kind: fixed, input_bits: 8, frac_bits: 4, acc_bits: 32}   # or {kind: bf16}
      head_dim: 16        # E (optional when a workload gives E)
      value_dim: 16       # F (optional when a workload gives F)
      max_keys: 256       # longest M the buffers hold
      max_queries: 64     # longest P the buffers hold
      scale: true         # multiply QK by 1/sqrt(E) (folded into the exp constant)
      tile_m: 4           # optional; must equal array_2d.rows

:meth:`RtlConfig.to_dict` / :meth:`RtlConfig.from_dict` serialize a derived configuration (the
manifest's parameters, the hand-over to the testbench processes); they are not a user format.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from einloom.base.errors import ArchError
from einloom.base.fields import FieldReader, describe
from einloom.sim.formats import FormatSpecError, NumberFormat, make_format

if TYPE_CHECKING:
    from einloom.rtl.units.base import DatapathUnits

RTL_KEYS = {"number_format", "head_dim", "value_dim", "max_keys", "max_queries", "scale", "tile_m", "programmable"}
#: Largest R or C the generator accepts.
MAX_DIM = 64
#: Data formats of the architecture that a fixed-point core's inputs may be declared as.
FIXED_DATA = ("int8", "int16", "fixed")


@dataclass
class RtlConfig:
    """Everything the generator needs.  Build with :meth:`from_arch` (or :meth:`from_yaml`)."""

    name: str
    rows: int
    cols: int
    vector_width: int
    clock_mhz: float
    head_dim: int
    value_dim: int
    max_keys: int
    max_queries: int
    scale: bool
    fmt: NumberFormat
    format_spec: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    #: The controller's key-tile and query-block counters' bounds: the schedule's loop nest
    #: (``rtl.schedule.derive_structure``: ``key_tile`` and ``query_block``); None: what the buffers hold
    key_tiles: int | None = None
    query_blocks: int | None = None
    #: register stages of the 2D PE's multiply (the architecture's ``array_2d.units.mac`` latency less
    #: the accumulate's extra cycles); None: the number format's default (``units.product_latency``)
    mac_latency: int | None = None

    def units(self) -> DatapathUnits:
        """The datapath units of this core: the number format's, with its 2D multiply's depth."""
        from einloom.rtl.units import units_for
        return units_for(self.fmt, self.mac_latency)

    @property
    def tile_m(self) -> int:
        return self.rows

    @property
    def tile_counter_bound(self) -> int:
        """Key tiles per query block the controller counts (its ``cur_tile`` counts 0 .. bound - 1)."""
        return self.key_tiles or -(-self.max_keys // self.rows)

    @property
    def block_counter_bound(self) -> int:
        """Query blocks per run the controller counts (``cur_block``, 0 .. bound - 1)."""
        return self.query_blocks or -(-self.max_queries // self.cols)

    @property
    def tile_bits(self) -> int:
        return max(1, (self.tile_counter_bound - 1).bit_length())

    @property
    def block_bits(self) -> int:
        return max(1, (self.block_counter_bound - 1).bit_length())

    @property
    def keys_limit(self) -> int:
        """Most keys a run may have: the buffers' and the tile counter's reach."""
        return min(self.max_keys, self.tile_counter_bound * self.rows)

    @property
    def queries_limit(self) -> int:
        """Most queries a run may have: the buffers' and the block counter's reach."""
        return min(self.max_queries, self.block_counter_bound * self.cols)

    @property
    def index_bits(self) -> int:
        return max(self.max_keys, self.max_queries).bit_length()

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data (read back by :meth:`from_dict`)."""
        out = {"name": self.name, "array_2d": {"rows": self.rows, "cols": self.cols},
               "array_1d": {"width": self.vector_width}, "clock_mhz": self.clock_mhz,
               "rtl": {"number_format": dict(self.format_spec), "head_dim": self.head_dim,
                       "value_dim": self.value_dim, "max_keys": self.max_keys,
                       "max_queries": self.max_queries, "scale": self.scale, "tile_m": self.rows}}
        if self.key_tiles is not None or self.query_blocks is not None:    # counters from a schedule
            out["counters"] = {"key_tiles": self.tile_counter_bound, "query_blocks": self.block_counter_bound}
        if self.mac_latency is not None:
            out["array_2d"]["mac_latency"] = self.mac_latency
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RtlConfig":
        """A configuration serialized by :meth:`to_dict` (a derived, already validated configuration)."""
        rtl = data["rtl"]
        spec = dict(rtl["number_format"])
        fmt = make_format(spec, head_dim=rtl["head_dim"], scale=rtl["scale"], max_keys=rtl["max_keys"])
        return cls(name=data["name"], rows=data["array_2d"]["rows"], cols=data["array_2d"]["cols"],
                   vector_width=data["array_1d"]["width"], clock_mhz=float(data["clock_mhz"]),
                   head_dim=rtl["head_dim"], value_dim=rtl["value_dim"], max_keys=rtl["max_keys"],
                   max_queries=rtl["max_queries"], scale=rtl["scale"], fmt=fmt, format_spec=spec,
                   key_tiles=data.get("counters", {}).get("key_tiles"),
                   query_blocks=data.get("counters", {}).get("query_blocks"),
                   mac_latency=data["array_2d"].get("mac_latency"))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RtlConfig":
        """Load the architecture file (:func:`einloom.cost_models.arch.load_arch`) and derive the core."""
        from einloom.cost_models.arch import load_arch
        return cls.from_arch(load_arch(path))

    @classmethod
    def from_arch(cls, arch: Any, *, head_dim: int | None = None, value_dim: int | None = None,
                  tile_m: int | None = None, tile_p: int | None = None, key_tiles: int | None = None,
                  query_blocks: int | None = None) -> "RtlConfig":
        """Derive the core from ``arch`` (its arrays, data format, units, buffer and ``rtl:`` section).

        ``head_dim``/``value_dim`` are E and F of a workload (when given they must agree with the
        ``rtl:`` section's, which may then be left out); ``tile_m``/``tile_p`` are the mapping's key
        tile on the 2D rows and query tile on the columns (:func:`einloom.rtl.core_form.check_schedule`);
        ``key_tiles``/``query_blocks`` the bounds of the schedule's key-tile and query-block loops
        (:func:`einloom.rtl.schedule.derive_structure`), which size the controller's counters (default:
        the buffers' depths; at most those).  Raises :class:`ArchError` naming the file, line and field of what the core cannot build.
        """
        r = FieldReader(arch.linemap, ArchError, file=arch.file)
        if arch.rtl is None:
            raise r.fail((), "missing required field 'rtl' (the generated core's own settings)",
                         "add an rtl: section as in examples/archs/rtl-4x4-int8.yaml")
        rows, cols, width = arch.array_2d.rows, arch.array_2d.cols, arch.array_1d.width
        for value, path in ((rows, ("array_2d", "rows")), (cols, ("array_2d", "cols"))):
            if value > MAX_DIM:
                raise r.fail(path, f"{value} is over the limit of {MAX_DIM} of the RTL generator",
                             f"write at most {MAX_DIM}")
        if width != cols:
            raise r.fail(("array_1d", "width"), f"must equal array_2d.cols ({cols}): the RTL gives each query "
                         "column one 1D PE", f"write 'width: {cols}'")
        rtl = r.mapping(dict(arch.rtl), ("rtl",), ("max_keys", "max_queries"),
                        tuple(sorted(RTL_KEYS - {"max_keys", "max_queries"})), what="a mapping of RTL settings")
        e = _dim(r, rtl, "head_dim", "E", head_dim)
        f = _dim(r, rtl, "value_dim", "F", value_dim)
        max_keys = r.integer(rtl["max_keys"], ("rtl", "max_keys"), low=1, high=1 << 16)
        max_queries = r.integer(rtl["max_queries"], ("rtl", "max_queries"), low=1, high=1 << 16)
        if "tile_m" in rtl:
            tile = r.integer(rtl["tile_m"], ("rtl", "tile_m"), low=1, high=MAX_DIM)
            if tile != rows:
                raise r.fail(("rtl", "tile_m"), f"must equal array_2d.rows ({rows}): a key tile fills the array's "
                             "rows", f"write 'tile_m: {rows}' or leave it out")
        _check_tiles(r, rows, cols, tile_m, tile_p)
        scale = r.boolean(rtl.get("scale", True), ("rtl", "scale"))
        spec = rtl.get("number_format", {"kind": "fixed"})
        if not isinstance(spec, dict):
            raise r.fail(("rtl", "number_format"), "must be a mapping",
                         "write e.g. number_format: {kind: fixed, input_bits: 8, frac_bits: 4}")
        try:
            fmt = make_format(spec, head_dim=e, scale=scale, max_keys=max_keys)
        except FormatSpecError as exc:
            path = ("rtl", "number_format", exc.field) if exc.field in spec else ("rtl", "number_format")
            raise r.fail(path, exc.message, "see sim/formats/fixed.py for the parameters") from None
        from einloom.rtl.units import units_for
        _check_data(r, arch, fmt)
        units = _deepened(r, arch, units_for(fmt))
        _check_units(r, arch, units)
        _check_buffer(r, arch, rows, cols, e, f, max_keys, max_queries, fmt.input_bits)
        from einloom.rtl.pe import mac_latency
        from einloom.rtl.schedule import schedule_problem
        from einloom.sim.rtl_core import CoreParams
        problem = schedule_problem(CoreParams(rows, cols, e, f, units.exp_latency, units.recip_latency,
                                              units.output_latency, mac_latency(units),
                                              units.rescale_latency, getattr(units, "acc_latency", 1),
                                              units.lm_register))
        if problem:
            raise r.fail(("rtl", "number_format"), problem[1],
                         "change the array's rows or head_dim, or the number format's acc_latency")
        for bound, most, what in ((key_tiles, -(-max_keys // rows), "key tiles"),
                                  (query_blocks, -(-max_queries // cols), "query blocks")):
            if bound is not None and not 1 <= bound <= most:
                raise r.fail(("rtl", "max_keys" if what == "key tiles" else "max_queries"),
                             f"the schedule has {bound} {what}, the buffers hold {most}",
                             "use a shorter sequence, or raise the buffers")
        return cls(name=_name(r, arch.name), rows=rows, cols=cols, vector_width=width,
                   clock_mhz=float(arch.clock_mhz), head_dim=e, value_dim=f, max_keys=max_keys,
                   max_queries=max_queries, scale=scale, fmt=fmt, format_spec=dict(spec), source=arch.file,
                   key_tiles=key_tiles, query_blocks=query_blocks,
                   mac_latency=None if units.product_latency == units.product_latencies()[0] else units.product_latency)


def load_rtl_config(path: str | Path) -> RtlConfig:
    """The core an architecture file describes (``einloom synth`` calls this)."""
    return RtlConfig.from_yaml(path)


def _name(r: FieldReader, name: str) -> str:
    if not name.replace("-", "_").replace(".", "_").isidentifier():
        raise r.fail(("name",), f"must be a name of letters, digits, '-', '_' (it names the Verilog module), "
                     f"got {describe(name)}")
    return name


def _dim(r: FieldReader, rtl: dict, key: str, rank: str, given: int | None) -> int:
    """E or F: the rtl section's, the workload's, and they agree when both are given."""
    if key not in rtl:
        if given is None:
            raise r.fail(("rtl",), f"missing required field '{key}' ({rank})",
                         f"add rtl.{key}, or give a workload (--workload) whose {rank} the core is built for")
        return given
    value = r.integer(rtl[key], ("rtl", key), low=1, high=1024)
    if given is not None and given != value:
        raise r.fail(("rtl", key), f"the core is built for {rank} = {value}, but the workload has {rank} = {given}",
                     f"use a workload with {rank} = {value}, or write '{key}: {given}' (or leave it out)")
    return value


def _check_tiles(r: FieldReader, rows: int, cols: int, tile_m: int | None, tile_p: int | None) -> None:
    if tile_m is not None and tile_m != rows:
        raise r.fail(("array_2d", "rows"), f"the mapping's key tile is {tile_m}, but the core's tile is the "
                     f"{rows} rows of the 2D array (M0 = R)", f"map M0 = {rows} on the 2D rows")
    if tile_p is not None and tile_p > cols:
        raise r.fail(("array_2d", "cols"), f"the mapping spreads {tile_p} queries over the 2D columns, which "
                     f"are {cols}", f"map at most {cols} queries on the columns")


def _check_data(r: FieldReader, arch: Any, fmt: NumberFormat) -> None:
    want = ("bf16",) if fmt.kind == "bf16" else FIXED_DATA if fmt.kind == "fixed" else (arch.data.format,)
    if arch.data.format not in want or arch.data.bits != fmt.input_bits:
        example = "bf16" if fmt.kind == "bf16" else {8: "int8", 16: "int16"}.get(fmt.input_bits, "fixed")
        raise r.fail(("data",), f"{arch.data.format} with {arch.data.bits} bits, but the core's number format "
                     f"({fmt.kind}) takes {fmt.input_bits}-bit inputs",
                     f"write data: {{format: {example}, bits: {fmt.input_bits}}}")


def _deepened(r: FieldReader, arch: Any, units: DatapathUnits) -> DatapathUnits:
    """The units with the 2D multiply as deep as the architecture's ``array_2d.units.mac`` latency asks,
    where the format builds that depth (fixed point: 3 to 6 stages; :meth:`with_product_latency`)."""
    spec = arch.array("2d").units.get("mac")
    if spec is None or spec.is_composite or spec.latency is None:
        return units                      # _check_units names what is missing
    from einloom.rtl.pe import acc_latency
    depth = spec.latency - (acc_latency(units) - 1)
    if depth == units.product_latency:
        return units
    try:
        return units.with_product_latency(depth)
    except ValueError:
        extra = acc_latency(units) - 1
        low, high = units.product_latencies()[0] + extra, units.product_latencies()[-1] + extra
        span = f"latency {low}" if low == high else f"a latency of {low} to {high}"
        raise r.fail(("array_2d", "units", "mac"), f"gives latency {spec.latency} for its 'mac' unit; the "
                     f"generated core's {units.fmt.kind} mac has {span}",
                     f"write array_2d.units.mac: {{cycles: 1, latency: {units.product_latency + extra}}}") from None


def _check_units(r: FieldReader, arch: Any, units: Any) -> None:
    """Each unit the core builds is declared, dedicated, with the latency the core builds."""
    from einloom.rtl.pe import mac_latency
    lat = getattr(units, "acc_latency", 1)     # a pipelined accumulate: the partial sum L - 1 later, SLD's add L
    built = {("2d", "mac"): mac_latency(units) + lat - 1, ("1d", "max"): 1, ("1d", "add"): lat,
             ("1d", "exp"): units.exp_latency, ("1d", "mac"): units.rescale_latency,
             ("1d", "mul"): units.output_latency, ("1d", "recip"): units.recip_latency}
    for (array, unit), latency in built.items():
        key = f"array_{array}"
        spec = arch.array(array).units.get(unit)
        if spec is None or spec.is_composite or spec.latency != latency:
            where = (key, "units", unit) if spec is not None else (key, "units")
            what = ("has no" if spec is None else "composes its" if spec.is_composite else
                    f"gives latency {spec.latency} for its" if spec.latency is not None else "gives no latency for its")
            raise r.fail(where, f"{key} {what} '{unit}' unit; the generated core's has latency {latency}",
                         f"write {key}.units.{unit}: {{cycles: 1, latency: {latency}}}")


def _check_buffer(r: FieldReader, arch: Any, rows: int, cols: int, e: int, f: int, max_keys: int,
                  max_queries: int, bits: int) -> None:
    """The global buffer is the core's Q (C banks) and K, V (R banks each) memories."""
    q = -(-max_queries // cols) * cols * e
    kv = -(-max_keys // rows) * rows * (e + f)
    want = {"capacity_bytes": (q + kv) * bits // 8, "row_bits": max(e, f) * bits, "banks": cols + 2 * rows}
    gb = arch.global_buffer
    for key, value in want.items():
        if getattr(gb, key) != value:
            raise r.fail(("global_buffer", key), f"is {getattr(gb, key)}, but the core's Q, K, V buffers "
                         f"(max_queries {max_queries} x E {e}, max_keys {max_keys} x (E {e} + F {f}), {bits}-bit "
                         f"elements, C + 2R banks) have {key} {value}", f"write {key}: {value}")
