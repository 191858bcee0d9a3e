"""The lane core's side of ``einloom rtl`` and ``einloom verify`` (``rtl/lane_core.py``).

A cascade the fixed-function core (``rtl/core_form.py``) refuses, or any cascade on an architecture
with ``rtl.programmable: true`` (or with ``--also``), is built as the 2D array + programmable lanes
core when the lane compiler accepts it; otherwise both refusals are reported, each naming its Einsum.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def lane_sizes(args: Any, arch: Any) -> dict[str, int] | None:
    """Rank sizes of ``--ranks`` (default: P, M = the buffers' max_queries, max_keys; E, F = head_dim,
    value_dim of ``rtl:``)."""
    from einloom.einsum.ranks import parse_rank_assignments
    rtl = arch.rtl or {}
    sizes = {"P": int(rtl.get("max_queries", 64)), "M": int(rtl.get("max_keys", 64)),
             "E": int(rtl.get("head_dim", 8)), "F": int(rtl.get("value_dim", 8))}
    if getattr(args, "ranks", None):
        sizes.update(parse_rank_assignments(args.ranks))
    return sizes


def wants_lanes(args: Any, arch: Any) -> bool:
    rtl = arch.rtl or {}
    return bool(rtl.get("programmable", False)) or bool(getattr(args, "also", None))


def plans_for(args: Any, arch: Any, fixed_error: Exception | None = None) -> list:
    """The lane plans of SPEC and ``--also`` (refusals name the Einsum; with ``fixed_error`` the
    fixed-function core's refusal is reported too)."""
    from einloom.einsum import load_cascade
    from einloom.einsum.errors import SpecError
    from einloom.rtl.lane_build import plan_stages
    sizes = lane_sizes(args, arch)
    plans = []
    for spec in [args.spec or "fusemax-1pass"] + list(getattr(args, "also", None) or []):
        try:       # a cascade of several stages (linear attention) adds a plan per stage
            plans.extend(plan_stages(load_cascade(spec), arch, sizes))
        except SpecError as exc:
            if fixed_error is not None:
                exc.message = f"{exc.message}; and the fixed-function core: {fixed_error}"
            raise
    return plans


def generate_for(args: Any, arch: Any, plans: list, out: str) -> tuple[Any, str, str]:
    from einloom.rtl.lane_build import generate_lane_core
    programmable = bool((arch.rtl or {}).get("programmable", False)) or len(plans) > 1
    sizes = lane_sizes(args, arch)
    design, _core = generate_lane_core(plans, arch, programmable=programmable,
                                       examples=[(sizes["P"], sizes["M"])])
    design.manifest["sizes"] = sizes
    design.manifest["arch"] = str(args.arch)
    vpath, mpath = design.write(out)
    return design, vpath, mpath


def print_design(design: Any, vpath: str, mpath: str) -> None:
    man = design.manifest
    p = man["parameters"]
    kind = "programmable" if man["programmable"] else "fixed program"
    print(f"{design.top_name}: lane core, {p['rows']}x{p['cols']} 2D array + {p['cols']} lanes ({kind}), "
          f"E={p['head_dim']} F={p['value_dim']}, " +
          ("bf16 in / fp32 arithmetic" if p["number_format"] == "bf16" else
           f"int{p['number_format'].get('input_bits', '?')} in (fraction bits {p['number_format'].get('frac_bits', '?')})"
           " / fixed-point arithmetic") +
          f" / {p['output']} out")
    print(f"  wrote {vpath} ({len(design.verilog.splitlines()):,} lines) and {mpath}")
    for prog in man["programs"]:
        ex = prog["expected"][0]
        print(f"  {prog['cascade']}: scores {', '.join(prog['scores'])}; value products "
              f"{', '.join(prog['value_products'])}; lane units {', '.join(prog['units'])}")
        runs = f" x {prog['head_runs']} head runs" if prog.get("head_runs", 1) > 1 else ""
        print(f"    {prog.get('query_rank', 'P')}={ex['P']} (queries) {prog.get('key_rank', 'M')}={ex['M']} (keys): "
              f"{ex['compute_cycles']:,} cycles (cycle model){runs}, 2D busy {ex['util_2d']:.1%}")


def verify_lanes(args: Any, arch: Any, plans: list) -> int:
    """Build the lane core for ``plans``, run each plan (plain, random backpressure, a second seed) and,
    on a programmable build, reload each program between runs; print the table."""
    from einloom.report.table import format_table
    from einloom.commands.synth import Spinner
    sizes = lane_sizes(args, arch)
    programmable = bool((arch.rtl or {}).get("programmable", False)) or len(plans) > 1
    jobs = []
    specs = list(dict.fromkeys(str(Path(p.cascade.file).resolve()) for p in plans))   # the tb runs elsewhere
    names = [Path(s).stem for s in specs]
    for i, name in enumerate(names):
        load = programmable and i > 0         # the first program runs from reset
        jobs += [{"name": f"{name}", "spec": specs[i], "sizes": sizes, "seed": 11 + i, "load": load},
                 {"name": f"{name}_backpressure", "spec": specs[i], "sizes": sizes, "seed": 21 + i,
                  "backpressure": 0.3}]
    if programmable and len(specs) > 1:     # back to the first program after the others
        jobs.append({"name": f"{names[0]}_reloaded", "spec": specs[0],
                     "sizes": sizes, "seed": 31, "load": True})
    spinner = Spinner(prefix="einloom verify")
    spinner(f"verilate the lane core and simulate {len(jobs)} run(s)", "start")
    try:
        design, build_dir, results = run_lane_jobs(args.arch, arch, plans, sizes, jobs, programmable=programmable,
                                                   quiet=not args.verbose)
        spinner(f"verilate the lane core and simulate {len(jobs)} run(s)", "done")
    finally:
        spinner.close()
    ok = len(results) == len(jobs) and all(r["passed"] for r in results)
    if args.json:
        print(json.dumps({"arch": str(args.arch), "top": design.top_name, "kind": "lane-core", "passed": ok,
                          "build_dir": str(build_dir), "programmable": programmable, "jobs": results}, indent=2))
        return 0 if ok else 1
    rows = []
    for r, job in zip(results, jobs):
        rows.append([r["name"], Path(r["spec"]).stem, r["P"], r["M"], job.get("backpressure", 0.0),
                     r["outputs_checked"], r["cycles"], r["expected_cycles"],
                     f"{r['busy_2d'] / r['cycles']:.1%}", "PASS" if r["passed"] else "FAIL"])
    print(format_table(["run", "spec", "P", "M", "backpressure", "outputs", "cycles", "expected", "2D busy",
                        "result"], rows, title=f"{design.top_name} ({_format_name(design)} lane core, "
                                               f"{'programmable' if programmable else 'fixed program'})"))
    print(f"\n{'all passed' if ok else 'FAILURES'}: {sum(1 for r in results if r['passed'])}/{len(jobs)}; "
          f"build {build_dir}")
    for r in results:
        for p in r["problems"][:3]:
            print(f"  {r['name']}: {p}")
    return 0 if ok else 1


def _format_name(design) -> str:
    """``bf16``, or ``fixed int8`` / ``fixed int16`` (input bits) from the lane core's manifest."""
    nf = design.manifest["parameters"]["number_format"]
    return nf if isinstance(nf, str) else f"fixed int{nf['input_bits']}"


def run_lane_jobs(arch_path: str, arch: Any, plans: list, sizes: dict[str, int], jobs: list[dict[str, Any]], *,
                  programmable: bool, quiet: bool = True) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Build the lane core of ``plans`` with Verilator (cached per design) and run ``jobs`` on it (each a
    dict of name, seed and optionally spec, sizes, backpressure, load; spec and sizes default to the
    first plan's cascade and ``sizes``): ``(design, build directory, per-job results)``."""
    from einloom.rtl.lane_build import generate_lane_core
    from einloom.rtl.tb.runner import build, run_tests
    design, _ = generate_lane_core(plans, arch, programmable=programmable, top="einloom_lane_core")
    specs = list(dict.fromkeys(str(Path(p.cascade.file).resolve()) for p in plans))   # the tb runs elsewhere
    jobs = [{"spec": specs[0], "sizes": sizes, **job} for job in jobs]
    build_dir = build(design.verilog, design.top_name, quiet=quiet)
    out = run_tests(build_dir, design.top_name, "einloom.rtl.tb.lane_core_tb",
                    spec={"arch": str(Path(arch_path).resolve()), "programmable": programmable, "jobs": jobs,
                          "build": [{"spec": s, "sizes": sizes} for s in specs]}, quiet=quiet)
    results = (out["tests"] or {}).get("jobs", [])
    if not results:
        from einloom.einsum.errors import ToolError
        raise ToolError("the lane core's testbench wrote no results", hint=f"see {Path(out['xml']).parent / 'sim.log'}")
    return design, build_dir, results
