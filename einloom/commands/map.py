"""``einloom map``: map a cascade onto an architecture, print the loop nest and the evaluation."""
from __future__ import annotations

import argparse
import json

from einloom.base.output import write_text
from einloom.commands.schedule_args import (add_schedule_arguments, choose_mapping, load_schedule_inputs,
                                           validate_schedule_flags)

EPILOG = """\
examples:
  einloom map fusemax-1pass --arch fusemax-cloud --workload bert --seq-len 65536
  einloom map softmax-3pass --arch flat-cloud --workload xlm --mapping flat
  einloom map fusemax-1pass --arch fusemax-cloud --workload t5 --seq-len 4096 --search --objective edp
  einloom map fusemax-1pass --arch fusemax-cloud --workload bert --mapping my-mapping.yaml --json

SPEC is a library cascade name or a spec file.  --mapping is a baseline (fusemax, flat, unfused) or a
mapping YAML file (schema: 'python -c "import einloom.mapper.mapping as m; help(m)"'); without
--mapping and --search the baseline matching the cascade is used (fusemax for 1-pass cascades, flat
otherwise).  --search explores bindings, spatial ranks, loop orders, spills and tilings and prints the
number of mappings evaluated and mappings/s.  --end-to-end adds the layer's linear layers.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "map", help="map a cascade onto an architecture: loop nest, latency, energy, utilization",
        description="Map a cascade onto a 2D + 1D PE array and evaluate it analytically.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_schedule_arguments(parser)
    parser.add_argument("--end-to-end", action="store_true", help="add the linear layers (Q, K, V, Z, FFN)")
    parser.add_argument("--save-mapping", metavar="FILE", help="write the (found) mapping as YAML")
    parser.add_argument("--save-schedule", metavar="FILE", help="write the lowered schedule as JSON")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def validate_flags(args) -> None:
    """Flag combinations that cannot mean anything are errors, not silently ignored."""
    from einloom.base.output import output_file
    validate_schedule_flags(args)
    if args.save_mapping is not None:
        args.save_mapping = str(output_file(args.save_mapping, "--save-mapping", default_name="mapping.yaml"))
    if args.save_schedule is not None:
        args.save_schedule = str(output_file(args.save_schedule, "--save-schedule", default_name="schedule.json"))


def run(args) -> int:
    from einloom.mapper.evaluate import evaluate, evaluate_end_to_end

    validate_flags(args)
    cascade, arch, workload = load_schedule_inputs(args)
    mapping, result, chosen = choose_mapping(args, cascade, arch, workload)
    search_info = None
    if result is not None:
        search_info = {"evaluated": result.evaluated, "distinct": result.distinct, "screened": result.screened,
                       "families": result.families, "seconds": result.seconds,
                       "mappings_per_s": result.mappings_per_s, "best_at_s": result.best_at_s,
                       "objective": args.objective, "budget_exhausted": result.budget_exhausted}
    # the one end-to-end sum: attention (+ the layer's linear layers with --end-to-end)
    total = evaluate_end_to_end(cascade, mapping, arch, workload) if args.end_to_end else None
    evaluation = total.attention if total is not None else evaluate(cascade, mapping, arch, workload)
    if args.save_mapping:
        write_text(args.save_mapping, mapping.to_yaml(), "--save-mapping")
    if args.save_schedule and evaluation.schedule is not None:
        write_text(args.save_schedule, evaluation.schedule.to_json() + "\n", "--save-schedule")

    if args.json:
        out = {"evaluation": evaluation.to_dict(include_schedule=True), "mapping": mapping.to_dict()}
        if search_info:
            out["search"] = search_info
        if chosen:
            out["mapping_choice"] = chosen
        if total is not None:
            out["end_to_end"] = {
                "latency_s": total.latency_s, "energy_pj": total.energy_pj,
                "linear": {k: {"latency_s": v.latency_s, "energy_pj": v.energy_pj} for k, v in total.linear.items()}}
        print(json.dumps(out, indent=2, default=float))
        return 0
    print(evaluation.loop_nest)
    print()
    print(evaluation.table())
    if total is not None:
        lat = sum(e.latency_s for e in total.linear.values())
        en = sum(e.energy_pj for e in total.linear.values())
        print(f"  linear layers {lat:.6g} s, {en:.6g} pJ; end to end {total.latency_s:.6g} s, "
              f"{total.energy_pj:.6g} pJ")
    if chosen:
        print(f"mapping: {chosen}")
    if search_info:
        distinct = f" ({search_info['distinct']} distinct)" if search_info["distinct"] is not None else ""
        print(f"search: {search_info['evaluated']} mappings evaluated{distinct} in "
              f"{search_info['families']} families ({search_info['screened']} bindings screened by compute floor) "
              f"in {search_info['seconds']:.2f} s = {search_info['mappings_per_s']:,.0f} mappings/s; best found "
              f"after {search_info['best_at_s']:.2f} s"
              + ("; time budget exhausted: this is the best mapping found so far"
                 if search_info["budget_exhausted"] else ""))
    return 0
