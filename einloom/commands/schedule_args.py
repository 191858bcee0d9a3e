"""Flags shared by the commands that lower a cascade onto an architecture (``map``, ``sim``).

``add_schedule_arguments`` declares the workload and mapping flags; ``validate_schedule_flags`` refuses
combinations that cannot mean anything before any work starts; ``load_schedule_inputs`` loads the
cascade, architecture and workload; ``choose_mapping`` returns the mapping the flags ask for (a
baseline, a file, a search, or the default for the cascade).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from einloom.base.errors import InputError, Location, MappingError
from einloom.commands import flags


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    """SPEC, --arch, --workload and its overrides, --mapping / --search and the search's knobs."""
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
    parser.add_argument("--mapping", metavar="NAME|FILE",
                        help="baseline name (fusemax, flat, unfused, rtl-core) or mapping file; on an architecture "
                             "with an rtl: section the default is rtl-core, the generated core's own dataflow")
    parser.add_argument("--search", action="store_true", help="search for the best mapping")
    parser.add_argument("--objective", choices=["latency", "energy", "edp"],
                        help="what --search minimises (default latency)")
    parser.add_argument("--budget", type=flags.positive_number("a time in seconds", 1e7), metavar="SECONDS",
                        help="stop --search after this long (best so far; default: run to completion)")


def validate_schedule_flags(args: argparse.Namespace) -> None:
    """Flag combinations that cannot mean anything are errors, not silently ignored."""
    if args.search and args.mapping:
        raise MappingError("--search and --mapping are exclusive", location=Location(field="--search"),
                           hint="drop one of them")
    for flag, value in (("--objective", args.objective), ("--budget", args.budget)):
        if value is not None and not args.search:
            raise InputError("applies only to --search", location=Location(field=flag),
                             hint=f"add --search, or drop {flag}")
    args.objective = args.objective or "latency"


def load_schedule_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(cascade, architecture, workload) as the flags give them."""
    from einloom.cost_models.arch import load_arch
    from einloom.cost_models.workload import load_workload
    from einloom.einsum import load_cascade
    from einloom.einsum.ranks import parse_rank_assignments

    cascade = load_cascade(args.spec)
    arch = load_arch(args.arch)
    workload = load_workload(args.workload, seq_len=args.seq_len, batch=args.batch, phase=args.phase)
    if args.ranks:
        workload = workload.with_ranks(parse_rank_assignments(args.ranks))
    return cascade, arch, workload


def choose_mapping(args: argparse.Namespace, cascade: Any, arch: Any, workload: Any
                   ) -> tuple[Any, Any, str | None]:
    """(mapping, search result or None, how the default was chosen or None) for --mapping, --search, or
    the cascade's default (:func:`einloom.mapper.baselines.default_mapping`: the role-matched baseline,
    else a 10 s search)."""
    from einloom.mapper.baselines import BASELINES, baseline_mapping, default_mapping
    from einloom.mapper.mapping import load_mapping

    if args.search:
        from einloom.mapper.search import search
        result = search(cascade, arch, workload, objective=args.objective, time_budget_s=args.budget)
        return result.best_mapping, result, None
    if (args.mapping or "").lower() == "rtl-core" or (not args.mapping and getattr(arch, "rtl", None) is not None):
        core = rtl_core_mapping(cascade, arch, required=bool(args.mapping))
        if core is not None:
            return core, None, None if args.mapping else "rtl-core (the generated core's own dataflow)"
    if args.mapping is None:
        mapping, chosen = default_mapping(cascade, arch, workload, objective=args.objective, budget_s=10.0)
        return mapping, None, chosen
    if args.mapping.lower() in BASELINES and not Path(args.mapping).exists():
        return baseline_mapping(args.mapping, cascade, arch, workload), None, None
    return load_mapping(args.mapping), None, None


def rtl_core_mapping(cascade: Any, arch: Any, *, required: bool) -> Any:
    """The generated core's own mapping (:func:`einloom.rtl.core_form.core_mapping`) when ``arch``
    describes a generated core (an ``rtl:`` section from which the core derives) and the cascade has the
    core's structure; else None (or the reason, if ``required``)."""
    if getattr(arch, "rtl", None) is None:
        if required:
            raise MappingError(f"rtl-core is the mapping of a generated core; {arch.name} has no rtl: section",
                               location=Location(field="--mapping"), hint="use an examples/archs/rtl-*.yaml")
        return None
    from einloom.base.errors import ArchError, SpecError
    from einloom.rtl.config import RtlConfig
    from einloom.rtl.core_form import core_mapping, match_core
    try:
        core = RtlConfig.from_arch(arch)
        roles = match_core(cascade, scale=core.scale)
    except (ArchError, SpecError):
        if required:
            raise
        return None
    return core_mapping(roles, arch)
