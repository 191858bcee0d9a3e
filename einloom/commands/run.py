"""``einloom run SPEC``: execute a cascade with the NumPy reference interpreter."""
from __future__ import annotations

import argparse
import json
import math
import os
import stat
import time
import zipfile
import zlib

import numpy as np

from einloom.base.errors import InputError, Location, SpecError
from einloom.base.limits import MAX_TENSOR_ELEMENTS
from einloom.base.output import output_file, write_atomic
from einloom.commands import flags
from einloom.einsum.cascade import rank_of
from einloom.einsum.interpret import input_sizes, random_inputs, run_cascade
from einloom.einsum.loader import load_cascade
from einloom.einsum.ranks import parse_rank_assignments, resolve
from einloom.report.table import format_table

EXAMPLE = """example:
  einloom run fusemax-1pass --ranks P=512,M=512,E=64,F=64 --seed 0 --check
  einloom run my-spec.yaml --inputs qkv.npz --out av.npz
  einloom run causal-1pass --check --json

--check and references: a spec names the direct implementation it is checked against in its
reference: section, e.g.
    reference: {function: softmax_attention, scale: scale, causal: true}
where function is one of the references below and the other keys are that function's arguments
(a string names a param or a rank of the spec).  References: %s.
Output values that are NaN or infinite although the cascade's masks keep them are counted in the
table ("non-finite"); with --check they fail the run (exit status 1)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="execute a cascade on random or given inputs (NumPy float64 reference interpreter)",
        description="Execute a cascade with the vectorized NumPy interpreter. Inputs are drawn at random "
                    "(standard normal, --seed) or read from an .npz file; outputs can be written to .npz. "
                    "--check compares them with a direct implementation of the variant (the spec's "
                    "reference:) and fails if the relative error exceeds --tolerance.",
        epilog=EXAMPLE % _reference_names(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="spec file (.yaml) or library variant name")
    parser.add_argument("--ranks", default="", help="rank sizes, e.g. P=512,M=512,E=64,F=64")
    parser.add_argument("--seed", type=flags.seed, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--inputs", metavar="NPZ", help="read inputs from an .npz file (one array per input)")
    parser.add_argument("--out", metavar="NPZ", help="write the outputs to an .npz file")
    parser.add_argument("--check", action="store_true", help="compare with the variant's direct reference")
    parser.add_argument("--tolerance", type=flags.nonnegative_number("a relative error"), default=1e-9,
                        help="largest relative error --check accepts (default 1e-9)")
    parser.add_argument("--json", action="store_true", help="print the result summary as JSON")
    parser.set_defaults(func=run)


def _reference_names() -> str:
    from einloom.einsum.references import REFERENCES
    return ", ".join(sorted(REFERENCES))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| over finite entries.

    inf (never 0) when the shapes differ, the NaN patterns differ, an infinity is not matched by the
    same infinity, or there is no finite entry to compare.
    """
    if actual.shape != expected.shape:
        return float("inf")
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    if np.any(nan_a != nan_e):
        return float("inf")
    inf_a, inf_e = np.isinf(actual), np.isinf(expected)
    if np.any(inf_a != inf_e) or np.any(actual[inf_e] != expected[inf_e]):
        return float("inf")
    finite = ~(nan_e | inf_e)
    if not finite.any():
        return float("inf")
    scale = np.max(np.abs(expected[finite]))
    diff = np.max(np.abs(actual[finite] - expected[finite]))
    value = float(diff / scale) if scale > 0 else float(diff)
    return value if math.isfinite(value) else float("inf")


_FLOATS = (np.float16, np.float32, np.float64)


def load_inputs(path: str, cascade) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive, one per cascade input, checked: float dtype, finite values,
    the declared number of dimensions, no missing or extra arrays.  Errors name the file and array."""
    where = Location(path, None, "--inputs")
    hint = f"save with numpy.savez(path, {', '.join(f'{n}=...' for n in cascade.inputs)})"
    if path.endswith(".npy"):
        raise InputError("is a .npy file (one array); --inputs needs an .npz archive with one array per input",
                         location=where, hint=hint)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError("file not found", location=where, hint="check the path") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", location=where) from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError("is not a regular file", location=where, hint=hint)
    if info.st_size == 0:
        raise InputError("is empty", location=where, hint=hint)
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise InputError("is a .npy array, not an .npz archive", location=where, hint=hint)
            for name in archive.files:
                array_where = Location(path, None, f"--inputs[{name}]")
                if name not in cascade.inputs:
                    raise InputError(f"array {name!r} is not an input of {cascade.name}", location=array_where,
                                     hint=f"inputs: {', '.join(cascade.inputs)}")
                elements = _declared_elements(archive, name, array_where)
                if elements > MAX_TENSOR_ELEMENTS:
                    raise InputError(f"array {name!r} declares {elements:,} values, over the limit of "
                                     f"{MAX_TENSOR_ELEMENTS:,}", location=array_where,
                                     hint="einloom run executes in memory; use smaller ranks")
                try:
                    array = archive[name]
                except MemoryError:
                    raise InputError(f"array {name!r} is too large to read", location=array_where) from None
                except Exception as exc:  # noqa: BLE001 - any failure to decode an untrusted archive member
                    raise InputError(f"cannot read array {name!r}: {exc}", location=array_where,
                                     hint="the archive is damaged or holds pickled objects; save plain arrays "
                                          "with numpy.savez") from None
                arrays[name] = _checked_array(array, name, array_where, cascade)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError,
            KeyError) as exc:
        raise InputError(f"cannot read .npz: {exc}", location=where, hint=hint) from None
    missing = [n for n in cascade.inputs if n not in arrays]
    if missing:
        raise InputError(f"no array for input {missing[0]!r}", location=where, hint=hint)
    return arrays


def _declared_elements(archive, name: str, where: Location) -> int:
    """The element count an archive member's .npy header declares, read before any allocation."""
    member = f"{name}.npy"
    if member not in archive.zip.namelist():
        return 0
    try:
        with archive.zip.open(member) as handle:
            version = np.lib.format.read_magic(handle)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, _ = reader(handle)
    except Exception as exc:  # noqa: BLE001 - a damaged header of an untrusted archive
        raise InputError(f"cannot read array {name!r}: {exc}", location=where,
                         hint="the archive is damaged; save plain arrays with numpy.savez") from None
    return math.prod(shape)


def _checked_array(array: np.ndarray, name: str, where: Location, cascade) -> np.ndarray:
    if np.iscomplexobj(array):
        raise InputError(f"array {name!r} is complex ({array.dtype})", location=where,
                         hint="einloom computes in real float64; give the real part")
    if array.dtype.type not in _FLOATS:
        raise InputError(f"array {name!r} has dtype {array.dtype}, not a floating-point type", location=where,
                         hint=f"convert it with {name}.astype(numpy.float64)")
    if array.size > MAX_TENSOR_ELEMENTS:
        raise InputError(f"array {name!r} has {array.size:,} elements, over the limit of {MAX_TENSOR_ELEMENTS:,}",
                         location=where)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise InputError(f"array {name!r} holds {bad} NaN or infinite value(s)", location=where,
                         hint="inputs must be finite")
    return np.asarray(array, dtype=np.float64)


def check_memory(cascade, sizes: dict[str, int]) -> None:
    """Refuse sizes whose tensors or Einsum iteration spaces exceed MAX_TENSOR_ELEMENTS before the
    interpreter allocates anything."""
    spaces = [(f"tensor {t.name}", [sizes.get(r, 1) for r in t.ranks]) for t in cascade.tensors.values()]
    spaces += [(f"Einsum {e.name}", [sizes.get(rank_of(v), 1) for v in e.iteration_vars]) for e in cascade.einsums]
    for what, dims in spaces:
        elements = math.prod(dims)
        if elements > MAX_TENSOR_ELEMENTS:
            raise InputError(f"{what} would hold {elements:,} values, over the interpreter's limit of "
                             f"{MAX_TENSOR_ELEMENTS:,} (1 GiB of float64)", location=Location(field="--ranks"),
                             hint="einloom run executes the whole cascade in memory; use smaller ranks "
                                  "(einloom map evaluates large sizes analytically)")


def nonfinite_counts(result) -> dict[str, int]:
    """Per output, NaN/infinite values at coordinates the cascade's masks keep (not explained by masks)."""
    return {name: int(np.count_nonzero(~np.isfinite(array))) - result.absent.get(name, 0)
            for name, array in result.outputs.items()}


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
    out_path = output_file(args.out, "--out", default_name="outputs.npz", suffix=".npz") \
        if args.out is not None else None
    if args.inputs:
        inputs = load_inputs(args.inputs, cascade)
        shaped = input_sizes(cascade, inputs, given, lambda name: Location(args.inputs, None, f"--inputs[{name}]"),
                             InputError)
        check_memory(cascade, resolve(cascade, shaped)[0])
    else:
        sizes, _ = resolve(cascade, given)
        check_memory(cascade, sizes)
        inputs = random_inputs(cascade, sizes, args.seed)
    start = time.perf_counter()
    result = run_cascade(cascade, inputs, given)
    elapsed = time.perf_counter() - start
    nonfinite = nonfinite_counts(result)
    summary = {"cascade": cascade.name, "ranks": result.ranks, "seconds": elapsed,
               "outputs": {name: list(array.shape) for name, array in result.outputs.items()},
               "absent": result.absent, "nonfinite": nonfinite}
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
        reasons = [f"{n}: {c} NaN/infinite value(s) the masks do not explain" for n, c in nonfinite.items() if c]
        reasons += [f"{n}: relative error {e:.3g} > tolerance {args.tolerance:g}" for n, e in errors.items()
                    if not e <= args.tolerance]
        summary["check"] = "fail" if reasons else "pass"
        summary["reasons"] = reasons
        status = 1 if reasons else 0
    if out_path is not None:
        write_atomic(out_path, "--out", lambda tmp: _savez(tmp, result.outputs))
        summary["written"] = str(out_path)
    if args.json:
        print(json.dumps(summary, indent=2))
        return status
    print(f"{cascade.name}: ran in {elapsed * 1e3:.1f} ms with " + ", ".join(f"{k}={v}" for k, v in result.ranks.items()))
    rows = []
    for name, array in result.outputs.items():
        row = [name, "x".join(map(str, array.shape)), result.absent.get(name, 0), nonfinite[name]]
        if args.check:
            row.append(summary["relative_error"][name])
        rows.append(row)
    headers = ["output", "shape", "absent (NaN)", "non-finite"] + (["rel. error vs reference"] if args.check else [])
    print(format_table(headers, rows))
    if args.check:
        print(f"check: {summary['check'].upper()} (tolerance {args.tolerance:g}, reference "
              f"{cascade.reference['function']})" + "".join(f"\n  {r}" for r in summary["reasons"]))
    elif any(nonfinite.values()):
        print("warning: " + "; ".join(f"{n} has {c} NaN/infinite value(s) the masks do not explain"
                                      for n, c in nonfinite.items() if c))
    if out_path is not None:
        print(f"wrote {out_path}")
    return status


def _savez(tmp, outputs) -> None:
    with open(tmp, "wb") as handle:
        np.savez(handle, **outputs)
