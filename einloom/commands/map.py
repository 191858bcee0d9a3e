"""``einloom map``: map a cascade onto an architecture, print the loop nest and the evaluation."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from einloom.einsum.errors import MappingError, WorkloadError

EPILOG = """\
examples:
  einloom map fusemax-1pass --arch fusemax-cloud --workload bert --seq-len 65536
  einloom map softmax-3pass --arch flat-cloud --workload xlm --mapping flat
  einloom map fusemax-1pass --arch fusemax-cloud --workload t5 --seq-len 4096 --search --objective edp
  einloom map fusemax-1pass --arch fusemax-cloud --workload bert --mapping my-mapping.yaml --json

SPEC is a library cascade name or a spec file.  --mapping is a baseline (fusemax, flat, unfused) or a
mapping YAML file (schema: 'python -c "import einloom.mapper.mapping as m; help(m)"'); without
--mapping and --search the baseline matching the cascade's structure is used (fusemax for a 1-pass
softmax-family cascade, flat for a multi-pass one; roles are found from the cascade, not its names),
else a short search (--budget seconds, default 10).  --search explores bindings, per-Einsum spatial
ranks, loop orders, spills and tilings and prints the number of mappings evaluated and mappings/s;
with --budget it stops when the time is up and says the answer is the best so far.  --end-to-end adds the layer's linear layers.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "map", help="map a cascade onto an architecture: loop nest, latency, energy, utilization",
        description="Map a cascade onto a 2D + 1D PE array and evaluate it analytically.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", metavar="SPEC", help="library cascade name or spec file")
    parser.add_argument("--arch", required=True, help="architecture preset name or YAML file")
    parser.add_argument("--workload", required=True, help="workload preset name or YAML file")
    parser.add_argument("--seq-len", type=int, metavar="N", help="sequence length (P = M = N for prefill)")
    parser.add_argument("--batch", type=int, metavar="B", help="override the workload's batch")
    parser.add_argument("--mapping", metavar="NAME|FILE", help="baseline name (fusemax, flat, unfused) or mapping file")
    parser.add_argument("--search", action="store_true", help="search for the best mapping")
    parser.add_argument("--objective", choices=["latency", "energy", "edp"], default="latency")
    parser.add_argument("--budget", type=float, metavar="SECONDS",
                        help="stop the search after this long (best so far; default: run to completion)")
    parser.add_argument("--end-to-end", action="store_true", help="add the linear layers (Q, K, V, Z, FFN)")
    parser.add_argument("--save-mapping", metavar="FILE", help="write the (found) mapping as YAML")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from einloom.cost_models.arch import load_arch
    from einloom.cost_models.workload import load_workload
    from einloom.einsum import load_cascade
    from einloom.mapper.baselines import BASELINES, baseline_mapping, default_mapping, evaluate_linear_layers
    from einloom.mapper.evaluate import evaluate
    from einloom.mapper.mapping import load_mapping

    cascade = load_cascade(args.spec)
    arch = load_arch(args.arch)
    workload = load_workload(args.workload)
    if args.seq_len is not None:
        workload = workload.with_seq_len(args.seq_len)
    if args.batch is not None:
        workload = workload.with_batch(args.batch)
    if args.search and args.mapping:
        raise MappingError("--search and --mapping are exclusive", hint="drop one of them")
    search_info = None
    chosen = None
    if args.search:
        from einloom.mapper.search import search
        result = search(cascade, arch, workload, objective=args.objective, time_budget_s=args.budget)
        mapping, evaluation = result.best_mapping, result.best
        search_info = {"evaluated": result.evaluated, "screened": result.screened, "families": result.families,
                       "seconds": result.seconds, "mappings_per_s": result.mappings_per_s,
                       "objective": args.objective, "budget_exhausted": result.budget_exhausted}
    else:
        if args.mapping is None:
            mapping, chosen = default_mapping(cascade, arch, workload, objective=args.objective,
                                              budget_s=args.budget if args.budget is not None else 10.0)
        elif args.mapping.lower() in BASELINES and not Path(args.mapping).exists():
            mapping = baseline_mapping(args.mapping, cascade, arch, workload)
        else:
            mapping = load_mapping(args.mapping)
        evaluation = evaluate(cascade, mapping, arch, workload)
    linear = evaluate_linear_layers(arch, workload) if args.end_to_end else None
    if args.save_mapping:
        Path(args.save_mapping).write_text(mapping.to_yaml())

    if args.json:
        out = {"evaluation": evaluation.to_dict(), "mapping": mapping.to_dict()}
        if search_info:
            out["search"] = search_info
        if chosen:
            out["mapping_choice"] = chosen
        if linear is not None:
            out["end_to_end"] = {
                "latency_s": evaluation.latency_s + sum(e.latency_s for e in linear.values()),
                "energy_pj": evaluation.energy_pj + sum(e.energy_pj for e in linear.values()),
                "linear": {k: {"latency_s": v.latency_s, "energy_pj": v.energy_pj} for k, v in linear.items()}}
        print(json.dumps(out, indent=2, default=float))
        return 0
    print(evaluation.loop_nest)
    print()
    print(evaluation.table())
    if linear is not None:
        lat = sum(e.latency_s for e in linear.values())
        en = sum(e.energy_pj for e in linear.values())
        print(f"  linear layers {lat:.6g} s, {en:.6g} pJ; end to end {evaluation.latency_s + lat:.6g} s, "
              f"{evaluation.energy_pj + en:.6g} pJ")
    if chosen:
        print(f"mapping: {chosen}")
    if search_info:
        print(f"search: {search_info['evaluated']} mappings evaluated in {search_info['families']} families "
              f"({search_info['screened']} bindings screened by compute floor) in {search_info['seconds']:.2f} s "
              f"= {search_info['mappings_per_s']:,.0f} mappings/s"
              + ("; time budget exhausted: this is the best mapping found so far"
                 if search_info["budget_exhausted"] else ""))
    return 0
