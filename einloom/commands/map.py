"""``einloom map``: map a cascade onto an architecture, print the loop nest and the evaluation."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from einloom.base.errors import InputError, MappingError
from einloom.base.output import write_text
from einloom.commands import flags

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
    parser.add_argument("spec", metavar="SPEC", help="library cascade name or spec file")
    parser.add_argument("--arch", required=True, help="architecture preset name or YAML file")
    parser.add_argument("--workload", required=True,
                        help="workload preset name, workload YAML file or HuggingFace config.json")
    parser.add_argument("--seq-len", type=flags.seq_len, metavar="N",
                        help="sequence length, e.g. 4096 or 16K (P = M = N for prefill; M = N for decode)")
    parser.add_argument("--batch", type=flags.batch, metavar="B", help="override the workload's batch")
    parser.add_argument("--phase", choices=["prefill", "decode"],
                        help="override the workload's phase (decode: P = 1 new token per sequence)")
    parser.add_argument("--ranks", metavar="R=N,...",
                        help="rank sizes the cascade needs beyond the workload's (e.g. MLA's C=512,R=64)")
    parser.add_argument("--mapping", metavar="NAME|FILE", help="baseline name (fusemax, flat, unfused) or mapping file")
    parser.add_argument("--search", action="store_true", help="search for the best mapping")
    parser.add_argument("--objective", choices=["latency", "energy", "edp"],
                        help="what --search minimises (default latency)")
    parser.add_argument("--budget", type=flags.positive_number("a time in seconds", 1e7), metavar="SECONDS",
                        help="stop --search after this long (best so far; default: run to completion)")
    parser.add_argument("--end-to-end", action="store_true", help="add the linear layers (Q, K, V, Z, FFN)")
    parser.add_argument("--save-mapping", metavar="FILE", help="write the (found) mapping as YAML")
    parser.add_argument("--save-schedule", metavar="FILE", help="write the lowered schedule as JSON")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def validate_flags(args) -> None:
    """Flag combinations that cannot mean anything are errors, not silently ignored."""
    from einloom.base.errors import Location
    from einloom.base.output import output_file
    if args.search and args.mapping:
        raise MappingError("--search and --mapping are exclusive", location=Location(field="--search"),
                           hint="drop one of them")
    for flag, value in (("--objective", args.objective), ("--budget", args.budget)):
        if value is not None and not args.search:
            raise InputError("applies only to --search", location=Location(field=flag),
                             hint=f"add --search, or drop {flag}")
    args.objective = args.objective or "latency"
    if args.save_mapping is not None:
        args.save_mapping = str(output_file(args.save_mapping, "--save-mapping", default_name="mapping.yaml"))
    if args.save_schedule is not None:
        args.save_schedule = str(output_file(args.save_schedule, "--save-schedule", default_name="schedule.json"))


def run(args) -> int:
    from einloom.cost_models.arch import load_arch
    from einloom.cost_models.workload import load_workload
    from einloom.einsum import load_cascade
    from einloom.einsum.ranks import parse_rank_assignments
    from einloom.mapper.baselines import BASELINES, baseline_mapping
    from einloom.mapper.evaluate import evaluate, evaluate_end_to_end
    from einloom.mapper.mapping import load_mapping

    validate_flags(args)
    cascade = load_cascade(args.spec)
    arch = load_arch(args.arch)
    workload = load_workload(args.workload, seq_len=args.seq_len, batch=args.batch, phase=args.phase)
    if args.ranks:
        workload = workload.with_ranks(parse_rank_assignments(args.ranks))
    search_info = None
    if args.search:
        from einloom.mapper.search import search
        result = search(cascade, arch, workload, objective=args.objective, time_budget_s=args.budget)
        mapping = result.best_mapping
        search_info = {"evaluated": result.evaluated, "screened": result.screened, "families": result.families,
                       "seconds": result.seconds, "mappings_per_s": result.mappings_per_s,
                       "objective": args.objective}
    else:
        choice = args.mapping or ("fusemax" if getattr(cascade, "name", "") == "fusemax-1pass" else "flat")
        if choice.lower() in BASELINES and not Path(choice).exists():
            mapping = baseline_mapping(choice, cascade, arch, workload)
        else:
            mapping = load_mapping(choice)
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
    if search_info:
        print(f"search: {search_info['evaluated']} mappings evaluated in {search_info['families']} families "
              f"({search_info['screened']} bindings screened by compute floor) in {search_info['seconds']:.2f} s "
              f"= {search_info['mappings_per_s']:,.0f} mappings/s")
    return 0
