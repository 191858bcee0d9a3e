"""``einloom rtl [SPEC] --arch ARCH.yaml [--workload W] [--mapping M] -o DIR``: generate the attention
core's Verilog and manifest.  The core is derived from the architecture (``RtlConfig.from_arch``); with a
SPEC, workload or mapping, the cascade is matched to the core's phases and the mapping lowered
(``mapper.lower``) and checked against the core's dataflow (``einloom.rtl.core_form``) first."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from einloom.commands import flags

EXAMPLE = """example:
  einloom rtl --arch examples/archs/rtl-4x4-int8.yaml -o build/
  einloom rtl causal-1pass --arch examples/archs/rtl-4x4-int8.yaml --workload bert --seq-len 64 -o build/
  einloom rtl --arch examples/archs/rtl-8x8-int8.yaml -o build/ --lint --json"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rtl", help="generate synthesizable Verilog of the 1-pass attention core",
        description="Generate the attention core (2D MAC array + 1D softmax array + buffers + controller) "
                    "for the architecture's rtl: section; write <top>.v and manifest.json (parameters, "
                    "ports, stream layouts, expected cycle counts).",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", nargs="?", metavar="SPEC",
                        help="the cascade the core implements (default fusemax-1pass; causal-1pass, sliding-window "
                             "and sinks-window are the same core with its causal, window and sinks inputs set, read "
                             "from the cascade's where predicate); another structure is refused")
    parser.add_argument("--arch", required=True, help="architecture YAML with an rtl: section")
    parser.add_argument("--workload", help="workload whose E, F (and P, M within the buffers) the core serves")
    parser.add_argument("--seq-len", type=flags.seq_len, metavar="N", help="the workload's sequence length")
    add_mapping_flags(parser, "build")
    parser.add_argument("-o", "--output", default="build", help="output directory (default: build)")
    parser.add_argument("--lint", action="store_true", help="also run 'verilator --lint-only -Wall'")
    parser.add_argument("--ranks", default="", metavar="P=..,M=..",
                        help="lane core: rank sizes the program is compiled for (default: rtl.max_queries, "
                             "rtl.max_keys, rtl.head_dim, rtl.value_dim)")
    parser.add_argument("--also", action="append", default=[], metavar="SPEC",
                        help="lane core: another cascade the build must run (makes it programmable: its "
                             "program is loaded at run time); repeatable")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(func=run)


def add_mapping_flags(parser, verb: str) -> None:
    """``--mapping`` / ``--search`` (exclusive) for the commands that build a core: rtl, verify, synth."""
    mapping = parser.add_mutually_exclusive_group()
    mapping.add_argument("--mapping", metavar="NAME|FILE",
                         help=f"{verb} the core for this mapping (default: the core's own); refused, naming the "
                              "field, when the core cannot build its schedule")
    mapping.add_argument("--search", action="store_true",
                         help=f"search mappings (einloom map --search) and {verb} the core for the best one it can "
                              "build; prints how many were searched and buildable and what the best unbuildable "
                              "one gains")


def run(args) -> int:
    from einloom.einsum.errors import SpecError
    from einloom.rtl import generate
    from einloom.base.output import output_folder
    from einloom.commands import lane_cli
    from einloom.cost_models.arch import load_arch
    out = output_folder(args.output, "--output")
    arch = load_arch(args.arch)
    if lane_cli.wants_lanes(args, arch):
        return _lane_core(args, arch, lane_cli.plans_for(args, arch), out)
    try:
        cfg, schedule, dims, roles = config_for(args)
    except SpecError as exc:
        if args.workload or args.spec is None:
            raise
        return _lane_core(args, arch, lane_cli.plans_for(args, arch, exc), out)
    design = generate(cfg, schedule, shape=(dims["P"], dims["M"]), causal=roles.causal, window=roles.window,
                      sinks=roles.sinks, structure=dims["structure"], search=dims["choice"])
    if roles.heads or roles.query_groups:
        sz = schedule.sizes
        runs = 1
        for r in roles.heads:
            runs *= sz.get(r, 1)
        design.manifest["query_fold"] = {
            "heads": {r: sz.get(r, 1) for r in roles.heads},
            "query_groups": {r: sz.get(r, 1) for r in roles.query_groups},
            "runs": runs, "queries_per_run": dims["P"],
            "layout": f"one core run per coordinate of {', '.join(roles.heads) or '-'} (its K/V head); the run's "
                      f"queries are ({', '.join(roles.query_groups)}, {roles.ranks['P']}) flattened, group-major",
            "compute_cycles": runs * design.manifest["schedule_cycles"]["compute_cycles"]}
    vpath, mpath = design.write(out)
    lint_ok = _lint(design, vpath, mpath) if args.lint else None
    if args.json:
        print(json.dumps(design.manifest, indent=2))
        return 0
    lat = design.manifest["latency"]
    if dims["choice"] is not None:
        for line in dims["choice"].lines():
            print(line)
    print(f"{design.top_name}: {cfg.rows}x{cfg.cols} array, E={cfg.head_dim} F={cfg.value_dim}, "
          f"{cfg.fmt.kind} {cfg.fmt.input_bits}-bit in / {cfg.fmt.output_bits}-bit out")
    print(f"  wrote {vpath} ({len(design.verilog.splitlines()):,} lines) and {mpath}")
    sc = design.manifest["schedule_cycles"]
    mask = design.manifest["mask_inputs"]
    fold = design.manifest.get("query_fold")
    if fold:
        print(f"  {fold['runs']} run(s), one per K/V head; {fold['queries_per_run']} queries per run ({fold['layout']}): "
              f"{fold['compute_cycles']:,} cycles in all")
    band = f", window {mask['window']}" + (f" + {mask['sinks']} sinks" if mask["sinks"] else "") if mask["window"] else ""
    print(f"  implements {schedule.cascade} under mapping {schedule.mapping.name} (period {lat['period']} cycles "
          f"per key tile; mask inputs: causal {mask['causal']}{band}); P={sc['P']} M={sc['M']}: "
          f"{sc['compute_cycles']:,} cycles, 2D busy {sc['util_2d']:.1%}")
    print_structure(design.manifest)
    for ex in lat["examples"]:
        print(f"  expected compute cycles P={ex['P']} M={ex['M']} causal={ex['causal']}: "
              f"{ex['compute_cycles']:,} (2D busy {ex['util_2d']:.1%})")
    if lint_ok:
        print("  verilator --lint-only -Wall: clean")
    return 0


def design_for_mapping(args) -> tuple[str, str, dict]:
    """(verilog, top, manifest) of the core ``einloom rtl`` builds for SPEC with --mapping/--search/--workload
    (``einloom synth`` calls this); the search's lines go to stderr."""
    import sys
    from einloom.commands import lane_cli
    from einloom.cost_models.arch import load_arch
    from einloom.einsum.errors import SpecError
    from einloom.rtl import generate
    arch = load_arch(args.arch)
    try:
        if lane_cli.wants_lanes(args, arch):
            raise SpecError("the architecture is programmable")
        cfg, schedule, dims, roles = config_for(args)
    except SpecError as exc:
        if args.workload or args.spec is None:
            raise
        from einloom.rtl.lane_build import generate_lane_core
        plans = lane_cli.plans_for(args, arch, None if lane_cli.wants_lanes(args, arch) else exc)
        sizes = lane_cli.lane_sizes(args, arch)
        programmable = bool((arch.rtl or {}).get("programmable", False)) or len(plans) > 1
        report = lane_mapping_for(args, arch, plans)
        design, _ = generate_lane_core(plans, arch, programmable=programmable, examples=[(sizes["P"], sizes["M"])])
        for line in lane_schedule(args, arch, plans, design.manifest, report):
            print(line, file=sys.stderr)
        return design.verilog, design.top_name, design.manifest
    if dims["choice"] is not None:
        for line in dims["choice"].lines():
            print(line, file=sys.stderr)
    design = generate(cfg, schedule, shape=(dims["P"], dims["M"]), causal=roles.causal, window=roles.window,
                      sinks=roles.sinks, structure=dims["structure"], search=dims["choice"])
    return design.verilog, design.top_name, design.manifest


def print_structure(manifest: dict) -> None:
    """The core's loop nest, phases and buffers as the schedule derived them."""
    nest = manifest.get("loop_nest")
    if not nest:
        return
    print("  loop nest (one counter per temporal loop of the schedule):")
    for c in nest:
        levels = " x ".join(f"{rank}@{level} {n}" for level, rank, n in c["levels"])
        print(f"    {c['role']:<12} {'*'.join(c['ranks']):<6} bound {c['bound']:>4} ({c['width']} bits; {levels}): "
              f"{c['drives']}")
    print("  phases: " + ", ".join(f"{p['einsum']} ({p['array']}: {'/'.join(p['ops'])})" for p in manifest["phases"]))
    print("  buffers: " + "; ".join(f"{b['tensor']} {b['banks']} banks x {b['words_per_bank']} words resident "
                                    f"(built {b['built_words_per_bank']}, {b['sized_by']})" for b in manifest["buffers"]))
    sc = manifest["structure_cycles"]
    if "stage_cycles" in sc:
        runs = sc.get("stage_runs") or [1] * len(sc["stage_cycles"])
        print("  simulator: stages " + " + ".join(f"{c:,}" + (f" x {n} head runs" if n > 1 else "")
                                                   for c, n in zip(sc["stage_cycles"], runs))
              + f" cycles = {sc['compute_cycles']:,} cycles (loop nest, phases and buffers: the first stage's)")
    else:
        print(f"  simulator: {sc['runs']} run(s) x {sc['per_run']['compute_cycles']:,} cycles "
              f"({sc['queries_per_run']} queries x {sc['keys']} keys) = {sc['compute_cycles']:,} cycles")


def _lint(design, vpath: str, mpath: str) -> bool:
    """``verilator --lint-only -Wall`` of the written design; records it in the manifest; raises when not clean."""
    from einloom.einsum.errors import ToolError
    from einloom.rtl.tb.runner import WAIVERS, lint
    lint_ok, text = lint(vpath, design.top_name)
    design.manifest["lint"] = {"clean": lint_ok, "waivers": WAIVERS.name}
    Path(mpath).write_text(json.dumps(design.manifest, indent=2) + "\n")
    if not lint_ok:
        raise ToolError(f"verilator lint of {vpath} is not clean:\n{text.strip()[:2000]}")
    return lint_ok


def _lane_core(args, arch, plans, out) -> int:
    """The 2D array + programmable lanes core for what the fixed-function core cannot build."""
    from einloom.commands import lane_cli
    report = lane_mapping_for(args, arch, plans)        # refused before the (slow) generation
    design, vpath, mpath = lane_cli.generate_for(args, arch, plans, out)
    lines = lane_schedule(args, arch, plans, design.manifest, report)
    design.write(out)
    if args.lint:
        _lint(design, vpath, mpath)
    if args.json:
        print(json.dumps(design.manifest, indent=2))
        return 0
    for line in lines:
        print(line)
    lane_cli.print_design(design, vpath, mpath)
    print_structure(design.manifest)
    return 0


def lane_mapping_for(args, arch, plans) -> dict | None:
    """With --mapping/--search: the mapping the lane core implements for the first plan, checked
    (:func:`einloom.rtl.lane_check.lane_mapping_report`); None without either flag."""
    from einloom.rtl.lane_check import lane_mapping_report
    if not (getattr(args, "mapping", None) or getattr(args, "search", False)):
        return None
    plan = plans[0]
    mapping = _mapping(args.mapping, plan.cascade, arch, None) if getattr(args, "mapping", None) else None
    return lane_mapping_report(plan, arch, mapping=mapping, search=bool(getattr(args, "search", False)))


def lane_schedule(args, arch, plans, manifest: dict, report: dict | None = None) -> list[str]:
    """The lane core's structure from its first program's schedule (``loop_nest``, ``phases``,
    ``buffers``, ``units_1d`` in the manifest) and the mapping ``report`` (:func:`lane_mapping_for`:
    ``mapping_check`` or ``search``); returns the lines to print."""
    from einloom.rtl.lane_check import lane_structure
    plan = plans[0]
    st = lane_structure(plan.schedule, plan.program.structure, plan.cascade, arch, heads=plan.looped,
                        groups=plan.folded).to_dict()
    for key in ("loop_nest", "phases", "template_2d", "units_1d", "buffers"):
        manifest[key] = st[key]
    expected = manifest["programs"][0]["expected"][0]
    progs = manifest["programs"][:plan.stages]
    stages = [prog["expected"][0]["compute_cycles"] for prog in progs]
    # several stages: each runs once per its own head runs (mla: the projections per head, the attention
    # once with the heads folded into its queries); the loop nest above is the first stage's
    total = sum(p["head_runs"] * c for p, c in zip(progs, stages)) if plan.stages > 1 else st["runs"] * sum(stages)
    manifest["structure_cycles"] = {"runs": st["runs"], "queries_per_run": st["queries_per_run"], "keys": st["keys"],
                                    "per_run": expected, "compute_cycles": total}
    if plan.stages > 1:
        manifest["structure_cycles"]["stage_cycles"] = stages
        manifest["structure_cycles"]["stage_runs"] = [p["head_runs"] for p in progs]
    if report is None:
        return []
    report = dict(report)
    lines = report.pop("lines")
    if "search" in report:
        manifest["search"] = {**report["search"], "implemented": report["loop_order"]}
    else:
        manifest["mapping_check"] = report
    return lines


def config_for(args) -> "Any":
    """The core for --arch, after the cascade, workload and mapping the flags name are checked:
    ``(RtlConfig, the lowered Schedule it implements, its sizes (check_schedule), the CoreRoles)``."""
    from einloom.base.errors import InputError, Location
    from einloom.cost_models.arch import load_arch
    from einloom.rtl import RtlConfig
    arch = load_arch(args.arch)
    if args.seq_len is not None and args.workload is None:
        raise InputError("applies only with --workload", location=Location(field="--seq-len"),
                         hint="add --workload, or drop --seq-len")
    from einloom.einsum import load_cascade
    from einloom.mapper.lower import lower
    from einloom.rtl.core_form import check_schedule, core_mapping, core_structure, match_core, runs_and_group
    cascade = load_cascade(args.spec or "fusemax-1pass")
    scale = arch.rtl.get("scale", True) if arch.rtl is not None else True
    roles = match_core(cascade, scale=scale if isinstance(scale, bool) else True)
    rk = roles.ranks
    if args.workload is not None:
        from einloom.cost_models.workload import load_workload
        workload, sizes = load_workload(args.workload, seq_len=args.seq_len), None
    else:
        base = RtlConfig.from_arch(arch)
        workload = None
        group = 1
        sizes = {}
        for r in roles.heads + roles.query_groups:     # the cascade's own extents of its head/group ranks
            default = cascade.rank_defaults.get(r)
            sizes[r] = int(getattr(default, "value", 1) or 1)
            group *= sizes[r] if r in roles.query_groups else 1
        sizes.update({rk["P"]: max(1, base.max_queries // group), rk["M"]: base.max_keys, rk["E"]: base.head_dim,
                      rk["F"]: base.value_dim})
    rtl_section = arch.rtl or {}
    max_keys, max_queries = int(rtl_section.get("max_keys", 1 << 16)), int(rtl_section.get("max_queries", 1 << 16))

    def lower_at(mapping):
        return lower(cascade, mapping, arch, workload, sizes=sizes)

    def check(schedule):
        check_schedule(schedule, roles, arch)
        return core_structure(schedule, roles, cascade, arch, max_keys=max_keys, max_queries=max_queries)

    choice = None
    if getattr(args, "search", False):
        from einloom.rtl.select import choose_mapping
        own = core_mapping(roles, arch)
        at = lower_at(own).sizes
        choice = choose_mapping(cascade, arch, workload, sizes, lower_fn=lower_at, check=check,
                                pin_binding=own.binding, in_pe={rk["E"]: at[rk["E"]], rk["F"]: at[rk["F"]]}, own=own,
                                core_cycles=lambda schedule: fixed_core_cycles(schedule, roles, arch))
        schedule = choice.schedule
    else:
        mapping = _mapping(args.mapping, cascade, arch, workload) if args.mapping else core_mapping(roles, arch)
        schedule = lower_at(mapping)
    dims = check_schedule(schedule, roles, arch)
    dims["P"] *= runs_and_group(schedule, roles)[1]     # a K/V head's queries of every group: one block sequence
    for rank, limit, key in ((rk["P"], max_queries, "max_queries"), (rk["M"], max_keys, "max_keys")):
        size = dims["P" if key == "max_queries" else "M"]
        if size > limit:
            raise InputError(f"the workload has {rank} = {size}, but the core's buffers hold {limit} (rtl.{key})",
                             location=Location(field="--workload"),
                             hint=f"use a shorter --seq-len, or raise rtl.{key} (and the global buffer) in {args.arch}")
    structure = core_structure(schedule, roles, cascade, arch, max_keys=max_keys, max_queries=max_queries)
    # the core's E, F and tiles are the schedule's: the loop nest's counters and its spatial factors
    cfg = RtlConfig.from_arch(arch, head_dim=structure.bound("contraction"), value_dim=structure.bound("value"),
                              tile_m=dims["tile_m"], tile_p=dims["tile_p"], key_tiles=structure.bound("key_tile"),
                              query_blocks=structure.bound("query_block"))
    dims.update(structure=structure, choice=choice)
    return cfg, schedule, dims, roles


def fixed_core_cycles(schedule: Any, roles: Any, arch: Any) -> int:
    """Compute cycles of the fixed core built for ``schedule`` (its E, F and tiles; one run per K/V head,
    a run's queries of every group as one block sequence): the simulator configured as the core
    (``sim/rtl_core.run_core``, = RTL).  Raises MappingError when the core cannot build it."""
    from einloom.rtl import RtlConfig
    from einloom.rtl.attention import core_params
    from einloom.rtl.core_form import check_schedule, runs_and_group
    from einloom.sim.rtl_core import core_cycles
    dims = check_schedule(schedule, roles, arch)
    cfg = RtlConfig.from_arch(arch, head_dim=dims["head_dim"], value_dim=dims["value_dim"], tile_m=dims["tile_m"],
                              tile_p=dims["tile_p"])
    runs, group = runs_and_group(schedule, roles)
    return runs * core_cycles(core_params(cfg), dims["P"] * group, dims["M"], roles.causal, roles.window, roles.sinks)


def _mapping(choice: str, cascade, arch, workload):
    from einloom.base.errors import InputError, Location
    from einloom.mapper.baselines import BASELINES, baseline_mapping
    from einloom.mapper.mapping import load_mapping
    if choice.lower() in BASELINES and not Path(choice).exists():
        if workload is None:
            raise InputError(f"the baseline mapping {choice} is built for a workload", location=Location(
                field="--mapping"), hint="add --workload, or give a mapping file")
        return baseline_mapping(choice, cascade, arch, workload)
    return load_mapping(choice)
