"""Experiments: a batch of (model x sequence length x configuration x scope) evaluations, from one YAML.

An experiment file says which transformer models to evaluate at which sequence lengths, on which
configurations (cascade + architecture + mapping), for attention alone and/or the whole layer, which
configuration the others are normalised to, and optionally an area-vs-latency sweep over array sizes.
:func:`load_experiment` validates it (errors name file, line and field); :func:`run_experiment`
evaluates every point (with a tqdm progress bar on stderr) and returns :class:`ExperimentResults`,
which :meth:`ExperimentResults.write` saves as ``results.json`` and ``results.csv``.  The report
(figures, ``summary.md``, ``summary.html``) is regenerated from ``results.json`` by
:func:`einloom.report.experiment.write_report`.

Experiment YAML::

    name: fusemax-paper
    description: FuseMax Figs 6-12
    models: [bert, trxl, t5, xlm]          # workload presets or workload .yaml files
    seq_lens: [1K, 4K, 16K, 64K, 256K, 1M] # integers, or K/M suffixes (powers of 2: 1K = 1024)
    scope: both                            # attention | end_to_end | both
    baseline: Unfused                      # configuration the figures are normalised to
    compare_to: [Unfused, FLAT]            # optional: summary tables of mean ratios vs these
    configurations:
      - {name: Unfused, cascade: softmax-3pass, arch: flat-cloud, mapping: unfused}
      - {name: FLAT, cascade: softmax-3pass, arch: flat-cloud, mapping: flat}
      - {name: FuseMax, cascade: fusemax-1pass, arch: fusemax-cloud, mapping: fusemax}
      - {name: Searched, cascade: fusemax-1pass, arch: fusemax-cloud, search: {objective: latency}}
    activity: {model: bert, seq_len: 64K}  # optional: the point of the per-Einsum activity figure
    area_sweep:                            # optional: Fig 12
      model: bert
      seq_len: 256K
      sizes: [16, 32, 64, 128, 256, 512]   # 2D array is size x size, 1D array has size PEs
      configurations: [FLAT, FuseMax]      # default: all
    reference:                             # optional: published results shown next to einloom's
      source: Nayak et al., MICRO 2024 (abstract); FuseMax artifact data/pregenerated/*.csv
      headline:
        - {scope: attention, configuration: FuseMax, versus: FLAT, speedup: 6.7, energy_ratio: 0.79}
      points: fusemax-artifact-points.csv  # model,seq_len,configuration,scope,latency_s,energy_pj,util_2d
    gpu_baselines:                         # optional: vs measured GPU kernels (einloom/gpu_compare.py)
      accelerator: FuseMax
      extra_points: [{model: llama3-8b-decode, seq_len: 32K}]
    output: results/fusemax-paper          # default results/<name>; relative to the working directory

``mapping`` is a baseline mapping name (given to the mapper) or a mapping ``.yaml`` file; ``search``
asks the mapper's search for the best mapping under ``objective``.  Relative file paths (models,
cascades, archs, mappings) are resolved against the experiment file's folder first.

The evaluator is injected: :func:`run_experiment` takes ``evaluate_point(point) -> dict`` and defaults
to :func:`mapper_evaluate_point`, the adapter to :mod:`einloom.mapper`.  The dict has at least
``latency_s`` and ``energy_pj``; ``util_2d``, ``util_1d``, ``dram_bytes``, ``area_um2``,
``energy_breakdown_pj``, ``actions`` and ``per_einsum_activity_2d`` are recorded when present.
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from einloom.base.errors import EinloomError, ExperimentError, Location
from einloom.base.fields import FieldReader, describe, parse_size
from einloom.base.limits import MAX_ARRAY_DIM, MAX_SEQ_LEN
from einloom.base.yamlio import LineMap, load_yaml, read_user_file

SCOPES: tuple[str, ...] = ("attention", "end_to_end")
_TOP_KEYS_REQUIRED = ("models", "seq_lens", "configurations")
_TOP_KEYS_OPTIONAL = ("name", "description", "scope", "baseline", "compare_to", "activity", "area_sweep", "reference",
                      "gpu_baselines", "output")
_CONFIG_KEYS = ("name", "cascade", "arch", "mapping", "search", "description")
_SWEEP_KEYS = ("model", "seq_len", "sizes", "configurations")
_REFERENCE_KEYS = ("source", "headline", "points")
_HEADLINE_KEYS = ("scope", "configuration", "versus", "speedup", "energy_ratio")
#: Columns of a reference points CSV (util_2d may be empty).
REFERENCE_COLUMNS = ("model", "seq_len", "configuration", "scope", "latency_s", "energy_pj", "util_2d")
#: Scalar metrics copied into results.csv (when the evaluator reports them).
METRICS: tuple[str, ...] = ("latency_s", "energy_pj", "util_2d", "util_1d", "dram_bytes", "area_um2")
#: Structured metrics kept in results.json only (per-Einsum activity also goes to CSV columns).
DETAILS: tuple[str, ...] = ("energy_breakdown_pj", "actions", "per_einsum_activity_2d")


# ==================================================================================================
# The experiment description
# ==================================================================================================

@dataclass(frozen=True)
class Configuration:
    """One design point: a cascade on an architecture under a mapping (or a mapping search).

    Exactly one of ``mapping`` (a baseline name or a mapping file path) and ``search`` (the search's
    options, at least ``objective``) is set.  ``mapping_is_file`` tells which kind ``mapping`` is.
    """

    name: str
    cascade: str
    arch: str
    mapping: str | None = None
    mapping_is_file: bool = False
    search: Mapping[str, Any] | None = None
    description: str = ""

    @property
    def mapping_label(self) -> str:
        if self.search is not None:
            return "search:" + str(self.search.get("objective"))
        return str(self.mapping)


@dataclass(frozen=True)
class AreaSweep:
    """Fig 12: latency of each configuration with its arrays resized to ``size`` x ``size`` (2D) and
    ``size`` PEs (1D), at one model and sequence length (attention scope)."""

    model: str
    seq_len: int
    sizes: tuple[int, ...]
    configurations: tuple[str, ...]


@dataclass(frozen=True)
class HeadlineClaim:
    """A published mean ratio: ``configuration`` vs ``versus`` in ``scope`` (speedup and/or energy ratio)."""

    scope: str
    configuration: str
    versus: str
    speedup: float | None = None
    energy_ratio: float | None = None


@dataclass(frozen=True)
class Reference:
    """Published results to hold the experiment against (shown next to einloom's in the summary).

    ``headline``: mean ratios as a paper states them; ``points``: per-point results (dicts with the
    :data:`REFERENCE_COLUMNS`), e.g. an artifact's CSVs; ``source`` says where they come from.
    """

    source: str
    headline: tuple[HeadlineClaim, ...] = ()
    points: tuple[Mapping[str, Any], ...] = ()
    points_file: str | None = None


@dataclass(frozen=True)
class Experiment:
    """A validated experiment file (see the module docstring)."""

    name: str
    models: tuple[str, ...]
    seq_lens: tuple[int, ...]
    configurations: tuple[Configuration, ...]
    scopes: tuple[str, ...] = ("attention",)
    baseline: str | None = None
    compare_to: tuple[str, ...] = ()
    activity: tuple[str, int] | None = None
    area_sweep: AreaSweep | None = None
    reference: Reference | None = None
    output: str = ""
    description: str = ""
    file: str | None = None
    model_sources: Mapping[str, str] = field(default_factory=dict)
    gpu_baselines: Any = None  # einloom.gpu_compare.GpuBaselines

    def configuration(self, name: str) -> Configuration:
        for config in self.configurations:
            if config.name == name:
                return config
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (stored in results.json so reports need nothing else)."""
        out = dataclasses.asdict(self)
        out["configurations"] = [dict(dataclasses.asdict(c), search=dict(c.search) if c.search else None)
                                 for c in self.configurations]
        out["model_sources"] = dict(self.model_sources)
        if self.reference is not None:
            out["reference"]["points"] = [dict(p) for p in self.reference.points]
        return out


def parse_seq_len(value: Any) -> int:
    """``1024``, ``"1K"`` (= 1024), ``"1M"`` (= 2**20), ``"4k"`` -> an int; ValueError otherwise."""
    return parse_size(value)


def format_seq_len(n: int) -> str:
    """The inverse of :func:`parse_seq_len` for figure labels: 1024 -> '1K', 2**20 -> '1M'."""
    for suffix, scale in (("M", 1024 ** 2), ("K", 1024)):
        if n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


class _Reader(FieldReader):
    """The base field reader with the experiment file's list and sequence-length rules."""

    def __init__(self, linemap: LineMap, file: str):
        super().__init__(linemap, ExperimentError, file=file)

    def mapping(self, value: Any, path: tuple[Any, ...], required: Sequence[str] = (),  # type: ignore[override]
                allowed: Sequence[str] = (), **kwargs: Any) -> dict[str, Any]:
        return super().mapping(value, path, required, [k for k in allowed if k not in required], **kwargs)

    def string_list(self, value: Any, path: tuple[Any, ...], what: str) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(path, f"expected a non-empty list of {what}, got {_describe(value)}",
                            hint=f"write [{what.split()[0]}1, {what.split()[0]}2]")
        return [self.string(v, path + (i,), what=f"a {what.rstrip('s')} name") for i, v in enumerate(value)]

    def seq_len(self, value: Any, path: tuple[Any, ...]) -> int:
        return self.size(value, path, high=MAX_SEQ_LEN, what="a sequence length")


_describe = describe


def _resolve(ref: str, base: Path) -> str:
    """A file reference relative to the experiment's folder when it exists there; names stay names."""
    candidate = base / ref
    if candidate.exists() and not Path(ref).is_absolute():
        return str(candidate)
    return ref


def _looks_like_file(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml", ".json")) or "/" in ref or Path(ref).exists()


def load_experiment(path: str | Path, *, check_references: bool = True) -> Experiment:
    """Parse and validate an experiment file.

    With ``check_references`` (the default) every model, cascade, architecture and mapping file is
    loaded once here, so a typo is reported at its line in the experiment file rather than mid-run.
    """
    data, linemap = load_yaml(path, error=ExperimentError)
    file = str(path)
    base = Path(file).parent
    r = _Reader(linemap, file)
    top = r.mapping(data if data is not None else {}, (), _TOP_KEYS_REQUIRED,
                    _TOP_KEYS_REQUIRED + _TOP_KEYS_OPTIONAL)
    name = r.string(top.get("name", Path(file).stem), ("name",))

    models = r.string_list(top["models"], ("models",), "models")
    sources: dict[str, str] = {}
    for i, model in enumerate(models):
        sources[model] = _resolve(model, base)
        if check_references:
            _check(r, ("models", i), lambda ref=sources[model]: _load_workload(ref))
    if len(set(models)) != len(models):
        raise r.fail(("models",), "a model is listed twice")

    raw_lens = top["seq_lens"] if isinstance(top["seq_lens"], list) else [top["seq_lens"]]
    if not raw_lens:
        raise r.fail(("seq_lens",), "expected at least one sequence length", hint="write seq_lens: [1K, 4K]")
    seq_lens = [r.seq_len(v, ("seq_lens", i) if isinstance(top["seq_lens"], list) else ("seq_lens",))
                for i, v in enumerate(raw_lens)]

    scope_raw = top.get("scope", "attention")
    if scope_raw == "both":
        scopes = SCOPES
    else:
        scope_list = r.string_list(scope_raw, ("scope",), "scopes")
        for i, s in enumerate(scope_list):
            if s not in SCOPES:
                close = difflib.get_close_matches(s, list(SCOPES) + ["both"], n=1)
                raise r.fail(("scope", i) if isinstance(scope_raw, list) else ("scope",), f"unknown scope '{s}'",
                             hint=(f"did you mean '{close[0]}'? " if close else "")
                             + "write attention, end_to_end or both")
        scopes = tuple(s for s in SCOPES if s in scope_list)

    configs_raw = top["configurations"]
    if not isinstance(configs_raw, list) or not configs_raw:
        raise r.fail(("configurations",), f"expected a non-empty list of configurations, got {_describe(configs_raw)}",
                     hint="write - {name: FuseMax, cascade: fusemax-1pass, arch: fusemax-cloud, mapping: fusemax}")
    configs = [_read_configuration(r, c, ("configurations", i), base, check_references)
               for i, c in enumerate(configs_raw)]
    names = [c.name for c in configs]
    for i, c in enumerate(configs):
        if names.index(c.name) != i:
            raise r.fail(("configurations", i, "name"), f"configuration name '{c.name}' is used twice",
                         hint="give each configuration its own name")

    def config_name(value: Any, path: tuple[Any, ...]) -> str:
        text = r.string(value, path, what="a configuration name")
        if text not in names:
            close = difflib.get_close_matches(text, names, n=1)
            raise r.fail(path, f"no configuration named '{text}'",
                         hint=(f"did you mean '{close[0]}'? " if close else "") + f"configurations: {', '.join(names)}")
        return text

    baseline = config_name(top["baseline"], ("baseline",)) if "baseline" in top else names[0]
    compare_raw = top.get("compare_to", [baseline])
    compare_list = compare_raw if isinstance(compare_raw, list) else [compare_raw]
    compare_to = tuple(config_name(v, ("compare_to", i) if isinstance(compare_raw, list) else ("compare_to",))
                       for i, v in enumerate(compare_list))

    activity = None
    if "activity" in top:
        act = r.mapping(top["activity"], ("activity",), ("model", "seq_len"), ("model", "seq_len"))
        model = r.string(act["model"], ("activity", "model"))
        if model not in models:
            raise r.fail(("activity", "model"), f"'{model}' is not one of the experiment's models",
                         hint=f"models: {', '.join(models)}")
        n = r.seq_len(act["seq_len"], ("activity", "seq_len"))
        if n not in seq_lens:
            raise r.fail(("activity", "seq_len"), f"{act['seq_len']} is not one of the experiment's seq_lens")
        activity = (model, n)

    sweep = None
    if top.get("area_sweep") is not None:
        s = r.mapping(top["area_sweep"], ("area_sweep",), ("model", "seq_len", "sizes"), _SWEEP_KEYS)
        model = r.string(s["model"], ("area_sweep", "model"))
        if model not in sources:
            sources[model] = _resolve(model, base)
            if check_references:
                _check(r, ("area_sweep", "model"), lambda ref=sources[model]: _load_workload(ref))
        sizes_raw = s["sizes"]
        if not isinstance(sizes_raw, list) or not sizes_raw:
            raise r.fail(("area_sweep", "sizes"), f"expected a list of array sizes, got {_describe(sizes_raw)}",
                         hint="write sizes: [16, 32, 64, 128, 256, 512]")
        sizes = []
        for i, v in enumerate(sizes_raw):
            sizes.append(r.integer(v, ("area_sweep", "sizes", i), low=1, high=MAX_ARRAY_DIM,
                                   what="a positive integer array size"))
        sweep_configs = names
        if "configurations" in s:
            raw = s["configurations"]
            lst = raw if isinstance(raw, list) else [raw]
            sweep_configs = [config_name(v, ("area_sweep", "configurations", i) if isinstance(raw, list)
                                         else ("area_sweep", "configurations")) for i, v in enumerate(lst)]
        sweep = AreaSweep(model, r.seq_len(s["seq_len"], ("area_sweep", "seq_len")), tuple(sizes),
                          tuple(sweep_configs))

    reference = None
    if top.get("reference") is not None:
        reference = _read_reference(r, top["reference"], base, names, scopes, config_name)

    gpu_baselines = None
    if "gpu_baselines" in top:  # accelerator vs GPU kernels (einloom/gpu_compare.py)
        from einloom.gpu_compare import read_gpu_baselines
        gpu_baselines, extra = read_gpu_baselines(r, top["gpu_baselines"], base, names,
                                                  _load_workload if check_references else (lambda ref: None), r.seq_len)
        sources.update({k: v for k, v in extra.items() if k not in sources})

    output = r.string(top.get("output", f"results/{name}"), ("output",))
    return Experiment(name=name, models=tuple(models), seq_lens=tuple(seq_lens), configurations=tuple(configs),
                      scopes=tuple(scopes), baseline=baseline, compare_to=compare_to, activity=activity,
                      area_sweep=sweep, reference=reference, output=output, description=str(top.get("description") or ""), file=file,
                      model_sources=sources, gpu_baselines=gpu_baselines)


def _read_reference(r: _Reader, raw: Any, base: Path, names: Sequence[str], scopes: Sequence[str],
                    config_name: Callable[[Any, tuple[Any, ...]], str]) -> Reference:
    ref = r.mapping(raw, ("reference",), ("source",), _REFERENCE_KEYS)
    source = r.string(ref["source"], ("reference", "source"), what="where the reference numbers come from")
    claims = []
    raw_claims = ref.get("headline") or []
    if not isinstance(raw_claims, list):
        raise r.fail(("reference", "headline"), f"expected a list of claims, got {_describe(raw_claims)}",
                     hint="write - {scope: attention, configuration: FuseMax, versus: FLAT, speedup: 6.7}")
    for i, c in enumerate(raw_claims):
        path = ("reference", "headline", i)
        c = r.mapping(c, path, ("scope", "configuration", "versus"), _HEADLINE_KEYS)
        scope = r.string(c["scope"], path + ("scope",))
        if scope not in scopes:
            raise r.fail(path + ("scope",), f"scope '{scope}' is not evaluated by this experiment",
                         hint=f"scopes: {', '.join(scopes)}")
        values = {}
        for key in ("speedup", "energy_ratio"):
            if key in c:
                values[key] = r.number(c[key], path + (key,), positive=True, what=f"{key}, a positive number")
        if not values:
            raise r.fail(path, "a headline claim needs speedup and/or energy_ratio",
                         hint="write speedup: 6.7, energy_ratio: 0.79")
        claims.append(HeadlineClaim(scope, config_name(c["configuration"], path + ("configuration",)),
                                    config_name(c["versus"], path + ("versus",)), **values))
    points: list[dict[str, Any]] = []
    points_file = None
    if "points" in ref:
        points_file = _resolve(r.string(ref["points"], ("reference", "points"), what="a CSV file"), base)
        points = _read_reference_points(r, points_file, names)
    return Reference(source, tuple(claims), tuple(points), points_file)


def _read_reference_points(r: _Reader, file: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a reference CSV (``#`` lines are comments); errors name the CSV's line and column."""
    path = ("reference", "points")
    try:
        lines = read_user_file(file, ExperimentError).splitlines()
    except ExperimentError as exc:
        raise r.fail(path, f"cannot read reference points: {exc}",
                     hint="give a CSV file relative to the experiment file") from None
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise r.fail(path, f"{file} has no header line", hint="header: " + ",".join(REFERENCE_COLUMNS))
    header = [h.strip() for h in next(csv.reader([numbered[0][1]]))]
    missing = [c for c in REFERENCE_COLUMNS[:6] if c not in header]
    if missing:
        raise ExperimentError(f"missing column(s) {', '.join(missing)}", location=Location(file, numbered[0][0]),
                              hint="header: " + ",".join(REFERENCE_COLUMNS))
    rows = []
    for lineno, line in numbered[1:]:
        cells = next(csv.reader([line]))
        if len(cells) != len(header):
            raise ExperimentError(f"{len(cells)} cells, the header has {len(header)}", location=Location(file, lineno))
        raw = dict(zip(header, (c.strip() for c in cells)))
        row: dict[str, Any] = {"model": raw["model"], "configuration": raw["configuration"], "scope": raw["scope"]}
        if row["configuration"] not in names:
            raise ExperimentError(f"configuration '{row['configuration']}' is not in the experiment",
                                  location=Location(file, lineno, "configuration"),
                                  hint=f"configurations: {', '.join(names)}")
        if row["scope"] not in SCOPES:
            raise ExperimentError(f"unknown scope '{row['scope']}'", location=Location(file, lineno, "scope"),
                                  hint="attention or end_to_end")
        try:
            row["seq_len"] = parse_seq_len(raw["seq_len"])
        except ValueError:
            raise ExperimentError(f"seq_len {raw['seq_len']!r} is not a sequence length",
                                  location=Location(file, lineno, "seq_len")) from None
        for key in ("latency_s", "energy_pj", "util_2d"):
            text = raw.get(key, "")
            if text == "" and key == "util_2d":
                row[key] = None
                continue
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not (value > 0 and math.isfinite(value)):
                raise ExperimentError(f"{key} must be a positive number, got {text!r}",
                                      location=Location(file, lineno, key))
            row[key] = value
        rows.append(row)
    return rows


def _check(r: _Reader, path: tuple[Any, ...], load: Callable[[], Any]) -> Any:
    """Run a loader; re-raise its error at the experiment file's line, keeping the inner message."""
    try:
        return load()
    except EinloomError as exc:
        inner = str(exc.location)
        message = exc.message if not inner or inner == str(r.linemap.at(*path).file) else f"{inner}: {exc.message}"
        raise r.fail(path, message, exc.hint) from None


def _read_configuration(r: _Reader, raw: Any, path: tuple[Any, ...], base: Path, check: bool) -> Configuration:
    c = r.mapping(raw, path, ("name", "cascade", "arch"), _CONFIG_KEYS)
    name = r.string(c["name"], path + ("name",))
    cascade = _resolve(r.string(c["cascade"], path + ("cascade",)), base)
    arch = _resolve(r.string(c["arch"], path + ("arch",)), base)
    if ("mapping" in c) == ("search" in c):
        raise r.fail(path, f"configuration '{name}' needs exactly one of 'mapping' and 'search'",
                     hint="write mapping: fusemax (a baseline name or a mapping .yaml), or search: {objective: latency}")
    mapping = None
    is_file = False
    search = None
    if "mapping" in c:
        mapping = r.string(c["mapping"], path + ("mapping",), what="a baseline name or a mapping file")
        is_file = _looks_like_file(mapping)
        if is_file:
            mapping = _resolve(mapping, base)
        elif check:
            known = _baseline_names()
            if known and mapping.lower() not in {k.lower() for k in known}:
                close = difflib.get_close_matches(mapping, known, n=1)
                raise r.fail(path + ("mapping",), f"unknown baseline mapping '{mapping}'",
                             hint=(f"did you mean '{close[0]}'? " if close else "")
                             + f"baselines: {', '.join(known)}; or give a mapping .yaml file")
    else:
        search = r.mapping(c["search"], path + ("search",), ("objective",), ("objective", "budget", "seed"))
        r.choice(search["objective"], path + ("search", "objective"), ("latency", "energy", "edp"),
                 what="objective")
        search = dict(search)
        if "budget" in search:
            search["budget"] = r.number(search["budget"], path + ("search", "budget"), positive=True, high=1e7,
                                        what="a time budget in seconds")
        if "seed" in search:
            search["seed"] = r.integer(search["seed"], path + ("search", "seed"), low=0, high=2 ** 32 - 1,
                                       what="an integer seed")
    if check:
        _check(r, path + ("cascade",), lambda: _load_cascade(cascade))
        _check(r, path + ("arch",), lambda: _load_arch(arch))
        if is_file:
            _check(r, path + ("mapping",), lambda: _load_mapping(mapping))
    return Configuration(name=name, cascade=cascade, arch=arch, mapping=mapping, mapping_is_file=is_file,
                         search=search, description=str(c.get("description") or ""))


# Loaders, cached: an experiment names the same few files many times.
_CACHE: dict[tuple[str, str], Any] = {}


def _cached(kind: str, ref: str, load: Callable[[str], Any]) -> Any:
    key = (kind, ref)
    if key not in _CACHE:
        _CACHE[key] = load(ref)
    return _CACHE[key]


def _load_workload(ref: str) -> Any:
    from einloom.cost_models.workload import load_workload
    return _cached("workload", ref, load_workload)


def _load_cascade(ref: str) -> Any:
    from einloom.einsum.loader import load_cascade
    return _cached("cascade", ref, load_cascade)


def _load_arch(ref: str) -> Any:
    from einloom.cost_models.arch import load_arch
    return _cached("arch", ref, load_arch)


def _load_mapping(ref: str) -> Any:
    from einloom.mapper.mapping import load_mapping
    return _cached("mapping", ref, load_mapping)


def resized_arch(arch: Any, size: int) -> Any:
    """``arch`` with a ``size`` x ``size`` 2D array and a ``size``-PE 1D array (for the area sweep)."""
    from einloom.cost_models.arch import arch_from_dict

    def build(_: str) -> Any:
        data, _linemap = load_yaml(arch.file, error=ExperimentError)
        data = dict(data)
        data["name"] = f"{data['name']}@{size}"
        data["array_2d"] = dict(data["array_2d"], rows=size, cols=size)
        data["array_1d"] = dict(data["array_1d"], width=size)
        return arch_from_dict(data, None, file=arch.file)
    return _cached("arch@size", f"{arch.file}@{size}", build)


def _baseline_names() -> list[str]:
    """The mapper's baseline mapping names, or [] while the mapper does not list them."""
    try:
        from einloom.mapper.baselines import BASELINES
    except ImportError:
        return []
    return list(BASELINES)


# ==================================================================================================
# Running
# ==================================================================================================

@dataclass(frozen=True)
class EvalPoint:
    """One evaluation: a configuration on one model at one sequence length, in one scope.

    ``cascade``, ``arch`` and ``mapping`` are the loaded objects (``mapping`` is the baseline name
    when the configuration names a baseline, None when it asks for a search).  ``array_size`` is set
    for area-sweep points (``arch`` is then already resized).
    """

    model: str
    seq_len: int
    scope: str
    configuration: Configuration
    workload: Any
    cascade: Any
    arch: Any
    mapping: Any
    array_size: int | None = None


EvaluatePoint = Callable[[EvalPoint], Mapping[str, Any]]


def mapper_evaluate_point(point: EvalPoint) -> dict[str, Any]:
    """The real evaluator: :mod:`einloom.mapper`'s analytical model.

    Baseline names go through :func:`einloom.mapper.baselines.baseline_mapping`, a ``search``
    configuration through the mapper's search; attention scope calls
    :func:`einloom.mapper.evaluate.evaluate`, end-to-end scope ``evaluate_end_to_end``.
    """
    try:
        from einloom.mapper import evaluate as evaluator
        from einloom.mapper.baselines import baseline_mapping
    except ImportError as exc:
        raise ExperimentError(f"the mapper's analytical evaluator is not available: {exc}",
                              hint="einloom.mapper.evaluate must define evaluate() and evaluate_end_to_end()"
                              ) from None
    config = point.configuration
    mapping = point.mapping
    if config.search is not None:
        try:
            from einloom.mapper.search import search
        except ImportError:
            raise ExperimentError(f"configuration '{config.name}' asks for a search, and einloom.mapper has "
                                  "no search yet", hint="give a baseline name or a mapping file instead") from None
        found = search(point.cascade, point.arch, point.workload, **dict(config.search))
        mapping = getattr(found, "mapping", found)
    elif isinstance(mapping, str):
        mapping = baseline_mapping(mapping, point.cascade, point.arch, point.workload)
    if point.scope == "end_to_end":
        result = evaluator.evaluate_end_to_end(point.cascade, mapping, point.arch, point.workload)
    else:
        result = evaluator.evaluate(point.cascade, mapping, point.arch, point.workload)
    return result.to_dict() if hasattr(result, "to_dict") else dict(result)


@dataclass
class ExperimentResults:
    """Rows of an experiment run, ready to save (``rows``: main grid; ``sweep_rows``: area sweep)."""

    experiment: Experiment
    rows: list[dict[str, Any]]
    sweep_rows: list[dict[str, Any]]
    elapsed_s: float
    evaluator: str
    gpu_comparison: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"experiment": self.experiment.to_dict(), "evaluator": self.evaluator,
               "elapsed_s": self.elapsed_s, "rows": self.rows, "area_sweep": self.sweep_rows}
        if self.gpu_comparison is not None:
            out["gpu_comparison"] = self.gpu_comparison
        return out

    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.rows + self.sweep_rows if r.get("error")]

    def write(self, outdir: str | Path) -> tuple[Path, Path]:
        """Write ``results.json`` (everything) and ``results.csv`` (one line per row, scalar columns)."""
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        json_path = outdir / "results.json"
        json_path.write_text(json.dumps(_jsonable(self.to_dict()), indent=1) + "\n")
        csv_path = outdir / "results.csv"
        write_csv(self.rows, csv_path)
        if self.sweep_rows:  # the area sweep as a results table too, energy next to latency
            write_csv(self.sweep_rows, outdir / "area_sweep.csv", key_columns=_KEY_COLUMNS + ("array_size",))
        return json_path, csv_path


_KEY_COLUMNS = ("model", "seq_len", "configuration", "scope", "cascade", "arch", "mapping")


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path, *,
              key_columns: Sequence[str] = _KEY_COLUMNS) -> None:
    """Rows as CSV: key columns, metrics, ratios to the baseline, then ``activity_2d.<Einsum>`` columns."""
    einsums: list[str] = []
    for row in rows:
        for name in (row.get("per_einsum_activity_2d") or {}):
            if name not in einsums:
                einsums.append(name)
    columns = list(key_columns) + list(METRICS) + ["speedup", "energy_ratio", "error"] + \
        [f"activity_2d.{e}" for e in einsums]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            activity = row.get("per_einsum_activity_2d") or {}
            values = [row.get(c) for c in columns[:len(columns) - len(einsums)]] + [activity.get(e) for e in einsums]
            writer.writerow(["" if v is None else v for v in values])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _row(point: EvalPoint, result: Mapping[str, Any] | None, error: str | None) -> dict[str, Any]:
    config = point.configuration
    row: dict[str, Any] = {"model": point.model, "seq_len": point.seq_len, "configuration": config.name,
                           "scope": point.scope, "cascade": config.cascade, "arch": config.arch,
                           "mapping": config.mapping_label}
    if point.array_size is not None:
        row["array_size"] = point.array_size
    for key in METRICS + DETAILS:
        row[key] = None if result is None else result.get(key)
    if result is not None and row["area_um2"] is None:
        try:
            row["area_um2"] = float(point.arch.area_report().total_um2)
        except Exception:  # an arch without an area model: leave it out
            pass
    row["error"] = error
    return _jsonable(row)


def experiment_points(experiment: Experiment) -> tuple[list[EvalPoint], list[EvalPoint]]:
    """The main grid (model x seq_len x configuration x scope, in that nesting) and the sweep points."""
    grid: list[EvalPoint] = []
    for model in experiment.models:
        base = _load_workload(experiment.model_sources.get(model, model))
        for n in experiment.seq_lens:
            workload = base.with_seq_len(n)
            for config in experiment.configurations:
                cascade, arch, mapping = _config_objects(config)
                for scope in experiment.scopes:
                    grid.append(EvalPoint(model, n, scope, config, workload, cascade, arch, mapping))
    sweep: list[EvalPoint] = []
    if experiment.area_sweep is not None:
        s = experiment.area_sweep
        workload = _load_workload(experiment.model_sources.get(s.model, s.model)).with_seq_len(s.seq_len)
        for name in s.configurations:
            config = experiment.configuration(name)
            cascade, arch, mapping = _config_objects(config)
            for size in s.sizes:
                sweep.append(EvalPoint(s.model, s.seq_len, "attention", config, workload, cascade,
                                       resized_arch(arch, size), mapping, array_size=size))
    return grid, sweep


def _config_objects(config: Configuration) -> tuple[Any, Any, Any]:
    mapping = _load_mapping(config.mapping) if config.mapping_is_file else config.mapping
    return _load_cascade(config.cascade), _load_arch(config.arch), mapping


def run_experiment(experiment: Experiment, evaluate_point: EvaluatePoint | None = None, *,
                   progress: bool = True) -> ExperimentResults:
    """Evaluate every point of ``experiment`` and add the ratios to the baseline.

    A point whose evaluation raises an :class:`EinloomError` (e.g. an infeasible mapping) is recorded
    with its ``error`` message and no metrics; the others go on.  ``speedup`` = baseline latency /
    latency and ``energy_ratio`` = energy / baseline energy, against the baseline configuration at the
    same model, sequence length and scope.
    """
    from tqdm import tqdm

    evaluate_point = evaluate_point or mapper_evaluate_point
    grid, sweep = experiment_points(experiment)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    sweep_rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(grid) + len(sweep), desc=experiment.name, unit="pt", file=sys.stderr,
               disable=not progress, leave=False)
    try:
        for points, out in ((grid, rows), (sweep, sweep_rows)):
            for point in points:
                bar.set_postfix_str(f"{point.model} {format_seq_len(point.seq_len)} {point.configuration.name}",
                                    refresh=False)
                try:
                    result, error = evaluate_point(point), None
                except EinloomError as exc:
                    result, error = None, str(exc)
                out.append(_row(point, result, error))
                bar.update()
    finally:
        bar.close()
    add_ratios(rows, experiment.baseline or experiment.configurations[0].name)
    gpu = None
    if experiment.gpu_baselines is not None:
        from einloom.gpu_compare import run_gpu_comparison
        gpu = run_gpu_comparison(experiment, rows, evaluate_point)
    name = getattr(evaluate_point, "__qualname__", None) or type(evaluate_point).__name__
    module = getattr(evaluate_point, "__module__", "") or ""
    return ExperimentResults(experiment, rows, sweep_rows, time.perf_counter() - start,
                             f"{module}.{name}" if module else name, gpu)


def add_ratios(rows: list[dict[str, Any]], baseline: str) -> None:
    """Set ``speedup`` and ``energy_ratio`` of each row against ``baseline`` (None when undefined)."""
    base = {(r["model"], r["seq_len"], r["scope"]): r for r in rows if r["configuration"] == baseline}
    for row in rows:
        ref = base.get((row["model"], row["seq_len"], row["scope"]))
        row["speedup"] = ratio(ref and ref.get("latency_s"), row.get("latency_s"))
        row["energy_ratio"] = ratio(row.get("energy_pj"), ref and ref.get("energy_pj"))


def ratio(numerator: Any, denominator: Any) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None:
        return None
    try:
        numerator, denominator = float(numerator), float(denominator)
    except (TypeError, ValueError):
        return None
    if not (denominator > 0) or not math.isfinite(numerator):
        return None
    return numerator / denominator


def mean_ratios(rows: Sequence[Mapping[str, Any]], against: str, scope: str) -> dict[str, dict[str, Any]]:
    """Arithmetic means of per-point ratios of each configuration against ``against`` in ``scope``.

    Returns ``{configuration: {"speedup": mean(lat_against / lat), "energy_ratio": mean(E / E_against),
    "points": n}}`` over the (model, seq_len) points where both have results (FuseMax's "average").
    """
    ref = {(r["model"], r["seq_len"]): r for r in rows if r["configuration"] == against and r["scope"] == scope}
    sums: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["scope"] != scope:
            continue
        other = ref.get((row["model"], row["seq_len"]))
        speed = ratio(other and other.get("latency_s"), row.get("latency_s"))
        energy = ratio(row.get("energy_pj"), other and other.get("energy_pj"))
        entry = sums.setdefault(row["configuration"], {"speedup": [], "energy_ratio": []})
        if speed is not None and energy is not None:
            entry["speedup"].append(speed)
            entry["energy_ratio"].append(energy)
    return {name: {"speedup": sum(v["speedup"]) / len(v["speedup"]) if v["speedup"] else None,
                   "energy_ratio": sum(v["energy_ratio"]) / len(v["energy_ratio"]) if v["energy_ratio"] else None,
                   "points": len(v["speedup"])}
            for name, v in sums.items()}


def headline_comparison(rows: Sequence[Mapping[str, Any]], reference: Mapping[str, Any]) -> list[dict[str, Any]]:
    """einloom's mean ratios next to each published headline claim of ``reference`` (its dict form).

    Each entry: the claim's ``scope``/``configuration``/``versus``, ``points``, and for ``speedup`` and
    ``energy_ratio`` einloom's mean, the published value and the relative difference (None if absent).
    """
    out = []
    for claim in reference.get("headline") or []:
        means = mean_ratios(rows, claim["versus"], claim["scope"]).get(claim["configuration"], {})
        entry = {k: claim[k] for k in ("scope", "configuration", "versus")}
        entry["points"] = means.get("points", 0)
        for key in ("speedup", "energy_ratio"):
            ours, theirs = means.get(key), claim.get(key)
            entry[key] = {"einloom": ours, "reference": theirs,
                          "difference": None if ours is None or theirs is None else ours / theirs - 1}
        out.append(entry)
    return out


def point_comparison(rows: Sequence[Mapping[str, Any]], reference: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per (configuration, scope): how einloom's points compare with the reference's points.

    For latency and energy: the mean, smallest and largest of einloom / reference over the matching
    (model, seq_len) points; for 2D utilisation, the largest absolute difference.
    """
    ours = {(r["model"], r["seq_len"], r["configuration"], r["scope"]): r for r in rows if not r.get("error")}
    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    for p in reference.get("points") or []:
        key = (p["configuration"], p["scope"])
        mine = ours.get((p["model"], p["seq_len"], p["configuration"], p["scope"]))
        if mine is None:
            continue
        g = groups.setdefault(key, {"latency_s": [], "energy_pj": [], "util_2d": []})
        for metric in ("latency_s", "energy_pj"):
            value = ratio(mine.get(metric), p[metric])
            if value is not None:
                g[metric].append(value)
        if p.get("util_2d") is not None and mine.get("util_2d") is not None:
            g["util_2d"].append(abs(float(mine["util_2d"]) - float(p["util_2d"])))
    out = []
    for (config, scope), g in groups.items():
        entry: dict[str, Any] = {"configuration": config, "scope": scope, "points": len(g["latency_s"])}
        for metric in ("latency_s", "energy_pj"):
            v = g[metric]
            entry[metric] = {"mean": sum(v) / len(v), "min": min(v), "max": max(v)} if v else None
        entry["util_2d_max_abs_diff"] = max(g["util_2d"]) if g["util_2d"] else None
        out.append(entry)
    return out
