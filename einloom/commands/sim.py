"""``einloom sim``: cycle-level simulation of a cascade's schedule (trace, utilization plot, JSON)."""
from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
examples:
  einloom sim fusemax-1pass --arch fusemax-cloud --workload bert --seq-len 4096 --batch 1
  einloom sim fusemax-1pass --arch fusemax-cloud --workload bert --trace trace.json --plot util.png
  einloom sim softmax-3pass --arch fusemax-cloud --workload xlm --seq-len 65536 --mapping flat --instances 4 --slice 4

--instances K simulates K instances (batch x heads) and extrapolates the rest from the last period;
--slice B simulates B iterations of each instance's outermost tile loop (and its last) and extrapolates
the rest; the output says whether the extrapolation was exact (repeating periods).  Open the trace in
ui.perfetto.dev.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sim", help="simulate a cascade's schedule cycle by cycle: latency, utilization, stalls, trace",
        description="Lower the cascade under a mapping and simulate it event by event (tile ops on the "
                    "2D array, 1D array and DRAM channel).", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", metavar="SPEC", help="library cascade name or spec file")
    parser.add_argument("--arch", required=True, help="architecture preset name or YAML file")
    parser.add_argument("--workload", required=True, help="workload preset name or YAML file")
    parser.add_argument("--seq-len", type=int, metavar="N", help="sequence length (P = M = N)")
    parser.add_argument("--batch", type=int, metavar="B", help="override the workload's batch")
    parser.add_argument("--mapping", metavar="NAME|FILE", help="baseline name (fusemax, flat, unfused) or mapping file")
    parser.add_argument("--search", action="store_true", help="search for the best mapping first")
    parser.add_argument("--functional", metavar="fp64|FORMAT",
                        help="also compute the outputs on random inputs (fp64, or a format such as int8, bf16) "
                             "and compare with the cascade interpreter")
    parser.add_argument("--dram-latency", type=float, default=0.0, metavar="CYCLES",
                        help="DRAM access latency in cycles (the architecture file has none; default 0)")
    parser.add_argument("--window", type=int, metavar="W", help="tiles a unit may issue from (default: 2 for "
                        "interleaved groups, 1 otherwise)")
    parser.add_argument("--skew", action="store_true", help="model the 2D array fill/drain skew (rows + cols - 2) on results leaving it")
    parser.add_argument("--instances", type=int, metavar="K", help="simulate K instances, extrapolate the rest")
    parser.add_argument("--slice", type=int, metavar="B", help="simulate B outer tile iterations per instance, "
                        "extrapolate the rest")
    parser.add_argument("--trace", metavar="FILE", help="write a Perfetto/Chrome trace JSON")
    parser.add_argument("--plot", metavar="FILE", help="write the utilization timeline PNG")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _positive(value, flag: str) -> None:
    from einloom.errors import EinloomError
    if value is not None and value < 1:
        raise EinloomError(f"{flag} must be a positive integer, got {value}")


def run(args) -> int:
    from einloom.cost_models.arch import load_arch
    from einloom.cost_models.workload import load_workload
    from einloom.einsum import load_cascade
    from einloom.mapper.baselines import BASELINES, baseline_mapping
    from einloom.mapper.evaluate import evaluate_schedule
    from einloom.mapper.lower import lower
    from einloom.mapper.mapping import load_mapping
    from einloom.sim.simulator import SimOptions, simulate

    for value, flag in ((args.seq_len, "--seq-len"), (args.batch, "--batch"), (args.window, "--window"),
                        (args.instances, "--instances"), (args.slice, "--slice")):
        _positive(value, flag)
    if not (args.dram_latency >= 0 and args.dram_latency != float("inf")):
        from einloom.errors import EinloomError
        raise EinloomError(f"--dram-latency must be a finite number of cycles >= 0, got {args.dram_latency}")
    cascade = load_cascade(args.spec)
    arch = load_arch(args.arch)
    workload = load_workload(args.workload)
    if args.seq_len is not None:
        workload = workload.with_seq_len(args.seq_len)
    if args.batch is not None:
        workload = workload.with_batch(args.batch)
    if args.search:
        from einloom.mapper.search import search
        mapping = search(cascade, arch, workload).best_mapping
    else:
        choice = args.mapping or ("fusemax" if getattr(cascade, "name", "") == "fusemax-1pass" else "flat")
        mapping = baseline_mapping(choice, cascade, arch, workload) if choice.lower() in BASELINES \
            else load_mapping(choice)
    schedule = lower(cascade, mapping, arch, workload)
    options = SimOptions(dram_latency=args.dram_latency, systolic_skew=args.skew, window=args.window,
                         max_instances=args.instances, slice_blocks=args.slice)
    bar = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(desc="simulating", unit=" ops", file=sys.stderr)
    result = simulate(schedule, options, progress=bar.update if bar is not None else None)
    if bar is not None:
        bar.close()
    analytical = evaluate_schedule(schedule)
    functional = None
    if args.functional:
        from einloom.sim.functional import run_functional
        functional = run_functional(schedule, cascade, args.functional)
    if args.trace:
        from einloom.sim.output import write_trace
        write_trace(result, args.trace)
    if args.plot:
        from einloom.sim.output import plot_utilization
        plot_utilization(result, args.plot, title=f"{cascade.name} / {mapping.name} on {arch.name}, "
                                                  f"{workload.name} ({result.extrapolation})")
    if args.json:
        out = {"simulation": result.to_dict(), "analytical": {
            "latency_cycles": analytical.latency_cycles, "energy_pj": analytical.energy_pj,
            "util_2d": analytical.util_2d, "util_1d": analytical.util_1d, "dram_bytes": analytical.dram_bytes}}
        if functional is not None:
            out["functional"] = functional
        print(json.dumps(out, indent=1, default=float))
        return 0
    from einloom.report.table import format_table
    rows = [["latency (cycles)", f"{result.latency_cycles:,.0f}", f"{analytical.latency_cycles:,.0f}",
             f"{100 * (result.latency_cycles / analytical.latency_cycles - 1):+.2f}%"],
            ["utilization 2d", f"{result.utilization['2d']:.4f}", f"{analytical.util_2d:.4f}", ""],
            ["utilization 1d", f"{result.utilization['1d']:.4f}", f"{analytical.util_1d:.4f}", ""],
            ["DRAM bytes", f"{result.dram_bytes:,.0f}", f"{analytical.dram_bytes:,.0f}", ""],
            ["energy (pJ)", f"{result.energy_pj:.6g}", f"{analytical.energy_pj:.6g}", ""]]
    print(f"{cascade.name} / {mapping.name} on {arch.name}, {workload.name}: {schedule.instances} instance(s)")
    print(format_table(["", "simulated", "analytical", "difference"], rows))
    for unit, causes in result.stalls.items():
        shown = ", ".join(f"{c} {v:,.0f}" for c, v in causes.items() if v > 0.5)
        print(f"  stalls {unit:<5} {shown or 'none'}")
    print(f"  buffer peak {result.buffer_peak_bytes:,.0f} of {result.buffer_capacity_bytes:,.0f} B "
          f"({'double' if result.double_buffered else 'single'}-buffered tiles)")
    print(f"  {result.events:,} events; extrapolation: {result.extrapolation}")
    if functional is not None:
        print(f"  functional ({functional['format']}): max |out - float64 interpreter| = "
              f"{functional['max_abs_error']:.3g} over {functional['outputs']} values")
    if args.trace:
        print(f"  wrote {args.trace} (open in ui.perfetto.dev)")
    if args.plot:
        print(f"  wrote {args.plot}")
    return 0
