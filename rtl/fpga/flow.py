"""Synthesis (Yosys) and, for ECP5, place and route (nextpnr) of a Verilog design, with a result cache.

What is measured
----------------
* Area: post-synthesis primitive cell counts of the *bare core* (``synth_ecp5``, ``synth_xilinx
  -flatten -noiopad``, ``synth_ice40`` (``-dsp`` on the UltraPlus); Yosys's defaults otherwise), classified into LUTs, FFs, DSPs,
  BRAMs, carry cells and LUT-RAM (:mod:`einloom.rtl.fpga.targets`).  These are Yosys's mapping,
  not a vendor tool's: expect Vivado to differ (usually fewer LUTs) for the Xilinx numbers.
* Fmax (ECP5 only): nextpnr-ecp5's post-route maximum frequency of the core wrapped in the I/O
  harness (:mod:`einloom.rtl.fpga.harness`), speed grade 6 (``speed`` 7 or 8 for the faster grades,
  cached per grade), CABGA381 package, one placement seed and a 100 MHz timing target.  One seed gives one sample of a noisy quantity (a few % between seeds).
* Xilinx and iCE40 are synthesis only (no P&R tool for them here), so they report no Fmax.

Results are cached per stage (synthesis; P&R) under a key hashed from the Verilog text, the top
name, the target, the Yosys script (which carries any part-specific synthesis option), the part and
the nextpnr options (P&R), the harness text and the tool versions, so a
repeated call with unchanged inputs returns immediately and says so in :attr:`SynthResult.cached`.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from einloom.einsum.errors import Location, ToolError
from einloom.rtl.fpga.harness import HARNESS_TOP, generate_harness, generate_stub, parse_ports
from einloom.rtl.fpga.resources import (
    Resources, check_pnr_report, fit_error, overflows, parse_stat_json, resources_from_cells,
    smallest_fitting_part, utilization,
)
from einloom.rtl.fpga.targets import Part, Target, get_part, get_target
from einloom.rtl.fpga.tools import (ROUTER2_DIVERGING, ROUTER2_PLATEAU, STALL_HINT, CapacityError, StalledError,
                                    router2_stall, run_tool, tool_version)

#: Bumped whenever the flow changes what a cached result means.
FLOW_VERSION = 2
#: nextpnr's timing target and placement seed (fixed so that results are reproducible).
PNR_TARGET_MHZ = 100.0
PNR_SEED = 1
#: The automatic part choice for place and route leaves this much of a part's LUT sites free: a
#: design that fits by its cell counts but fills 97 % of the LUT sites (the 2x2 int8 sigmoid lane core
#: on the LFE5U-45F) is unroutable (nextpnr-ecp5 gave up routing the clock after 16 min) and timing
#: degrades well before that; the pipelined sigmoid lane core at 84.7 % of the 45F's LUT sites did not
#: route either (router2 stayed at ~12,000 overused wires), so 75 %.  A part the user names is used
#: as named.
ROUTABLE_LUT_FRACTION = 0.75
#: nextpnr-ecp5's analytic placer (HeAP) weighted harder towards timing than its defaults (timing
#: weight 10, criticality exponent 2).  Measured on the 4x4 int8 core (commit 4f7349c, LFE5U-45F,
#: grade 6), defaults -> these: seed 1 79.61 -> 99.56 MHz, seed 2 91.12 -> 94.55, seed 3 98.58 -> 82.68
#: (mean 89.8 -> 92.3): the seed-to-seed spread (its critical paths are 70-95 % routing) is larger than
#: the weights' effect, so a figure is one seed's, and a seed sweep is what finds the best placement.
PLACER_OPTIONS = ("--placer-heap-timingweight", "30", "--placer-heap-critexp", "4")
#: ECP5 speed grades nextpnr-ecp5 times (``--speed``; Lattice DS1044: -6 slowest, -8 fastest) and the
#: default, 6, the slowest grade and nextpnr's own default (so a grade-6 run passes no ``--speed`` and
#: keeps the cache keys of the results stored before the option existed)
SPEED_GRADES = (6, 7, 8)
PNR_SPEED = 6
#: nextpnr routers.  router2 is usually the faster (the earlier 4x4 core on the 45k: 7 min, router1
#: 15 min), but on some placements it stops converging and would run for hours (the pipelined 4x4
#: int8 core: overuse growing from iteration 17; router1 routed it in 13 min at 80.4 MHz).  ``auto``
#: runs router2 and, when :func:`~einloom.rtl.fpga.tools.router2_stall` says it stalled, router1.
ROUTERS = ("auto", "router2", "router1")
#: seconds between looks at router2's log
PNR_POLL_S = 5.0
DEFAULT_ROUTER = "auto"

#: ``progress(stage, event)`` with stage in {"synth", "pnr"} and event in {"start", "done", "cached",
#: "stalled"} ("stalled": the watched router2 was stopped; a router1 "start" follows).
Progress = Callable[[str, str], None]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/einloom/synth`` (``~/.cache/einloom/synth`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "einloom" / "synth"


@dataclass
class SynthResult:
    """What :func:`synthesize` measured for one design on one target and part.

    Members
    -------
    top, target, part, device : str
        The design's top module, the target family, the part's short and full names.
    part_selection : str
        ``"chosen"`` when the caller named the part, ``"smallest fitting"`` otherwise,
        ``"smallest routable"`` when place and route moved it up to leave LUT headroom
        (:data:`ROUTABLE_LUT_FRACTION`),
        ``"largest (does not fit)"`` when the fit check was off and nothing fits.
    resources : Resources
        Post-synthesis counts of the bare core (see :class:`einloom.rtl.fpga.resources.Resources`).
    utilization : dict
        Per capacity category of the part: used, available, fraction.
    fits : bool
        Whether the synthesized core fits the part (by its primitive counts).
    fmax_mhz : float or None
        Post-route Fmax of the core inside the I/O harness (ECP5 with P&R only).
    pnr : dict or None
        P&R details: ``fmax_mhz``, ``target_mhz``, ``seed``, ``speed`` (grade), ``clock``, ``harness_utilization``
        (nextpnr's used/available per BEL type, harness included).
    cached : dict[str, bool]
        Per stage run ("synth", "pnr"): True when the result came from the cache.
    seconds : dict[str, float]
        Per stage: tool wall-clock seconds (of the original run when cached).
    tool_versions : dict[str, str]
    verilog_sha256 : str
    work_dirs : dict[str, str]
        Per stage: the directory holding that stage's scripts, logs and reports.
    notes : list[str]
        Anything the reader of the numbers should know (e.g. P&R skipped).
    """

    top: str
    target: str
    part: str
    device: str
    part_selection: str
    resources: Resources
    utilization: dict
    fits: bool
    fmax_mhz: float | None = None
    pnr: dict | None = None
    cached: dict[str, bool] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    tool_versions: dict[str, str] = field(default_factory=dict)
    verilog_sha256: str = ""
    work_dirs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def cache_hit(self) -> bool:
        """True when every stage that ran came from the cache."""
        return bool(self.cached) and all(self.cached.values())

    def to_dict(self) -> dict:
        """JSON-ready dictionary (resource counts under ``resources``, raw cells under ``cells``)."""
        return {
            "top": self.top, "target": self.target, "part": self.part, "device": self.device,
            "part_selection": self.part_selection,
            "resources": dict(self.resources.counts),
            "fmax_mhz": self.fmax_mhz,
            "fits": self.fits,
            "utilization": self.utilization,
            "cells": dict(self.resources.cells),
            "pnr": self.pnr,
            "cached": dict(self.cached), "seconds": dict(self.seconds),
            "tool_versions": dict(self.tool_versions),
            "verilog_sha256": self.verilog_sha256,
            "work_dirs": dict(self.work_dirs),
            "notes": list(self.notes),
        }


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class _Stage:
    """A cached tool stage: ``cache_dir/<stage>-<key>/`` holds its work files and ``result.json``."""

    def __init__(self, cache_dir: Path, stage: str, key: str):
        self.stage = stage
        self.dir = cache_dir / f"{stage}-{key[:24]}"
        self.result_path = self.dir / "result.json"

    def load(self) -> dict | None:
        try:
            return json.loads(self.result_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def fresh_dir(self) -> Path:
        """A private work directory (``<dir>.work-<pid>``); :meth:`store` renames it into place."""
        self.work = self.dir.with_name(f"{self.dir.name}.work-{os.getpid()}")
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        return self.work

    def store(self, result: dict) -> Path:
        """Write ``result.json`` into the work directory and publish it; returns the stage directory.

        Concurrent runs of the same stage each work privately; the first to finish publishes.
        """
        (self.work / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True))
        if self.result_path.exists():           # another run published first: keep theirs
            shutil.rmtree(self.work, ignore_errors=True)
            return self.dir
        if self.dir.exists():                   # a stale directory without a result
            shutil.rmtree(self.dir, ignore_errors=True)
        try:
            self.work.rename(self.dir)
        except OSError:
            shutil.rmtree(self.work, ignore_errors=True)
        return self.dir


@contextmanager
def _announce(progress: Progress | None, stage: str) -> Iterator[None]:
    if progress:
        progress(stage, "start")
    try:
        yield
    except StalledError:
        if progress:
            progress(stage, "stalled")
        raise
    if progress:
        progress(stage, "done")


class _Flow:
    def __init__(self, verilog: str, top: str, target: Target, cache_dir: Path, progress: Progress | None,
                 seed: int = PNR_SEED, speed: int = PNR_SPEED):
        self.verilog, self.top, self.target, self.seed, self.speed = verilog, top, target, seed, speed
        self.cache_dir = cache_dir
        self.progress = progress
        self.verilog_sha = hashlib.sha256(verilog.encode()).hexdigest()
        self.versions = {"yosys": tool_version("yosys")}
        if target.has_pnr:
            self.versions["nextpnr-ecp5"] = tool_version("nextpnr-ecp5")
        self.cached: dict[str, bool] = {}
        self.seconds: dict[str, float] = {}
        self.work_dirs: dict[str, str] = {}
        self._synth_memo: dict[str, tuple[Resources, Path]] = {}

    def _mark(self, stage: str, cached: bool, seconds: float, directory: Path) -> None:
        self.cached[stage] = cached
        self.seconds[stage] = round(seconds, 2)
        self.work_dirs[stage] = str(directory)
        if cached and self.progress:
            self.progress(stage, "cached")

    def synth(self, part: Part) -> Resources:
        """Synthesize the bare core with ``part``'s synthesis options (cached)."""
        return self._synth(part)[0]

    def _synth(self, part: Part) -> tuple[Resources, Path]:
        """(resources, stage directory); for a target with P&R the directory also holds the mapped
        core netlist ``core_syn.json.gz`` that the P&R stage reuses instead of synthesizing again."""
        script = self.target.synth_script(self.top, part, ["core.v"])
        if self.target.has_pnr:
            script += "write_json core_syn.json\n"
        if script in self._synth_memo:
            return self._synth_memo[script]
        key = _digest("synth", FLOW_VERSION, self.verilog_sha, self.top, self.target.name, script,
                      self.versions["yosys"])
        stage = _Stage(self.cache_dir, "synth", key)
        stored = stage.load()
        if stored is not None and self.target.has_pnr and not (stage.dir / "core_syn.json.gz").exists():
            stored = None
        if stored is not None:
            # Classify again from the raw cell counts, so a corrected cell table applies to old runs.
            resources = resources_from_cells(self.target, stored["resources"]["cells"])
            done = stage.dir
            self._mark("synth", True, stored["seconds"], done)
        else:
            work = stage.fresh_dir()
            (work / "core.v").write_text(self.verilog)
            (work / "synth.ys").write_text(script)
            with _announce(self.progress, "synth"):
                start = time.monotonic()
                run_tool("yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], work, "yosys.out")
                seconds = time.monotonic() - start
            stat_path = work / "stat.json"
            if not stat_path.exists():
                raise ToolError(f"yosys wrote no stat report (log: {work / 'yosys.log'})",
                                hint="see the yosys log")
            resources = parse_stat_json(stat_path.read_text(), self.target, self.top)
            netlist = work / "core_syn.json"
            if netlist.exists():
                with open(netlist, "rb") as raw, gzip.open(work / "core_syn.json.gz", "wb", compresslevel=3) as packed:
                    shutil.copyfileobj(raw, packed)
                netlist.unlink()
            done = stage.store({"resources": resources.to_dict(), "seconds": seconds})
            self._mark("synth", False, seconds, done)
        self._synth_memo[script] = (resources, done)
        return resources, done

    def pnr(self, part: Part, router: str = DEFAULT_ROUTER) -> dict:
        """Place and route the core inside the I/O harness on ``part`` (ECP5; cached).

        The harness is synthesized around a black-box stub of the core, and the core's already-mapped
        netlist from the synthesis stage is put in the stub's place (:func:`merge_netlists`), so the
        core is not synthesized twice and the placed core is exactly the one whose area is reported.
        ``router="auto"`` runs router2 under :func:`router2_stall`'s watch and, if it stalls, router1
        (``pnr["router2_stalled"]`` then says why); a stall is cached like a result (keyed with the
        stall rule), so a rerun goes straight to router1.  A named router is not watched.
        """
        if router != "auto":
            return self._pnr(part, router)
        try:
            return self._pnr(part, "router2", watched=True)
        except StalledError as stalled:
            pnr = self._pnr(part, "router1")
            return {**pnr, "router2_stalled": stalled.message}

    def _pnr(self, part: Part, router: str, *, watched: bool = False) -> dict:
        _, synth_dir = self._synth(part)
        ports = parse_ports(self.verilog, self.top)
        harness = generate_harness(ports, self.top)
        stub = generate_stub(ports, self.top)
        script = (f"read_verilog -sv harness.v\nread_verilog -sv -lib core_stub.v\n"
                  f"synth_ecp5 -top {HARNESS_TOP} -json harness_syn.json\n")
        args = [*part.pnr_options, "--json", "harness.json", "--report", "report.json",
                "--freq", f"{PNR_TARGET_MHZ:g}", "--seed", str(self.seed), "--timing-allow-fail", "--router", router,
                *PLACER_OPTIONS]
        if self.speed != PNR_SPEED:
            args += ["--speed", str(self.speed)]
        key = _digest("pnr", FLOW_VERSION, self.verilog_sha, self.top, self.target.name, part.name,
                      self.target.synth_script(self.top, part, ["core.v"]), harness, script, args,
                      self.versions, *(("watched", ROUTER2_DIVERGING, ROUTER2_PLATEAU) if watched else ()))
        stage = _Stage(self.cache_dir, "pnr", key)
        stored = stage.load()
        if stored is not None and "stalled" in stored:
            raise StalledError(stored["stalled"], hint=STALL_HINT)
        if stored is not None:
            self._mark("pnr", True, stored["seconds"], stage.dir)
            pnr = {"speed": self.speed, **stored["pnr"]}     # (results stored before --speed: grade 6)
            if "critical_path" not in pnr:          # a result stored before the summary existed
                pnr = {**pnr, "critical_path": _critical_path_of(stage.dir)}
            return pnr
        work = stage.fresh_dir()
        (work / "harness.v").write_text(harness)
        (work / "core_stub.v").write_text(stub)
        (work / "harness.ys").write_text(script)
        with _announce(self.progress, "pnr"):
            start = time.monotonic()
            run_tool("yosys", ["-q", "-l", "harness-yosys.log", "-s", "harness.ys"], work, "harness-yosys.out")
            with gzip.open(synth_dir / "core_syn.json.gz", "rt") as packed:
                core_netlist = json.load(packed)
            merged = merge_netlists(json.loads((work / "harness_syn.json").read_text()), core_netlist, self.top)
            (work / "harness.json").write_text(json.dumps(merged))
            del core_netlist, merged
            middle = time.monotonic()
            try:
                run_tool("nextpnr-ecp5", args, work, "nextpnr.log", poll_s=PNR_POLL_S,
                         watch=router2_stall if watched else None)
            except StalledError as stalled:
                for bulky in ("harness_syn.json", "harness.json"):
                    (work / bulky).unlink(missing_ok=True)
                message = stalled.message.replace(str(work), str(stage.dir))    # where the log will be
                stage.store({"stalled": message, "seconds": time.monotonic() - start})
                raise StalledError(message, hint=STALL_HINT) from None
            seconds = time.monotonic() - start
        report_path = work / "report.json"
        try:
            report = json.loads(report_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise ToolError(f"nextpnr wrote no readable report (log: {work / 'nextpnr.log'})",
                            hint="see the nextpnr log") from None
        check_pnr_report(report, self.target, part)
        pnr = pnr_summary(report, self.seed, self.speed)
        pnr["router"] = router
        pnr["seconds_harness_synth"] = round(middle - start, 2)
        pnr["seconds_nextpnr"] = round(seconds - (middle - start), 2)
        pnr["critical_path"] = _critical_path_of(work)
        for bulky in ("harness_syn.json", "harness.json"):       # netlists: large, and rebuildable
            (work / bulky).unlink(missing_ok=True)
        done = stage.store({"pnr": pnr, "seconds": seconds})
        self._mark("pnr", False, seconds, done)
        return pnr


def merge_netlists(harness: dict, core: dict, core_name: str) -> dict:
    """One hierarchical Yosys JSON netlist: the harness (synthesized around a black-box stub of the
    core) with the stub replaced by the core's already-mapped module; nextpnr flattens it on import."""
    modules = {name: module for name, module in harness["modules"].items() if name != core_name}
    try:
        module = dict(core["modules"][core_name])
    except KeyError:
        raise ToolError(f"the synthesized netlist has no module {core_name!r}",
                        hint="the synthesis cache may be damaged; delete it or pass another --cache-dir") from None
    module["attributes"] = {k: v for k, v in module.get("attributes", {}).items() if k != "top"}
    modules[core_name] = module
    return {**harness, "modules": modules}


def critical_path_summary(log: str) -> dict | None:
    """The post-route critical path of nextpnr's log: ``{"ns", "logic_ns", "routing_ns", "from",
    "to"}`` (``from``/``to``: the start and end cells, harness prefix ``core.`` kept), or None when the
    log has no clock-to-clock path report.  Taken from the last "Critical path report for clock"
    block (the post-route one; the cross-domain I/O paths that follow it are skipped)."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if "Critical path report for clock" in line]
    if not starts:
        return None
    source = sink = None
    for line in lines[starts[-1] + 1:]:
        text = line.partition("Info:")[2].strip()
        if "Source" in text and source is None:
            source = text.rsplit(" ", 1)[-1]
        elif text.startswith("Sink"):
            sink = text.rsplit(" ", 1)[-1]
        elif text.endswith("ns routing") and "ns logic" in text:
            parts = text.replace(",", "").split()
            logic, routing = float(parts[0]), float(parts[3])
            return {"ns": round(logic + routing, 2), "logic_ns": logic, "routing_ns": routing,
                    "from": source, "to": sink}
    return None


def _critical_path_of(directory: Path) -> dict | None:
    try:
        return critical_path_summary((directory / "nextpnr.log").read_text(errors="replace"))
    except OSError:
        return None


def pnr_summary(report: dict, seed: int = PNR_SEED, speed: int = PNR_SPEED) -> dict:
    """Fmax and utilization from a nextpnr ``--report`` document.

    ``fmax_mhz`` is the lowest achieved post-route frequency over the report's clocks (the harness has
    one clock).  Raises ToolError when the report has no clock (e.g. a design without flip-flops).
    """
    clocks = {name: entry.get("achieved") for name, entry in report.get("fmax", {}).items()
              if entry.get("achieved") is not None}
    if not clocks:
        raise ToolError("nextpnr reported no clock frequency",
                        hint="the design may have no clocked logic; use --no-pnr for area only")
    clock = min(clocks, key=clocks.get)
    return {
        "fmax_mhz": round(float(clocks[clock]), 2),
        "clock": clock,
        "clocks_mhz": {name: round(float(value), 2) for name, value in clocks.items()},
        "target_mhz": PNR_TARGET_MHZ,
        "seed": seed,
        "speed": speed,
        "harness_utilization": {bel: {"used": e.get("used"), "available": e.get("available")}
                                for bel, e in report.get("utilization", {}).items() if e.get("used")},
    }


def synthesize(verilog: str, top: str, target: str, part: str | None = None, pnr: bool = True,
               cache_dir: str | os.PathLike | None = None, *, check_fit: bool = True,
               progress: Progress | None = None, router: str = DEFAULT_ROUTER, seed: int = PNR_SEED,
               speed: int = PNR_SPEED) -> SynthResult:
    """Synthesize ``verilog`` (top module ``top``) for ``target`` and report its resources and Fmax.

    Parameters
    ----------
    verilog : str
        The complete Verilog text of the design (every module it instantiates).
    top : str
        Name of the top module.
    target : {"ecp5", "xilinx", "ice40"}
    part : str, optional
        A part of the target (ecp5: 25k, 45k, 85k; xilinx: xc7a35t, xc7a100t, xc7a200t; ice40:
        up5k, hx8k).  Default: the smallest part the synthesized core fits.
    pnr : bool
        Place and route (ECP5 only; ignored for the other targets, which have no P&R here).
    cache_dir : path, optional
        Result cache; default :func:`default_cache_dir`.
    check_fit : bool
        When True (default), a design that does not fit raises ToolError.  When False, area is
        reported anyway against the named (or largest) part, P&R is skipped if it does not fit,
        and :attr:`SynthResult.fits` says so.
    progress : callable, optional
        ``progress(stage, event)`` as stages start and finish (see :data:`Progress`).
    router : {"auto", "router2", "router1"}
        nextpnr's router (see :data:`ROUTERS`); ``auto`` (default) is router2, then router1 if
        router2 stalls.
    seed : int
        nextpnr's placement seed (default :data:`PNR_SEED`); each seed is one sample of Fmax, cached
        separately.
    speed : {6, 7, 8}
        ECP5 speed grade nextpnr times the design for (default 6, the slowest); cached per grade.
        ECP5 only: another target with a grade other than 6 is an error.

    Raises
    ------
    ToolError
        Unknown target or part, a tool failure (message carries the tool's first error), or a design
        that does not fit (message names the overflowing resources, hint names a part that fits).

    Limits: one clock domain is assumed for the P&R harness (ports ``clk``/``*_clk``); Fmax is one
    seed's result; area is Yosys's mapping, not a vendor tool's.
    """
    target_obj = get_target(target)
    if router not in ROUTERS:
        raise ToolError(f"unknown nextpnr router {router!r}", location=Location(field="--router"),
                        hint=f"choose one of {', '.join(ROUTERS)}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ToolError(f"cannot create the cache directory {cache}: {error.strerror}",
                        location=Location(field="--cache-dir"), hint="pass a writable --cache-dir") from None
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ToolError(f"nextpnr seed {seed!r} is not a non-negative integer", location=Location(field="--seed"),
                        hint="pass e.g. --seed 2")
    if isinstance(speed, bool) or speed not in SPEED_GRADES:
        raise ToolError(f"ECP5 speed grade {speed!r} is not one of {', '.join(map(str, SPEED_GRADES))}",
                        location=Location(field="--speed"), hint="pass --speed 6 (default), 7 or 8")
    if speed != PNR_SPEED and not target_obj.has_pnr:
        raise ToolError(f"a speed grade applies to ECP5 place and route only, not to {target}",
                        location=Location(field="--speed"), hint="drop --speed, or use --target ecp5")
    flow = _Flow(verilog, top, target_obj, cache, progress, seed, speed)
    notes: list[str] = []

    if part is not None:
        chosen = get_part(target_obj, part)
        resources = flow.synth(chosen)
        selection = "chosen"
        if overflows(resources, chosen):
            if check_fit:
                # Name the smallest part that fits (synthesizing again where its script differs).
                for candidate in target_obj.parts:
                    if candidate is chosen or _hopeless(resources, candidate):
                        continue
                    if not overflows(flow.synth(candidate), candidate):
                        raise _fit_error_naming(target_obj, chosen, resources, candidate)
                raise fit_error(target_obj, chosen, resources, chosen=True)
    else:
        chosen, resources = None, None
        skipped = False
        for candidate in target_obj.parts:
            skipped = resources is not None and _hopeless(resources, candidate)
            if skipped:
                continue
            resources = flow.synth(candidate)
            if not overflows(resources, candidate):
                chosen = candidate
                break
        selection = "smallest fitting"
        if chosen is None:
            chosen = target_obj.parts[-1]
            if check_fit:
                # A part skipped without its own synthesis is judged on LUTs/FFs/BRAMs only.
                raise fit_error(target_obj, chosen, resources, chosen=False,
                                ignore=("dsps",) if skipped else ())
            selection = "largest (does not fit)"
    fits = not overflows(resources, chosen)
    if not fits:
        notes.append(f"design does not fit {chosen.name}; area reported against it")
    elif selection == "smallest fitting" and pnr and target_obj.has_pnr:
        smallest = chosen
        chosen, resources = _routable_part(flow, target_obj, chosen, resources, notes)
        if chosen is not smallest:
            selection = "smallest routable"

    pnr_info = None
    if pnr and target_obj.has_pnr:
        if fits:
            while True:
                try:
                    pnr_info = flow.pnr(chosen, router)
                    break
                except CapacityError:
                    # The core fits by its cell counts but not once placed with the harness: the
                    # automatic choice moves to the next part; a part the user named is an error.
                    larger = target_obj.parts[target_obj.parts.index(chosen) + 1:]
                    if selection != "smallest fitting" or not larger:
                        raise
                    notes.append(f"{chosen.name} too small once placed; moved to {larger[0].name}")
                    chosen = larger[0]
                    resources = flow.synth(chosen)
            if "router2_stalled" in pnr_info:
                notes.append(f"{pnr_info['router2_stalled']}; routed with router1")
        else:
            notes.append("P&R skipped: the design does not fit the part")
    elif pnr and not target_obj.has_pnr:
        notes.append(f"no place and route for {target_obj.name}: synthesis only, no Fmax")

    return SynthResult(
        top=top, target=target_obj.name, part=chosen.name, device=chosen.device,
        part_selection=selection, resources=resources, utilization=utilization(resources, chosen),
        fits=fits, fmax_mhz=pnr_info["fmax_mhz"] if pnr_info else None, pnr=pnr_info,
        cached=flow.cached, seconds=flow.seconds, tool_versions=flow.versions,
        verilog_sha256=flow.verilog_sha, work_dirs=flow.work_dirs, notes=notes,
    )


def _lut_fraction(resources: Resources, part: Part) -> float:
    return utilization(resources, part)["luts"]["fraction"]


def _routable_part(flow: "_Flow", target: Target, chosen: Part, resources: Resources,
                   notes: list[str]) -> tuple[Part, Resources]:
    """The automatically chosen part moved up while its LUT sites are fuller than
    :data:`ROUTABLE_LUT_FRACTION` and a larger part exists (a note says so); the largest part is kept,
    with a note, when no part leaves that headroom."""
    while _lut_fraction(resources, chosen) > ROUTABLE_LUT_FRACTION:
        larger = target.parts[target.parts.index(chosen) + 1:]
        full = f"{chosen.name}'s LUT sites {_lut_fraction(resources, chosen):.0%} used"
        if not larger:
            notes.append(f"{full} (above {ROUTABLE_LUT_FRACTION:.0%}: routing may fail or time poorly); "
                         f"no larger {target.name} part")
            break
        candidate = flow.synth(larger[0])
        if overflows(candidate, larger[0]):
            break
        notes.append(f"{full} (above {ROUTABLE_LUT_FRACTION:.0%}, too full to route well); "
                     f"placed and routed on {larger[0].name}")
        chosen, resources = larger[0], candidate
    return chosen, resources


def _hopeless(resources: Resources, part: Part) -> bool:
    """Whether a part cannot fit a design that another synthesis of it (e.g. with DSPs) already
    overflows in LUTs, FFs or BRAMs: mapping without DSPs only adds LUTs and FFs, so the (slow)
    synthesis for that part can be skipped."""
    return any(o.category != "dsps" for o in overflows(resources, part))


def _fit_error_naming(target: Target, chosen: Part, resources: Resources, fitting: Part) -> ToolError:
    error = fit_error(target, chosen, resources, chosen=True)
    hint = f"use --part {fitting.name}, the smallest {target.name} part it fits"
    return ToolError(error.message, location=error.location, hint=hint)


def smallest_part_for(resources: Resources, target: str) -> str | None:
    """Name of the smallest part of ``target`` that ``resources`` fit (None if none does)."""
    part = smallest_fitting_part(get_target(target), resources)
    return part.name if part else None
