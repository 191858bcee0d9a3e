"""The RTL generator's configuration, read from an architecture YAML and validated at the door.

Keys read (others are ignored; the cost model reads them)::

    name: rtl-4x4-int8
    clock_mhz: 200
    array_2d: {rows: 4, cols: 4}        # R keys per tile (M0 = R) x C queries per block
    array_1d: {width: 4}                # one 1D PE per column: must equal array_2d.cols
    rtl:
      number_format: {kind: fixed, input_bits: 8, frac_bits: 4, acc_bits: 32}   # or preset: int8
      head_dim: 16        # E
      value_dim: 16       # F
      max_keys: 256       # longest M the buffers hold
      max_queries: 64     # longest P the buffers hold
      scale: true         # multiply QK by 1/sqrt(E) (folded into the exp constant)
      tile_m: 4           # optional; must equal array_2d.rows
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from einloom.base.errors import ArchError
from einloom.base.fields import FieldReader, describe
from einloom.base.yamlio import LineMap, load_yaml
from einloom.sim.formats import FormatSpecError, NumberFormat, make_format

RTL_KEYS = {"number_format", "head_dim", "value_dim", "max_keys", "max_queries", "scale", "tile_m"}


@dataclass
class RtlConfig:
    """Everything the generator needs.  Build with :meth:`from_yaml` or :meth:`from_dict`."""

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

    @property
    def tile_m(self) -> int:
        return self.rows

    @property
    def index_bits(self) -> int:
        return max(self.max_keys, self.max_queries).bit_length()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "array_2d": {"rows": self.rows, "cols": self.cols},
                "array_1d": {"width": self.vector_width}, "clock_mhz": self.clock_mhz,
                "rtl": {"number_format": dict(self.format_spec), "head_dim": self.head_dim,
                        "value_dim": self.value_dim, "max_keys": self.max_keys,
                        "max_queries": self.max_queries, "scale": self.scale, "tile_m": self.rows}}

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RtlConfig":
        data, lines = load_yaml(path, error=ArchError)
        return cls.from_dict(data, lines=lines, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, lines: LineMap | None = None, source: str | None = None) -> "RtlConfig":
        lines = lines or LineMap({}, source)
        r = FieldReader(lines, ArchError, file=source)
        r.mapping(data, (), ("array_2d", "rtl"), what="an architecture mapping", open_keys=True)
        name = data.get("name", Path(source).stem if source else "einloom")
        if not isinstance(name, str) or not name.replace("-", "_").replace(".", "_").isidentifier():
            raise r.fail(("name",), f"must be a name of letters, digits, '-', '_', got {describe(name)}")
        a2 = r.mapping(data["array_2d"], ("array_2d",), ("rows", "cols"), what="a mapping {rows, cols}",
                       open_keys=True)
        rows = r.integer(a2["rows"], ("array_2d", "rows"), low=1, high=64)
        cols = r.integer(a2["cols"], ("array_2d", "cols"), low=1, high=64)
        a1 = r.mapping(data.get("array_1d") or {}, ("array_1d",), what="a mapping {width}", open_keys=True)
        width = r.integer(a1.get("width", cols), ("array_1d", "width"), low=1, high=64)
        if width != cols:
            raise r.fail(("array_1d", "width"), f"must equal array_2d.cols ({cols}): the RTL gives each query "
                         "column one 1D PE", f"write 'width: {cols}'")
        clock = r.number(data.get("clock_mhz", 100), ("clock_mhz",), positive=True, high=1e5)
        rtl = r.mapping(data["rtl"], ("rtl",), ("head_dim", "value_dim", "max_keys", "max_queries"),
                        tuple(sorted(RTL_KEYS - {"head_dim", "value_dim", "max_keys", "max_queries"})),
                        what="a mapping of RTL settings")
        e = r.integer(rtl["head_dim"], ("rtl", "head_dim"), low=1, high=1024)
        f = r.integer(rtl["value_dim"], ("rtl", "value_dim"), low=1, high=1024)
        max_keys = r.integer(rtl["max_keys"], ("rtl", "max_keys"), low=1, high=1 << 16)
        max_queries = r.integer(rtl["max_queries"], ("rtl", "max_queries"), low=1, high=1 << 16)
        if "tile_m" in rtl:
            tile = r.integer(rtl["tile_m"], ("rtl", "tile_m"), low=1, high=64)
            if tile != rows:
                raise r.fail(("rtl", "tile_m"), f"must equal array_2d.rows ({rows}): a key tile fills the array's "
                             "rows", f"write 'tile_m: {rows}' or leave it out")
        scale = r.boolean(rtl.get("scale", True), ("rtl", "scale"))

        def err(message: str, *path: Any, hint: str | None = None) -> ArchError:
            return r.fail(path, message, hint)

        spec = rtl.get("number_format", {"kind": "fixed"})
        if not isinstance(spec, dict):
            raise err("must be a mapping", "rtl", "number_format",
                      hint="write e.g. number_format: {kind: fixed, input_bits: 8, frac_bits: 4}")
        try:
            fmt = make_format(spec, head_dim=e, scale=scale, max_keys=max_keys)
        except FormatSpecError as exc:
            path = ("rtl", "number_format", exc.field) if exc.field in spec else ("rtl", "number_format")
            raise ArchError(exc.message, location=lines.at(*path, field=".".join(
                ("rtl", "number_format", exc.field))), hint="see sim/formats/fixed.py for the parameters"
            ) from None
        from einloom.rtl.schedule import schedule_problem
        from einloom.rtl.units import units_for
        units = units_for(fmt)
        problem = schedule_problem(rows, cols, f, rescale_latency=units.rescale_latency,
                                   recip_latency=units.recip_latency, output_latency=units.output_latency)
        if problem:
            where = ("array_2d", "cols") if problem[0] == "array_2d.cols" else ("rtl", "number_format")
            raise err(problem[1], *where, hint="use a larger rtl.value_dim or array_2d.rows, or fewer "
                                               "array_2d.cols")
        return cls(name=name, rows=rows, cols=cols, vector_width=width, clock_mhz=float(clock), head_dim=e,
                   value_dim=f, max_keys=max_keys, max_queries=max_queries, scale=scale, fmt=fmt,
                   format_spec=dict(spec), source=source)
