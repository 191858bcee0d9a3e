"""``einloom sim``: cycle-level simulation of a cascade's schedule (trace, utilization plot, JSON); on an
architecture with an ``rtl:`` section also the generated core's cycles (:mod:`einloom.commands.sim_core`)."""
from __future__ import annotations

import argparse
import json
import sys

from einloom.commands import flags
from einloom.commands.schedule_args import (add_schedule_arguments, choose_mapping, load_schedule_inputs,
                                           validate_schedule_flags)

EPILOG = """\
examples:
  einloom sim fusemax-1pass --arch fusemax-cloud --workload bert --seq-len 4096 --batch 1
  einloom sim fusemax-1pass --arch fusemax-cloud --workload bert --trace trace.json --plot util.png
  einloom sim softmax-3pass --arch fusemax-cloud --workload xlm --seq-len 65536 --mapping flat --instances 8 --slice 4

--instances K simulates K instances (batch x heads) and extrapolates the rest from the steady period
(not the first instance nor the last two; exact needs K >= 7);
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
    add_schedule_arguments(parser)
    parser.add_argument("--functional", metavar="fp64|FORMAT",
                        help="also compute the outputs on random inputs (fp64, or a format such as int8, bf16) "
                             "and compare with the cascade interpreter")
    parser.add_argument("--dram-latency", type=flags.nonnegative_number("a latency in cycles"), default=0.0,
                        metavar="CYCLES",
                        help="DRAM access latency in cycles (the architecture file has none; default 0)")
    parser.add_argument("--window", type=flags.size(1 << 20, "a number of tiles"), metavar="W", help="tiles a unit may issue from (default: two iterations "
                        "of the interleave rank for interleaved groups, 1 otherwise)")
    parser.add_argument("--skew", action="store_true",
                        help="model the 2D array's fill and drain (2 rows + cols - 2 cycles, SCALE-Sim's count) as "
                             "a pipeline latency on results leaving it; the next tile streams in meanwhile")
    parser.add_argument("--serial-folds", action="store_true",
                        help="with --skew: every fold occupies the array for its whole 2R + C + T - 2 cycles "
                             "(no overlap of one fold's drain with the next one's fill)")
    parser.add_argument("--instances", type=flags.size(1 << 30, "a number of instances"), metavar="K", help="simulate K instances, extrapolate the rest")
    parser.add_argument("--slice", type=flags.size(1 << 30, "a number of tile iterations"), metavar="B", help="simulate B outer tile iterations per instance, "
                        "extrapolate the rest")
    parser.add_argument("--trace", metavar="FILE", help="write a Perfetto/Chrome trace JSON")
    parser.add_argument("--plot", metavar="FILE", help="write the utilization timeline PNG")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from einloom.base.output import output_file
    from einloom.mapper.evaluate import evaluate_schedule
    from einloom.mapper.lower import lower
    from einloom.sim.simulator import SimOptions, simulate

    validate_schedule_flags(args)
    if args.trace is not None:
        args.trace = str(output_file(args.trace, "--trace", default_name="trace.json"))
    if args.plot is not None:
        args.plot = str(output_file(args.plot, "--plot", default_name="utilization.png"))
    cascade, arch, workload = load_schedule_inputs(args)
    mapping, _, _ = choose_mapping(args, cascade, arch, workload)
    schedule = lower(cascade, mapping, arch, workload)
    if args.serial_folds and not args.skew:
        from einloom.base.errors import InputError, Location
        raise InputError("--serial-folds needs --skew", location=Location(field="--serial-folds"),
                         hint="add --skew, or leave --serial-folds out")
    options = SimOptions(dram_latency=args.dram_latency, systolic_skew=args.skew,
                         systolic_overlap=not args.serial_folds, window=args.window,
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
    core = None
    if getattr(arch, "rtl", None) is not None:     # the generated core's cycles next to the simulation
        from einloom.commands.sim_core import core_prediction
        core = core_prediction(cascade, arch, schedule)
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
        if core is not None:
            out["generated_core"] = core
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
              f"{functional['max_abs_error']:.3g} over {functional['outputs']} values"
              + (f" ({functional['note']})" if functional.get("note") else ""))
    if core is not None:
        from einloom.commands.sim_core import core_lines
        for line in core_lines(core, result.latency_cycles, result.utilization["2d"], mapping.name):
            print(line)
    if args.trace:
        print(f"  wrote {args.trace} (open in ui.perfetto.dev)")
    if args.plot:
        print(f"  wrote {args.plot}")
    return 0
