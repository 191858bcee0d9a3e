"""What each attention variant costs in hardware: one row per (cascade, architecture).

For a cascade and an architecture with an ``rtl:`` section, :func:`hardware_row` does what
``einloom rtl``/``verify``/``synth`` would do and puts the figures side by side:

* **core**: the generator's own decision, never a list of names here: ``fixed`` when the
  fixed-function overlapped core (``rtl/core_form.match_core``) matches the cascade, else ``lane``
  when the lane compiler (``rtl/lane_build.plan_stages``) accepts it, else ``refused`` with the
  Einsum and the missing capability (the lane compiler's refusal, and the fixed core's next to it);
* **cycles**: the generated core's cycle model at the row's ranks (``sim/rtl_core``: ``run_core`` for
  the fixed core, ``lane_core_cycles`` for the lane core), which the RTL testbenches assert equal to
  the measured count of every unstalled run; with verification, the measured count too;
* **sim cycles**: the cycle-level simulator (``sim/simulator.simulate``) on the schedule the core was
  lowered from: the schedule-level prediction, which abstracts the core's controller (its ratio to
  the RTL cycles says how well);
* **2D utilization**: MAC cycles of the 2D array over R x C x cycles, from the cycle model;
* **error vs float64**: the cascade interpreter in the core's number format (the golden model the RTL
  is verified bit-exact against) vs the float64 interpreter, max absolute error on seeded inputs;
* **useful ops**: ``2 x`` the multiply-accumulates of the cascade's product Einsums on the points
  its masks keep (the schedule's exact ``valid_points``), x instances: causal and window masks count
  only the visible (query, key) pairs; exp, max and division are not counted (the usual convention);
* **verify** (optional): the generated design simulated against the golden model (Verilator with
  cocotb, as ``einloom verify``; or Amaranth's simulator for the lane core, the fixed core staying on
  Verilator, one cached build per configuration): a plain run and a run with random output
  backpressure at the row's ranks; passed / total and the plain run's measured cycles;
* **area**: Yosys post-synthesis LUT / FF / DSP / BRAM of the bare core (``rtl/fpga``; cached by
  Verilog hash and tool versions);
* **Fmax** (optional, ECP5): nextpnr's post-route figure (one seed), and **throughput** = useful ops /
  (cycles / clock) at Fmax, or at the architecture's ``clock_mhz`` when no P&R ran (the row says which).

Rows are cached by :mod:`einloom.report.hardware_cache` (a rerun is instant, an interrupted run
resumes).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

#: Bumped when this module changes what a row holds or how it is computed (part of every cache key;
#: the generator's own sources are hashed, :func:`source_digest`).
ROW_VERSION = 3
#: Ops counted as useful (shown with the figures).
OPS_RULE = "2 x multiply-accumulates of the product Einsums on the points the masks keep (exp/max/div not counted)"
#: Seeds and backpressure of the verification runs (plain, then random output stalls).
VERIFY_RUNS = ({"seed": 7, "backpressure": 0.0}, {"seed": 8, "backpressure": 0.3})



@dataclass(frozen=True)
class RowOptions:
    """What to run for each row: ``verify`` None / "verilator" / "amaranth"; ``synth``: Yosys area;
    ``pnr``: nextpnr Fmax (ECP5); ``target``: FPGA family; ``router``: nextpnr router."""

    verify: str | None = None
    synth: bool = True
    pnr: bool = False
    target: str = "ecp5"
    router: str = "auto"


@dataclass
class HardwareRow:
    """One (cascade, architecture) of the hardware report; ``to_dict`` is its JSON form."""

    spec: str
    arch: str
    core: str                                   #: "fixed", "lane" or "refused"
    number_format: str = ""
    array: str = ""
    ranks: dict[str, int] = field(default_factory=dict)
    mask: str = ""
    refused_einsum: str | None = None
    reason: str | None = None                   #: why refused (the lane compiler's refusal)
    fixed_reason: str | None = None             #: why the fixed-function core did not match
    units: list[str] = field(default_factory=list)
    top: str = ""
    cycles: int | None = None                   #: the core's cycle model at the row's ranks
    sim_cycles: float | None = None             #: the cycle-level simulator on the lowered schedule
    sim_note: str | None = None
    util_2d: float | None = None
    error_vs_fp64: float | None = None          #: max |golden in the format - float64 interpreter|
    error_note: str | None = None
    useful_ops: int | None = None
    dense_ops: int | None = None
    verify: dict[str, Any] | None = None        #: tool, passed, total, measured_cycles, problems
    area: dict[str, float] | None = None        #: luts, ffs, dsps, brams, carry
    part: str | None = None
    fits: bool | None = None
    fmax_mhz: float | None = None
    clock_mhz: float | None = None              #: the clock the throughput is given at
    clock_source: str | None = None             #: "Fmax (post-route)" or "stated (arch clock_mhz, no P&R)"
    gops: float | None = None
    errors: list[str] = field(default_factory=list)   #: tool failures (the row's other figures stand)
    programs: list[str] = field(default_factory=list)       #: programmable build: the variants it runs
    left_out: dict[str, str] = field(default_factory=dict)   #: programmable build: variants not in it, why
    critical_path: dict[str, Any] | None = None  #: nextpnr's: ns, logic_ns, routing_ns, from, to
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HardwareRow":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


# ---- the design a row is about -------------------------------------------------------------------

@dataclass
class Design:
    """A core the generator builds for one cascade: its cycle figures, schedule, what verifies it, and
    its Verilog (generated on first use of ``verilog``/``top``: the decision and the cycle model do
    not need it, ``einloom sim`` asks only for those)."""

    kind: str
    cycles: int
    util_2d: float
    schedule: Any
    sizes: dict[str, int]
    mask: str
    units: list[str]
    verify_with: Any          #: (RtlConfig, cases, runs) for the fixed core, (plans, programmable, sizes) for the lane core
    build: Callable[[], tuple[str, str]] = field(repr=False, default=lambda: ("", ""))   #: -> (Verilog, top)
    _built: tuple[str, str] | None = field(default=None, repr=False)

    def _generated(self) -> tuple[str, str]:
        if self._built is None:
            self._built = self.build()
        return self._built

    @property
    def verilog(self) -> str:
        return self._generated()[0]

    @property
    def top(self) -> str:
        return self._generated()[1]


def _rtl(arch: Any) -> dict[str, Any]:
    return dict(arch.rtl or {})


def format_name(arch: Any) -> str:
    """The core's number format as the architecture's ``rtl.number_format`` names it (int8, bf16...)."""
    fmt = _rtl(arch).get("number_format", {}) or {}
    kind = str(fmt.get("kind", "?"))
    bits = fmt.get("input_bits") or fmt.get("bits")
    return f"int{bits}" if kind == "fixed" and bits else ("int8" if kind == "fixed" else kind)


def _defaults(cascade: Any, given: Mapping[str, int], arch: Any) -> dict[str, int]:
    """Rank sizes: ``given``, then the core's own (P, M = rtl.max_queries, max_keys; E, F = rtl.head_dim,
    value_dim, as ``einloom rtl`` takes them), then the cascade's ``ranks:`` defaults for the rest."""
    from types import SimpleNamespace

    from einloom.commands.lane_cli import lane_sizes
    sizes = lane_sizes(SimpleNamespace(ranks=""), arch)
    for rank, default in cascade.rank_defaults.items():
        if rank not in sizes:
            sizes[rank] = int(getattr(default, "value", 1) or 1)
    sizes.update(given)
    return sizes


def _mask_text(causal: bool, window: int, sinks: int) -> str:
    if not causal:
        return "none"
    return "causal" + (f", window {window}" if window else "") + (f" + {sinks} sinks" if sinks else "")


_FIXED_CORES: dict[str, Any] = {}


def _fixed_verilog(cfg: Any) -> Any:
    """The fixed core's design for ``cfg`` (one generation per configuration per process: its Verilog
    does not depend on the cascade's mask, which is a run-time input)."""
    from einloom.rtl.generate import generate
    key = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    if key not in _FIXED_CORES:
        _FIXED_CORES[key] = generate(cfg)
    return _FIXED_CORES[key]


def fixed_design(cascade: Any, arch: Any, sizes: dict[str, int]) -> Design:
    """The fixed-function core for ``cascade`` (raises SpecError/MappingError when it does not match
    or cannot run the schedule), lowered and sized at ``sizes``."""
    from einloom.base.errors import MappingError, Location
    from einloom.mapper.lower import lower
    from einloom.rtl.attention import core_params
    from einloom.rtl.config import RtlConfig
    from einloom.rtl.core_form import check_schedule, core_mapping, match_core, runs_and_group
    from einloom.sim.rtl_core import run_core
    scale = _rtl(arch).get("scale", True)
    roles = match_core(cascade, scale=scale if isinstance(scale, bool) else True)
    rk = roles.ranks
    base = RtlConfig.from_arch(arch)
    lowered = {r: sizes[r] for r in roles.heads + roles.query_groups if r in sizes}
    lowered.update({rk["P"]: sizes.get(rk["P"], base.max_queries), rk["M"]: sizes.get(rk["M"], base.max_keys),
                    rk["E"]: sizes.get(rk["E"], base.head_dim), rk["F"]: sizes.get(rk["F"], base.value_dim)})
    schedule = lower(cascade, core_mapping(roles, arch), arch, None, sizes=lowered)
    dims = check_schedule(schedule, roles, arch)
    cfg = RtlConfig.from_arch(arch, head_dim=dims["head_dim"], value_dim=dims["value_dim"],
                              tile_m=dims["tile_m"], tile_p=dims["tile_p"])
    runs, group = runs_and_group(schedule, roles)
    queries, keys = dims["P"] * group, dims["M"]
    for what, size, limit, key in (("queries", queries, cfg.max_queries, "max_queries"),
                                   ("keys", keys, cfg.max_keys, "max_keys")):
        if size > limit:
            raise MappingError(f"{size} {what} per run exceed the core's buffers ({limit}, rtl.{key})",
                               location=Location(field="--ranks"), hint=f"use smaller ranks or raise rtl.{key}")
    run = run_core(core_params(cfg), queries, keys, roles.causal, window=roles.window, sinks=roles.sinks)
    mask = _mask_text(roles.causal, roles.window, roles.sinks)
    cases = [{"name": f"{cascade.name}_bp{int(100 * r['backpressure'])}" if r["backpressure"] else cascade.name,
              "P": queries, "M": keys, "causal": roles.causal, "window": roles.window, "sinks": roles.sinks,
              "seed": r["seed"], "backpressure": r["backpressure"]} for r in VERIFY_RUNS]
    for case in cases:
        if not case["window"]:
            del case["window"], case["sinks"]
    def build() -> tuple[str, str]:
        generated = _fixed_verilog(cfg)
        return generated.verilog, generated.top_name

    return Design("fixed", runs * run.cycles, run.util_2d, schedule,
                  dict(schedule.sizes), mask + (f"; {runs} runs (K/V heads) of {queries} queries" if runs > 1
                                                 else (f"; {queries} queries per run" if group > 1 else "")),
                  ["fixed softmax lanes"], (cfg, cases, runs), build)


def lane_design(cascade: Any, arch: Any, sizes: dict[str, int]) -> Design:
    """The lane core (2D array + programmable 1D lanes) for ``cascade``, as ``einloom rtl`` builds it
    (:func:`~einloom.rtl.lane_build.plan_stages`: every stage of a multi-stage cascade, per-key state
    chains), its cycles those of one whole run (every stage at its own extent x its head runs:
    :func:`~einloom.rtl.lane_build.run_cycles`); raises SpecError when the lane compiler refuses it,
    naming the Einsum."""
    from einloom.rtl.lane_build import core_shape, generate_lane_core, plan_stages, run_cycles
    plans = plan_stages(cascade, arch, sizes)
    programmable = bool(_rtl(arch).get("programmable", False)) or len(plans) > 1
    total = run_cycles(plans, core_shape(arch, plans))
    runs = len(plans[0].head_runs())
    schedule = _whole_schedule(cascade, arch, sizes, plans)

    def build() -> tuple[str, str]:
        design, _ = generate_lane_core(plans, arch, programmable=programmable, examples=[plans[0].extent()])
        return design.verilog, design.top_name

    mask = _lane_mask(schedule) + (f"; {runs} runs (K/V heads)" if runs > 1 else "") + (
        f"; {len(plans)} stages" if len(plans) > 1 else "")
    units = list(dict.fromkeys(u for p in plans for u in p.program.units()))
    return Design("lane", int(total["compute_cycles"]), total["mac_cycles"] / total["compute_cycles"],
                  schedule, {**sizes, **plans[0].sizes}, mask, units, (plans, programmable, dict(sizes)), build)


def _whole_schedule(cascade: Any, arch: Any, sizes: dict[str, int], plans: list) -> Any:
    """The schedule the report's ops, simulation and error figures read: the one plan's (a per-key state
    cascade's: its surrogate, which computes the same outputs), or for several stages the whole cascade
    lowered with the lane compiler's mapping."""
    if len(plans) == 1:
        return plans[0].schedule
    from einloom.mapper.lower import lower
    from einloom.rtl.lanes.compile import lane_mapping
    return lower(cascade, lane_mapping(cascade, arch, sizes=sizes), arch, None, sizes=sizes)


def _lane_mask(schedule: Any) -> str:
    masked = [e for e in schedule.einsums.values() if e.valid_points is not None and e.valid_points < e.points]
    return "masked (" + ", ".join(e.name for e in masked) + ")" if masked else "none"


def useful_ops(schedule: Any) -> tuple[int, int]:
    """(useful, dense) operations of ``schedule``: ``2 x`` multiply-accumulates of every Einsum with a
    ``mac`` op, on the points its mask keeps (the masking Einsum's exact ``valid_points`` share of its
    points), and on every point; both x instances."""
    useful = dense = 0.0
    for e in schedule.einsums.values():
        macs = float(e.ops_per_point.get("mac", 0.0)) * e.points
        if not macs:
            continue
        keep = 1.0
        mask = schedule.einsums.get(e.masked_by) if e.masked_by else None
        if mask is not None and mask.valid_points is not None and mask.points:
            keep = mask.valid_points / mask.points
        useful += 2 * macs * keep
        dense += 2 * macs
    return int(round(useful * schedule.instances)), int(round(dense * schedule.instances))


def simulated_cycles(schedule: Any) -> tuple[float | None, str | None]:
    """The cycle-level simulator's latency of ``schedule`` (None and why when it cannot run it)."""
    from einloom.base.errors import EinloomError
    from einloom.sim.simulator import SimOptions, simulate
    try:
        return float(simulate(schedule, SimOptions()).latency_cycles), None
    except EinloomError as exc:
        return None, f"simulator: {exc.message}"


def format_error(schedule: Any, cascade: Any, arch: Any, *, lane_core: bool = False) -> tuple[float | None, str | None]:
    """Max |output of the cascade interpreter in the core's number format - float64 interpreter| on
    seeded N(0, 1) inputs, quantized for both (``sim.functional``: the format run chains its reductions
    in the schedule's loop order, the order the RTL is verified bit-exact against)."""
    from einloom.base.errors import EinloomError
    from einloom.sim.functional import PRESETS, run_functional
    fmt = dict(_rtl(arch).get("number_format", {}) or {})
    if lane_core:     # the lane core's 2D array accumulates in order (no interleaved partial sums)
        fmt.pop("acc_latency", None)
    name = format_name(arch)
    base = {k: v for k, v in fmt.items() if k != "acc_latency"}
    if PRESETS.get(name) != base:
        return None, f"no functional preset equals the number format {fmt}"
    try:
        return float(run_functional(schedule, cascade, name, seed=0, spec=fmt)["max_abs_error"]), None
    except EinloomError as exc:
        return None, f"functional run: {exc.message}"


# ---- verification --------------------------------------------------------------------------------

def verify_design(design: Design, arch_path: str, arch: Any, tool: str) -> dict[str, Any]:
    """Simulate ``design`` against its golden model: ``{tool, passed, total, measured_cycles, problems}``
    (measured cycles: the unstalled run's, x runs for a multi-head fixed core)."""
    if design.kind == "fixed":
        return _verify_fixed(design, tool)
    return _verify_lane(design, arch_path, arch, tool)


def _verify_fixed(design: Design, tool: str) -> dict[str, Any]:
    """The fixed core under Verilator whatever ``tool`` asks (its Amaranth driver is test code): one
    build per configuration, cached, shared by every cascade the core runs."""
    cfg, cases, runs = design.verify_with
    from einloom.rtl.tb.suite import run_suite
    result = run_suite(cfg, [dict(c) for c in cases], quiet=True)
    tests = [result["tests"][c["name"]] for c in cases]
    if any(t.get("cycles") is None and not t.get("passed") for t in tests):    # no result: the tool broke
        from einloom.base.errors import ToolError
        raise ToolError(f"the testbench recorded no result for {', '.join(c['name'] for c in cases)} "
                        f"(see {result['build_dir']}/run)", hint="run the report again; the row is not cached")
    plain = tests[0]
    return {"tool": "verilator", "passed": sum(bool(t.get("passed")) for t in tests), "total": len(tests),
            "measured_cycles": None if plain.get("cycles") is None else runs * int(plain["cycles"]),
            "problems": [e for t in tests for e in (t.get("errors") or [])][:5]}


def _verify_lane(design: Design, arch_path: str, arch: Any, tool: str) -> dict[str, Any]:
    """Every stage and head run of the cascade on its lane core (Amaranth's simulator or Verilator),
    plain and with backpressure; measured cycles: the plain run's, summed over stages and heads."""
    plans, programmable, sizes = design.verify_with
    if tool == "amaranth":
        from einloom.rtl.tb.lane_core_tb import simulate_stages, summary
        passed, measured, problems = 0, None, []
        for r in VERIFY_RUNS:
            runs, found = simulate_stages(str(plans[0].cascade.file), arch, sizes,
                                          backpressure=r["backpressure"], seed=r["seed"])
            passed += not found
            problems += found[:3]
            if not r["backpressure"]:
                measured = int(summary(runs)["cycles"])
        return {"tool": "amaranth", "passed": passed, "total": len(VERIFY_RUNS), "measured_cycles": measured,
                "problems": problems[:5]}
    from einloom.commands.lane_cli import run_lane_jobs
    jobs = [{"name": plans[0].cascade.name + (f"_bp{int(100 * r['backpressure'])}" if r["backpressure"] else ""),
             "seed": r["seed"], **({"backpressure": r["backpressure"]} if r["backpressure"] else {})}
            for r in VERIFY_RUNS]
    _design, build_dir, results = run_lane_jobs(arch_path, arch, plans, sizes, jobs,
                                                programmable=programmable, quiet=True)
    if len(results) < len(jobs):
        from einloom.base.errors import ToolError
        raise ToolError(f"the lane core's testbench recorded {len(results)} of {len(jobs)} results "
                        f"(see {build_dir}/run)", hint="run the report again; the row is not cached")
    plain = results[0] if results else {}
    return {"tool": "verilator", "passed": sum(bool(r.get("passed")) for r in results), "total": len(jobs),
            "measured_cycles": plain.get("cycles"),
            "problems": [p for r in results for p in (r.get("problems") or [])][:5]}


# ---- one row ---------------------------------------------------------------------------------------

def refusal_einsum(exc: Any) -> str | None:
    """The Einsum a refusal names (its location's ``einsums.NAME`` field), if any."""
    where = getattr(getattr(exc, "location", None), "field", None) or ""
    if where.startswith("einsums."):
        return where.split(".", 1)[1]
    import re
    found = re.search(r"Einsum (\w+)", getattr(exc, "message", "") or "")
    return found.group(1) if found else None


def choose_design(cascade: Any, arch: Any, sizes: dict[str, int]) -> tuple[Design | None, Any, Any]:
    """``(design, fixed refusal, lane refusal)``: the fixed-function core when it matches (and the
    architecture is not programmable), else the lane core, else None with both refusals."""
    from einloom.base.errors import EinloomError
    fixed_error = None
    if not _rtl(arch).get("programmable", False):
        try:
            return fixed_design(cascade, arch, sizes), None, None
        except EinloomError as exc:
            fixed_error = exc
    try:
        return lane_design(cascade, arch, sizes), fixed_error, None
    except EinloomError as exc:
        return None, fixed_error, exc


Progress = Callable[[str], None]


def hardware_row(spec: str, arch_path: str, given: Mapping[str, int], options: RowOptions,
                 *, synth_cache: str | None = None, progress: Progress | None = None) -> HardwareRow:
    """Generate, model, (verify,) synthesize (and place and route) ``spec`` on ``arch_path``."""
    import time

    from einloom.cost_models.arch import load_arch
    from einloom.einsum import load_cascade
    from einloom.einsum.errors import EinloomError
    say = progress or (lambda _stage: None)
    arch = load_arch(arch_path)
    cascade = load_cascade(spec)
    sizes = _defaults(cascade, given, arch)
    row = HardwareRow(spec=cascade.name, arch=Path(arch_path).stem, core="refused", number_format=format_name(arch),
                      array=f"{arch.array_2d.rows}x{arch.array_2d.cols}")
    t0 = time.monotonic()
    say("generate")
    design, fixed_error, lane_error = choose_design(cascade, arch, sizes)
    row.seconds["generate"] = round(time.monotonic() - t0, 2)
    if fixed_error is not None:
        row.fixed_reason = fixed_error.message
    if design is None:
        row.reason = lane_error.message
        row.refused_einsum = refusal_einsum(lane_error)
        row.ranks = {k: v for k, v in sizes.items() if k in _used_ranks(cascade)}
        return row
    row.core, row.top, row.units, row.mask = design.kind, design.top, design.units, design.mask
    row.ranks = {k: int(v) for k, v in design.sizes.items() if k in _used_ranks(cascade)}
    row.cycles, row.util_2d = int(design.cycles), round(float(design.util_2d), 5)
    row.useful_ops, row.dense_ops = useful_ops(design.schedule)
    say("simulate")
    row.sim_cycles, row.sim_note = simulated_cycles(design.schedule)
    row.error_vs_fp64, row.error_note = format_error(design.schedule, cascade, arch, lane_core=design.kind == "lane")
    if options.verify:
        say(f"verify ({options.verify})")
        t0 = time.monotonic()
        try:
            row.verify = verify_design(design, arch_path, arch, options.verify)
        except EinloomError as exc:
            row.errors.append(f"verify: {exc.message}")
        row.seconds["verify"] = round(time.monotonic() - t0, 2)
    if options.synth:
        _synthesize(row, design, options, synth_cache, say)
    _throughput(row, arch)
    return row


def _used_ranks(cascade: Any) -> set[str]:
    """The ranks of the cascade's inputs and outputs (derived tile ranks such as M1 are left out)."""
    return {r for name in list(cascade.inputs) + list(cascade.outputs) for r in cascade.tensors[name].ranks}


def _synthesize(row: HardwareRow, design: Design, options: RowOptions, cache: str | None, say: Progress) -> None:
    from einloom.einsum.errors import EinloomError
    from einloom.rtl.fpga import synthesize
    stages = {"synth": "Yosys", "pnr": "nextpnr"}
    try:
        result = synthesize(design.verilog, design.top, options.target, pnr=options.pnr, cache_dir=cache,
                            check_fit=False, router=options.router,
                            progress=lambda stage, event: say(f"{stages.get(stage, stage)} {event}"))
    except EinloomError as exc:
        row.errors.append(f"synth: {exc.message}")
        return
    counts = result.resources.counts
    row.area = {k: counts.get(k, 0) for k in ("luts", "ffs", "dsps", "brams", "carry")}
    row.part, row.fits, row.fmax_mhz = result.part, result.fits, result.fmax_mhz
    row.critical_path = (result.pnr or {}).get("critical_path") or None
    row.seconds.update({f"{k} (tool)": v for k, v in result.seconds.items()})
    if options.pnr and result.fmax_mhz is None:
        row.errors += [n for n in result.notes if "P&R" in n or "place and route" in n]


def _throughput(row: HardwareRow, arch: Any) -> None:
    """GOP/s at Fmax, or at the architecture's stated clock when no P&R ran (the row says which)."""
    cycles = (row.verify or {}).get("measured_cycles") or row.cycles
    if row.fmax_mhz:
        row.clock_mhz, row.clock_source = row.fmax_mhz, "Fmax (post-route)"
    else:
        row.clock_mhz, row.clock_source = float(arch.clock_mhz), "stated (arch clock_mhz, no P&R)"
    if cycles and row.useful_ops is not None:
        row.gops = row.useful_ops / (cycles / (row.clock_mhz * 1e6)) / 1e9


# ---- the programmable lane build: one core that runs every lane-core variant of an architecture ------

#: ``HardwareRow.core`` of the programmable lane build's row
PROGRAMMABLE = "lane (programmable)"
#: ``clock_source`` of a lane row whose throughput is at the programmable build's Fmax
SHARED_FMAX = "Fmax of the programmable lane build (post-route)"


def shared_lane_plans(specs: Sequence[str], arch: Any, given: Mapping[str, int]) -> tuple[list, list[str], dict[str, str]]:
    """The lane plans of one programmable build on ``arch``: every spec the lane compiler accepts, in
    order, as long as its programs share the build's shape (``rtl/lane_build.core_shape``: R, F, the
    head dimension, the directly read score slots).  Returns ``(plans, names in the build, {name:
    why left out})``; a spec the lane compiler refuses is left out with its refusal."""
    from einloom.base.errors import EinloomError
    from einloom.einsum import load_cascade
    from einloom.rtl.lane_build import core_shape, plan_stages
    plans: list = []
    names: list[str] = []
    left: dict[str, str] = {}
    for spec in specs:
        cascade = load_cascade(spec)
        try:
            mine = plan_stages(cascade, arch, _defaults(cascade, given, arch))
            core_shape(arch, plans + mine)
        except EinloomError as exc:
            left[cascade.name] = exc.message
            continue
        plans += mine
        names.append(cascade.name)
    return plans, names, left


def programmable_row(specs: Sequence[str], arch_path: str, given: Mapping[str, int], options: RowOptions,
                     *, synth_cache: str | None = None, progress: Progress | None = None) -> HardwareRow:
    """The row of the programmable lane core that runs every lane-core variant among ``specs`` on
    ``arch_path`` (:func:`shared_lane_plans`): its area and, with ``options.pnr``, its Fmax.  One build
    for all of them is what a user loads programs into at run time (``rtl.programmable: true``); its
    Fmax is the representative lane-core clock (:func:`apply_shared_fmax`).  Its cycles are each
    variant's own (the variant rows): the build has none of its own."""
    from einloom.cost_models.arch import load_arch
    from einloom.rtl.lane_build import generate_lane_core
    say = progress or (lambda _stage: None)
    arch = load_arch(arch_path)
    say("plan")
    plans, names, left = shared_lane_plans(specs, arch, given)
    row = HardwareRow(spec=f"programmable: {', '.join(names)}" if names else "programmable: (no lane variant)",
                      arch=Path(arch_path).stem, core=PROGRAMMABLE if plans else "refused",
                      number_format=format_name(arch), array=f"{arch.array_2d.rows}x{arch.array_2d.cols}")
    row.programs, row.left_out = names, left
    if not plans:
        row.reason = "no variant runs on the lane core here"
        return row
    row.units = sorted({u for p in plans for u in p.program.units()})

    def build() -> tuple[str, str]:
        design, _ = generate_lane_core(plans, arch, programmable=True, examples=[plans[0].extent()])
        return design.verilog, design.top_name

    design = Design(PROGRAMMABLE, 0, 0.0, plans[0].schedule, {}, "", row.units, None, build)
    if options.synth:
        _synthesize(row, design, options, synth_cache, say)
        row.top = design.top if design._built is not None else ""
    return row


def apply_shared_fmax(rows: Sequence[dict[str, Any]], shared: Mapping[str, Any]) -> None:
    """Give each lane-core row of ``shared``'s architecture that has no post-route Fmax of its own the
    programmable build's (``shared``: :func:`programmable_row`'s dict): its throughput at that clock,
    the clock column saying where it came from.  Rows with their own Fmax, fixed-core rows and rows of
    other architectures are left as they are."""
    fmax = shared.get("fmax_mhz")
    if not fmax:
        return
    included = set(shared.get("programs") or ())
    for r in rows:
        if r.get("arch") != shared.get("arch") or r.get("core") != "lane" or r.get("fmax_mhz") \
                or r.get("spec") not in included:
            continue
        cycles = (r.get("verify") or {}).get("measured_cycles") or r.get("cycles")
        r["clock_mhz"], r["clock_source"] = fmax, SHARED_FMAX
        if cycles and r.get("useful_ops") is not None:
            r["gops"] = r["useful_ops"] / (cycles / (fmax * 1e6)) / 1e9


# ---- a sweep point's hardware ----------------------------------------------------------------------

def point_hardware(cascade: Any, arch: Any, target: str = "ecp5", part: str | None = None,
                   pnr: bool = False) -> dict[str, Any]:
    """``einloom sweep``'s ``fpga`` result of a point: the core the generator builds for ``cascade`` on
    ``arch`` (the fixed-function core, the lane core, or ``core: refused`` with the Einsum and the
    reason, never a core the cascade does not run), its area and Fmax, and its cycles, useful ops and
    GOP/s at the core's own sizes (P, M = rtl.max_queries, max_keys; E, F = rtl.head_dim, value_dim)."""
    from einloom.rtl.fpga import synthesize
    sizes = _defaults(cascade, {}, arch)
    design, _fixed_error, lane_error = choose_design(cascade, arch, sizes)
    if design is None:
        return {"fpga": {"core": "refused", "refused_einsum": refusal_einsum(lane_error),
                         "reason": lane_error.message}}
    run = synthesize(design.verilog, design.top, target, part=part, pnr=pnr)
    counts = dict(run.resources.counts)
    ops, _dense = useful_ops(design.schedule)
    clock = run.fmax_mhz or float(arch.clock_mhz)
    return {"fpga": {"core": design.kind, "target": run.target, "part": run.part, "fits": bool(run.fits),
                     "luts": counts.get("luts"), "ffs": counts.get("ffs"), "dsps": counts.get("dsps"),
                     "brams": counts.get("brams"), "fmax_mhz": run.fmax_mhz, "verilog_sha256": run.verilog_sha256,
                     "ranks": {k: int(v) for k, v in design.sizes.items() if k in _used_ranks(cascade)},
                     "cycles": int(design.cycles), "useful_ops": ops,
                     "gops": ops / (design.cycles / (clock * 1e6)) / 1e9,
                     "clock_source": "Fmax (post-route)" if run.fmax_mhz else "stated (arch clock_mhz, no P&R)"}}
