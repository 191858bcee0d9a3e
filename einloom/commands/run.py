"""``einloom run SPEC``: execute a cascade with the NumPy reference interpreter."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from einloom.einsum.errors import Location, SpecError
from einloom.einsum.interpret import random_inputs, run_cascade
from einloom.einsum.loader import load_cascade
from einloom.einsum.ranks import parse_rank_assignments, resolve
from einloom.report.table import format_table

EXAMPLE = """example:
  einloom run fusemax-1pass --ranks P=512,M=512,E=64,F=64 --seed 0 --check
  einloom run my-spec.yaml --inputs qkv.npz --out av.npz
  einloom run causal-1pass --check --json"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="execute a cascade on random or given inputs (NumPy float64 reference interpreter)",
        description="Execute a cascade with the vectorized NumPy interpreter. Inputs are drawn at random "
                    "(standard normal, --seed) or read from an .npz file; outputs can be written to .npz. "
                    "--check compares them with a direct implementation of the variant (the spec's "
                    "reference:) and fails if the relative error exceeds --tolerance.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="spec file (.yaml) or library variant name")
    parser.add_argument("--ranks", default="", help="rank sizes, e.g. P=512,M=512,E=64,F=64")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--inputs", metavar="NPZ", help="read inputs from an .npz file (one array per input)")
    parser.add_argument("--out", metavar="NPZ", help="write the outputs to an .npz file")
    parser.add_argument("--check", action="store_true", help="compare with the variant's direct reference")
    parser.add_argument("--tolerance", type=float, default=1e-9,
                        help="largest relative error --check accepts (default 1e-9)")
    parser.add_argument("--json", action="store_true", help="print the result summary as JSON")
    parser.set_defaults(func=run)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| over finite entries; inf if NaN patterns differ."""
    nan_a, nan_e = ~np.isfinite(actual), ~np.isfinite(expected)
    if actual.shape != expected.shape or np.any(nan_a != nan_e):
        return float("inf")
    finite = ~nan_e
    if not finite.any():
        return 0.0
    scale = np.max(np.abs(expected[finite]))
    diff = np.max(np.abs(actual[finite] - expected[finite]))
    return float(diff / scale) if scale > 0 else float(diff)


def load_inputs(path: str, cascade) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as archive:
            return {name: np.asarray(archive[name], dtype=float) for name in archive.files}
    except FileNotFoundError:
        raise SpecError("file not found", location=Location(path, None, "--inputs")) from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read .npz: {exc}", location=Location(path, None, "--inputs"),
                        hint=f"save with numpy.savez(path, {', '.join(f'{n}=...' for n in cascade.inputs)})") from None


def reference_outputs(cascade, inputs, sizes, params) -> dict[str, np.ndarray]:
    from einloom.einsum.references import get_reference
    if not cascade.reference:
        raise SpecError(f"{cascade.name} has no reference: to check against",
                        location=Location(cascade.file, None, "reference"),
                        hint="add reference: {function: softmax_attention, scale: scale}")
    spec = dict(cascade.reference)
    function = get_reference(spec.pop("function"))
    kwargs = {}
    for key, value in spec.items():
        if isinstance(value, str):
            if value in params:
                value = params[value]
            elif value in sizes:
                value = sizes[value]
            else:
                raise SpecError(f"reference argument {key}: {value!r} is neither a param nor a rank",
                                location=Location(cascade.file, None, f"reference.{key}"))
        kwargs[key] = value
    try:
        return function(inputs, sizes, **kwargs)
    except TypeError as exc:
        raise SpecError(f"reference {cascade.reference['function']}: {exc}",
                        location=Location(cascade.file, None, "reference")) from None


def run(args) -> int:
    cascade = load_cascade(args.spec)
    given = parse_rank_assignments(args.ranks)
    if args.inputs:
        inputs = load_inputs(args.inputs, cascade)
    else:
        sizes, _ = resolve(cascade, given)
        inputs = random_inputs(cascade, sizes, args.seed)
    start = time.perf_counter()
    result = run_cascade(cascade, inputs, given)
    elapsed = time.perf_counter() - start
    summary = {"cascade": cascade.name, "ranks": result.ranks, "seconds": elapsed,
               "outputs": {name: list(array.shape) for name, array in result.outputs.items()},
               "absent": result.absent}
    status = 0
    if args.check:
        expected = reference_outputs(cascade, inputs, result.ranks, result.params)
        errors = {}
        for name, array in result.outputs.items():
            if name not in expected:
                raise SpecError(f"reference {cascade.reference['function']} does not produce output {name}",
                                location=Location(cascade.file, None, "reference"))
            errors[name] = relative_error(array, np.asarray(expected[name]))
        summary["relative_error"] = errors
        summary["tolerance"] = args.tolerance
        summary["check"] = "pass" if all(e <= args.tolerance for e in errors.values()) else "fail"
        status = 0 if summary["check"] == "pass" else 1
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.out, **result.outputs)
        summary["written"] = args.out
    if args.json:
        print(json.dumps(summary, indent=2))
        return status
    print(f"{cascade.name}: ran in {elapsed * 1e3:.1f} ms with " + ", ".join(f"{k}={v}" for k, v in result.ranks.items()))
    rows = []
    for name, array in result.outputs.items():
        row = [name, "x".join(map(str, array.shape)), result.absent.get(name, 0)]
        if args.check:
            row.append(summary["relative_error"][name])
        rows.append(row)
    headers = ["output", "shape", "absent (NaN)"] + (["rel. error vs reference"] if args.check else [])
    print(format_table(headers, rows))
    if args.check:
        print(f"check: {summary['check'].upper()} (tolerance {args.tolerance:g}, reference "
              f"{cascade.reference['function']})")
    if args.out:
        print(f"wrote {args.out}")
    return status
