"""The sweep file: what to vary, how to sample it, what to evaluate at each point, what to prune.

Sweep YAML::

    name: bert-llama-array-buffer
    description: array size x buffer size for BERT 4K and Llama-3-8B 32K
    arch: fusemax-cloud                  # base architecture: a preset name or a .yaml file
    variants: [fusemax-1pass]            # cascades: library names or spec files
    # ... or, instead of arch / variants / mapping, configurations each with their own:
    # configurations:
    #   - {name: FLAT, variant: softmax-3pass, arch: flat-cloud, mapping: flat}
    #   - {name: FuseMax, variant: fusemax-1pass, arch: fusemax-cloud, mapping: fusemax}
    workloads:                           # model presets / files, each at its sequence lengths
      - {model: bert, seq_len: 4K}
      - {model: llama3-8b, seq_len: [8K, 32K]}
    scope: attention                     # attention | end_to_end (adds the layer's linear layers)
    mapping: auto                        # auto | a baseline (fusemax, flat, unfused) | a mapping .yaml
                                         # | {search: {objective: edp, max_families: 40}}
                                         # | {auto: {objective: edp, max_families: 40}}
    parameters:                          # any field of the architecture file, by dotted path
      - name: array                      # label in reports (default: the path)
        paths: [array_2d.rows, array_2d.cols, array_1d.width]   # several paths move together
        values: [64, 128, 256, 512]
      - name: buffer
        path: global_buffer.capacity_bytes
        values: [4MiB, 16MiB, 64MiB]     # byte sizes may have KiB/MiB/GiB suffixes
      - path: clock_mhz
        range: [500, 1500]               # random / lhs sampling only; log: true, integer: true
    sampling: grid                       # grid | {method: random, samples: 200} | {method: lhs, samples: 200}
    seed: 0                              # random and lhs draw from this seed: same file, same points
    constraints:                         # prune points before they are evaluated
      area_mm2: 600                      # at most this area (cost_models.area roll-up)
      peak_power_W: 400                  # at most this peak power (every unit and port busy each cycle)
      working_set_fits: true             # one instance's inputs + outputs fit the global buffer
    timeout_s: 60                        # optional: a point still running after this is failed ("timed out")
    synth: {target: ecp5, max_pes: 16, pnr: false}   # optional: FPGA synthesis of small designs
    simulate: {instances: 2, slice: 4}   # optional (or true): the cycle-level simulator per point, on
                                         # that many instances and outer tile iterations, extrapolated
    output: results/sweeps/NAME          # default results/sweeps/<name>

``mapping: auto`` uses the mapper's baseline whose cascade is the variant (e.g. FuseMax's for
``fusemax-1pass``) and a bounded search for every other variant (``{auto: {...}}`` sets that search's
objective and bound).  A search is bounded by
``max_families`` (deterministic); a ``budget_s`` time budget is allowed but makes a point's result
depend on the speed of the machine that evaluates it, and so does ``timeout_s`` (which points time
out).  ``timeout_s`` runs each point in a forked child process (POSIX), a few ms more per point.

:func:`load_sweep` validates everything once (each parameter value is applied to the base
architecture and re-validated by the architecture reader), so a typo is reported at its line in the
sweep file with exit status 2, before any point runs.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from einloom.einsum.errors import EinloomError
from einloom.sweep.archdoc import build_arch, check_path, load_arch_document, with_overrides
from einloom.sweep.errors import SweepError

_TOP_REQUIRED = ("workloads",)
_TOP_OPTIONAL = ("name", "description", "arch", "variants", "configurations", "scope", "mapping", "parameters",
                 "sampling", "seed", "constraints", "timeout_s", "simulate", "synth", "output")
_PARAM_KEYS = ("name", "path", "paths", "values", "range", "log", "integer")
_CONSTRAINT_KEYS = ("area_mm2", "peak_power_W", "working_set_fits")
_SEARCH_KEYS = ("objective", "max_families", "budget_s")
_SYNTH_KEYS = ("target", "max_pes", "pnr", "part")
SAMPLING_METHODS = ("grid", "random", "lhs")
SCOPES = ("attention", "end_to_end")
OBJECTIVES = ("latency", "energy", "edp")
FPGA_TARGETS = ("ecp5", "xilinx", "ice40")
_BYTE_SUFFIX = {"": 1, "B": 1, "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "KB": 10 ** 3, "MB": 10 ** 6,
                "GB": 10 ** 9}
_SEQ_SUFFIX = {"": 1, "K": 1024, "M": 1024 ** 2}


@dataclass(frozen=True)
class Parameter:
    """One swept quantity: the architecture fields it writes and its values or its range.

    ``values`` (a list) serves every sampling method; ``low``/``high`` (a range, with ``log`` and
    ``integer``) serve random and Latin-hypercube sampling.
    """

    name: str
    paths: tuple[str, ...]
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        return not self.values


@dataclass(frozen=True)
class WorkloadPoint:
    """A workload (preset name or file) at one sequence length."""

    model: str
    seq_len: int

    @property
    def label(self) -> str:
        return f"{Path(self.model).stem} {format_count(self.seq_len)}"


@dataclass(frozen=True)
class MappingSettings:
    """How each point gets its mapping: ``kind`` is ``auto``, ``baseline``, ``file`` or ``search``."""

    kind: str
    name: str | None = None               # baseline name or mapping file
    objective: str = "edp"
    max_families: int = 40
    budget_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind in ("baseline", "file"):
            out["name"] = self.name
        if self.kind in ("auto", "search"):
            out.update(objective=self.objective, max_families=self.max_families, budget_s=self.budget_s)
        return out


@dataclass(frozen=True)
class Constraints:
    """Limits checked before a point is evaluated (None: no limit)."""

    area_mm2: float | None = None
    peak_power_W: float | None = None
    working_set_fits: bool = False


@dataclass(frozen=True)
class SynthSettings:
    """FPGA synthesis of designs whose 2D array has at most ``max_pes`` PEs (and an ``rtl:`` section)."""

    target: str
    max_pes: int = 16
    pnr: bool = False
    part: str | None = None


@dataclass(frozen=True)
class Configuration:
    """A variant on a base architecture under a mapping: the swept parameters apply to its architecture."""

    name: str
    variant: str                       # cascade reference (library name or spec file)
    arch: str                          # architecture reference (preset or file)
    arch_file: str
    arch_document: Mapping[str, Any]
    mapping: MappingSettings

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "variant": self.variant, "arch": self.arch, "arch_file": self.arch_file,
                "mapping": self.mapping.to_dict()}


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file (see the module docstring)."""

    name: str
    configurations: tuple[Configuration, ...]
    workloads: tuple[WorkloadPoint, ...]
    parameters: tuple[Parameter, ...] = ()
    sampling: str = "grid"
    samples: int = 0
    seed: int = 0
    scope: str = "attention"
    constraints: Constraints = Constraints()
    synth: SynthSettings | None = None
    simulate: dict[str, int] | None = None
    timeout_s: float | None = None
    output: str = ""
    description: str = ""
    file: str | None = None
    text: str = field(default="", repr=False)

    @property
    def variants(self) -> tuple[str, ...]:
        """The configurations' variants, each once, in file order."""
        return tuple(dict.fromkeys(c.variant for c in self.configurations))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, stored with the results so reports need nothing else."""
        archs = list(dict.fromkeys(c.arch for c in self.configurations))
        return {"name": self.name, "description": self.description, "arch": ", ".join(archs),
                "configurations": [c.to_dict() for c in self.configurations], "variants": list(self.variants),
                "workloads": [{"model": w.model, "seq_len": w.seq_len, "label": w.label} for w in self.workloads],
                "parameters": [{"name": p.name, "paths": list(p.paths), "values": list(p.values), "low": p.low,
                                "high": p.high, "log": p.log, "integer": p.integer} for p in self.parameters],
                "sampling": self.sampling, "samples": self.samples, "seed": self.seed, "scope": self.scope,
                "mapping": ("; ".join(f"{c.name}: {c.mapping.to_dict()}" for c in self.configurations)
                            if len({repr(c.mapping) for c in self.configurations}) > 1
                            else self.configurations[0].mapping.to_dict()),
                "constraints": {"area_mm2": self.constraints.area_mm2,
                                "peak_power_W": self.constraints.peak_power_W,
                                "working_set_fits": self.constraints.working_set_fits},
                "synth": None if self.synth is None else vars(self.synth).copy(), "timeout_s": self.timeout_s,
                "output": self.output, "file": self.file}


def format_count(n: int) -> str:
    """1024 -> '1K', 32768 -> '32K', 2**20 -> '1M'."""
    for suffix, scale in (("M", 1024 ** 2), ("K", 1024)):
        if n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def format_bytes(n: float) -> str:
    """65536 -> '64 KiB', 16777216 -> '16 MiB'."""
    for suffix, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale and n % scale == 0:
            return f"{int(n // scale)} {suffix}"
    return f"{n:g} B"


def parse_quantity(value: Any) -> Any:
    """A parameter value: numbers and strings stay; ``'16MiB'``/``'4 KiB'``/``'2MB'`` become ints."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)\s*", value, flags=re.IGNORECASE)
        if match:
            number = float(match.group(1)) * _BYTE_SUFFIX[match.group(2).upper()]
            if number.is_integer():
                return int(number)
    return value


def parse_seq_len(value: Any) -> int:
    """``4096``, ``'4K'`` (= 4096), ``'1M'`` -> an int; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", str(value))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(value)
    return int(match.group(1)) * _SEQ_SUFFIX[match.group(2).upper()]


class _Reader:
    """Turns a bad field into a SweepError at its line."""

    def __init__(self, linemap: Any, file: str):
        self.linemap = linemap
        self.file = file

    def fail(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> SweepError:
        return SweepError(message, location=self.linemap.at(*path), hint=hint)

    def mapping(self, value: Any, path: tuple[Any, ...], required: Sequence[str], allowed: Sequence[str]
                ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_describe(value)}",
                            hint="write {" + ", ".join(f"{k}: ..." for k in (required or allowed[:2])) + "}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), list(allowed), n=1)
                raise self.fail(path + (key,), f"unknown key '{key}'",
                                hint=(f"did you mean '{close[0]}'? " if close else "")
                                + f"allowed keys: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                raise self.fail(path, f"missing required field '{key}'",
                                hint=f"add '{key}:' under {'.'.join(map(str, path)) or 'the top level'}")
        return value

    def string(self, value: Any, path: tuple[Any, ...], what: str = "a non-empty string") -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"expected {what}, got {_describe(value)}")
        return value.strip()

    def items(self, value: Any, path: tuple[Any, ...], what: str) -> list[tuple[Any, tuple[Any, ...]]]:
        """A scalar or a non-empty list, as (item, path of the item) pairs."""
        if isinstance(value, list):
            if not value:
                raise self.fail(path, f"expected at least one {what}")
            return [(v, path + (i,)) for i, v in enumerate(value)]
        return [(value, path)]

    def number(self, value: Any, path: tuple[Any, ...], *, positive: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and not value > 0):
            raise self.fail(path, f"expected a {'positive ' if positive else ''}number, got {_describe(value)}")
        return float(value)

    def positive_int(self, value: Any, path: tuple[Any, ...]) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(path, f"expected a positive integer, got {_describe(value)}")
        return value

    def boolean(self, value: Any, path: tuple[Any, ...]) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_describe(value)}")
        return value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _resolve(ref: str, base: Path) -> str:
    """A file reference relative to the sweep file's folder when it exists there; names stay names."""
    candidate = base / ref
    if not Path(ref).is_absolute() and candidate.exists():
        return str(candidate)
    return ref


def load_sweep(path: str | Path) -> Sweep:
    """Parse and validate a sweep file; every reference and parameter value is checked here."""
    from einloom.einsum.yamlio import load_yaml
    file = str(path)
    data, linemap = load_yaml(file, error=SweepError)
    text = Path(file).read_text()
    base = Path(file).parent
    r = _Reader(linemap, file)
    top = r.mapping(data if data is not None else {}, (), _TOP_REQUIRED, _TOP_REQUIRED + _TOP_OPTIONAL)
    name = r.string(top.get("name", Path(file).stem), ("name",))

    configurations = _read_configurations(r, top, base)
    workloads = _read_workloads(r, top["workloads"], base)

    scope = r.string(top.get("scope", "attention"), ("scope",))
    if scope not in SCOPES:
        raise r.fail(("scope",), f"unknown scope '{scope}'", hint="write attention or end_to_end")

    parameters = _read_parameters(r, top.get("parameters") or [], configurations)
    sampling, samples = _read_sampling(r, top.get("sampling", "grid"), parameters)
    seed = top.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise r.fail(("seed",), f"expected a non-negative integer seed, got {_describe(seed)}")

    return Sweep(name=name, configurations=configurations,
                 workloads=tuple(workloads), parameters=tuple(parameters), sampling=sampling, samples=samples,
                 seed=seed, scope=scope, constraints=_read_constraints(r, top.get("constraints") or {}),
                 synth=_read_synth(r, top.get("synth")), simulate=_read_simulate(r, top.get("simulate")),
                 timeout_s=None if top.get("timeout_s") is None else r.number(top["timeout_s"], ("timeout_s",)),
                 output=r.string(top.get("output", f"results/sweeps/{name}"), ("output",)),
                 description=str(top.get("description") or ""), file=file, text=text)


def _read_configurations(r: _Reader, top: Mapping[str, Any], base: Path) -> tuple[Configuration, ...]:
    """``arch`` x ``variants`` under ``mapping``, or the explicit ``configurations`` list."""
    has_list = "configurations" in top
    if has_list == ("variants" in top):
        raise r.fail((), "a sweep needs exactly one of 'variants' (with 'arch') and 'configurations'",
                     hint="write arch: fusemax-cloud and variants: [fusemax-1pass], or configurations: "
                          "[{name: FuseMax, variant: fusemax-1pass, arch: fusemax-cloud, mapping: fusemax}]")
    if not has_list:
        if "arch" not in top:
            raise r.fail((), "missing required field 'arch'", hint="add 'arch:' (a preset name or a .yaml file)")
        arch, document, arch_file = _read_arch(r, top["arch"], ("arch",), base)
        mapping = _read_mapping(r, top.get("mapping", "auto"), base, ("mapping",))
        variants = [_read_variant(r, v, p, base) for v, p in r.items(top["variants"], ("variants",), "variant")]
        if len(set(variants)) != len(variants):
            raise r.fail(("variants",), "a variant is listed twice")
        return tuple(Configuration(Path(v).stem, v, arch, arch_file, document, mapping) for v in variants)
    for key in ("arch", "mapping"):
        if key in top:
            raise r.fail((key,), f"'{key}' goes inside each configuration when 'configurations' is used")
    out: list[Configuration] = []
    for raw, path in r.items(top["configurations"], ("configurations",), "configuration"):
        c = r.mapping(raw, path, ("variant", "arch"), ("name", "variant", "arch", "mapping"))
        variant = _read_variant(r, c["variant"], path + ("variant",), base)
        name = r.string(c.get("name", Path(variant).stem), path + ("name",))
        if any(o.name == name for o in out):
            raise r.fail(path + ("name",), f"configuration name '{name}' is used twice", hint="name each one")
        arch, document, arch_file = _read_arch(r, c["arch"], path + ("arch",), base)
        out.append(Configuration(name, variant, arch, arch_file, document,
                                 _read_mapping(r, c.get("mapping", "auto"), base, path + ("mapping",))))
    return tuple(out)


def _read_arch(r: _Reader, value: Any, path: tuple[Any, ...], base: Path) -> tuple[str, dict[str, Any], str]:
    ref = _resolve(r.string(value, path, "an architecture preset or file"), base)
    try:
        document, arch_file = load_arch_document(ref)
    except EinloomError as exc:
        raise r.fail(path, str(exc)) from None
    return ref, document, arch_file


def _read_variant(r: _Reader, value: Any, path: tuple[Any, ...], base: Path) -> str:
    from einloom.einsum.loader import load_cascade
    ref = _resolve(r.string(value, path, "a variant (library name or spec file)"), base)
    try:
        load_cascade(ref)
    except EinloomError as exc:
        raise r.fail(path, str(exc)) from None
    return ref


def _read_workloads(r: _Reader, raw: Any, base: Path) -> list[WorkloadPoint]:
    from einloom.cost_models.workload import load_workload
    out: list[WorkloadPoint] = []
    for item, path in r.items(raw, ("workloads",), "workload"):
        w = r.mapping(item, path, ("model",), ("model", "seq_len"))
        model = _resolve(r.string(w["model"], path + ("model",), "a workload preset or file"), base)
        try:
            loaded = load_workload(model)
        except EinloomError as exc:
            raise r.fail(path + ("model",), str(exc)) from None
        lens = [(loaded.seq_len_kv, path)] if "seq_len" not in w else r.items(w["seq_len"], path + ("seq_len",),
                                                                             "sequence length")
        for value, vpath in lens:
            try:
                n = parse_seq_len(value)
            except ValueError:
                raise r.fail(vpath, f"expected a sequence length, got {_describe(value)}",
                             hint="write a positive integer such as 4096, or 4K / 1M (K = 1024)") from None
            point = WorkloadPoint(model, n)
            if point in out:
                raise r.fail(vpath, f"workload {point.label} is listed twice")
            out.append(point)
    return out


def _read_parameters(r: _Reader, raw: Any, configurations: Sequence[Configuration]) -> list[Parameter]:
    documents = list({c.arch_file: c.arch_document for c in configurations}.values())
    if not isinstance(raw, list):
        raise r.fail(("parameters",), f"expected a list of parameters, got {_describe(raw)}",
                     hint="write - {path: array_2d.rows, values: [64, 128, 256]}")
    out: list[Parameter] = []
    for i, item in enumerate(raw):
        path = ("parameters", i)
        p = r.mapping(item, path, (), _PARAM_KEYS)
        if ("path" in p) == ("paths" in p):
            raise r.fail(path, "a parameter needs exactly one of 'path' and 'paths'",
                         hint="write path: array_2d.rows, or paths: [array_2d.rows, array_2d.cols]")
        paths = [r.string(v, pp, "a dotted field path") for v, pp in
                 r.items(p.get("path", p.get("paths")), path + (("path",) if "path" in p else ("paths",)), "path")]
        for k, field_path in enumerate(paths):
            try:
                for document in documents:
                    check_path(document, field_path)
            except ValueError as exc:
                raise r.fail(path + (("path",) if "path" in p else ("paths", k)), str(exc)) from None
        name = r.string(p.get("name", paths[0]), path + ("name",))
        if any(q.name == name for q in out):
            raise r.fail(path + ("name",), f"parameter name '{name}' is used twice")
        if ("values" in p) == ("range" in p):
            raise r.fail(path, f"parameter '{name}' needs exactly one of 'values' and 'range'",
                         hint="write values: [64, 128, 256], or range: [64, 512] (random/lhs sampling)")
        log = r.boolean(p.get("log", False), path + ("log",))
        integer = r.boolean(p.get("integer", False), path + ("integer",))
        if "values" in p:
            values = [(parse_quantity(v), vp) for v, vp in r.items(p["values"], path + ("values",), "value")]
            for value, vpath in values:
                for document in documents:
                    _check_value(r, document, paths, value, vpath)
            if len({repr(v) for v, _ in values}) != len(values):
                raise r.fail(path + ("values",), f"parameter '{name}' lists a value twice")
            out.append(Parameter(name, tuple(paths), tuple(v for v, _ in values), log=log, integer=integer))
            continue
        rng = p["range"]
        if not isinstance(rng, list) or len(rng) != 2:
            raise r.fail(path + ("range",), f"expected [low, high], got {_describe(rng)}", hint="write range: [64, 512]")
        low, high = (r.number(parse_quantity(v), path + ("range", k), positive=log) for k, v in enumerate(rng))
        if not low < high:
            raise r.fail(path + ("range",), f"low {low:g} is not below high {high:g}")
        for k, bound in enumerate((low, high)):
            for document in documents:
                _check_value(r, document, paths, int(round(bound)) if integer else bound, path + ("range", k))
        out.append(Parameter(name, tuple(paths), (), low, high, log, integer))
    return out


def _check_value(r: _Reader, document: Mapping[str, Any], paths: Sequence[str], value: Any,
                 where: tuple[Any, ...]) -> None:
    """Apply one value to the base architecture and run the architecture reader on the result."""
    try:
        build_arch(with_overrides(document, {p: value for p in paths}), "architecture")
    except SweepError as exc:
        raise r.fail(where, f"value {value!r} gives an invalid {exc.message}", exc.hint) from None


def _read_sampling(r: _Reader, raw: Any, parameters: Sequence[Parameter]) -> tuple[str, int]:
    if isinstance(raw, str):
        raw = {"method": raw}
    s = r.mapping(raw, ("sampling",), ("method",), ("method", "samples"))
    method = r.string(s["method"], ("sampling", "method"))
    if method not in SAMPLING_METHODS:
        close = difflib.get_close_matches(method, SAMPLING_METHODS, n=1)
        raise r.fail(("sampling", "method"), f"unknown sampling method '{method}'",
                     hint=(f"did you mean '{close[0]}'? " if close else "") + "write grid, random or lhs")
    if method == "grid":
        if "samples" in s:
            raise r.fail(("sampling", "samples"), "a grid has no sample count",
                         hint="drop samples:, or use method: random / lhs")
        ranged = [p.name for p in parameters if p.is_range]
        if ranged:
            raise r.fail(("parameters",), f"parameter '{ranged[0]}' has a range, which a grid cannot enumerate",
                         hint="give it values: [...], or use sampling: {method: lhs, samples: N}")
        return method, 0
    if "samples" not in s:
        raise r.fail(("sampling",), f"{method} sampling needs samples: N", hint=f"write {{method: {method}, samples: 100}}")
    if not parameters:
        raise r.fail(("sampling",), f"{method} sampling needs parameters to sample")
    return method, r.positive_int(s["samples"], ("sampling", "samples"))


def _read_mapping(r: _Reader, raw: Any, base: Path, at: tuple[Any, ...]) -> MappingSettings:
    from einloom.mapper.baselines import BASELINES
    if isinstance(raw, str):
        text = raw.strip()
        if text == "auto":
            return MappingSettings("auto")
        if text.lower() in BASELINES:
            return MappingSettings("baseline", text.lower())
        if text.endswith((".yaml", ".yml")) or "/" in text:
            from einloom.mapper.mapping import load_mapping
            ref = _resolve(text, base)
            try:
                load_mapping(ref)
            except EinloomError as exc:
                raise r.fail(at, str(exc)) from None
            return MappingSettings("file", str(Path(ref).resolve()))
        close = difflib.get_close_matches(text, list(BASELINES) + ["auto"], n=1)
        raise r.fail(at, f"unknown mapping '{text}'",
                     hint=(f"did you mean '{close[0]}'? " if close else "")
                     + f"write auto, a baseline ({', '.join(BASELINES)}), a mapping .yaml or {{search: {{...}}}}")
    m = r.mapping(raw, at, (), ("search", "auto"))
    if len(m) != 1:
        raise r.fail(at, "write one of {search: {...}} and {auto: {...}}",
                     hint="auto: baselines where they apply and a search with these settings elsewhere")
    kind = next(iter(m))
    where = at + (kind,)
    s = r.mapping(m[kind] or {}, where, (), _SEARCH_KEYS)
    objective = r.string(s.get("objective", "edp"), where + ("objective",))
    if objective not in OBJECTIVES:
        raise r.fail(where + ("objective",), f"unknown objective '{objective}'", hint="write latency, energy or edp")
    budget = s.get("budget_s")
    return MappingSettings(kind, objective=objective,
                           max_families=r.positive_int(s.get("max_families", 40), where + ("max_families",)),
                           budget_s=None if budget is None else r.number(budget, where + ("budget_s",)))


def _read_constraints(r: _Reader, raw: Any) -> Constraints:
    c = r.mapping(raw, ("constraints",), (), _CONSTRAINT_KEYS)
    return Constraints(
        area_mm2=None if c.get("area_mm2") is None else r.number(c["area_mm2"], ("constraints", "area_mm2")),
        peak_power_W=None if c.get("peak_power_W") is None else r.number(c["peak_power_W"],
                                                                         ("constraints", "peak_power_W")),
        working_set_fits=r.boolean(c.get("working_set_fits", False), ("constraints", "working_set_fits")))


def _read_simulate(r: _Reader, raw: Any) -> dict[str, int] | None:
    """``simulate: true`` or ``{instances: K, slice: B}``: simulate K instances and B outer tile
    iterations per point and extrapolate (the simulator says whether that was exact)."""
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    s = r.mapping(raw, ("simulate",), (), ("instances", "slice"))
    return {"instances": r.positive_int(s.get("instances", 2), ("simulate", "instances")),
            "slice": r.positive_int(s.get("slice", 4), ("simulate", "slice"))}


def _read_synth(r: _Reader, raw: Any) -> SynthSettings | None:
    if raw is None or raw is False:
        return None
    s = r.mapping(raw, ("synth",), ("target",), _SYNTH_KEYS)
    target = r.string(s["target"], ("synth", "target"))
    if target not in FPGA_TARGETS:
        raise r.fail(("synth", "target"), f"unknown FPGA target '{target}'", hint="write ecp5, xilinx or ice40")
    part = s.get("part")
    return SynthSettings(target, r.positive_int(s.get("max_pes", 16), ("synth", "max_pes")),
                         r.boolean(s.get("pnr", False), ("synth", "pnr")),
                         None if part is None else r.string(part, ("synth", "part")))
