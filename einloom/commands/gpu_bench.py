"""``einloom gpu-bench``: measure attention kernels on the local GPU, or show a measured dataset.

Measuring needs PyTorch with CUDA (``pip install 'einloom[gpu]'``); ``--list`` and ``--show`` do not.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from einloom.einsum.errors import EinloomError, ToolError

EXAMPLE = """examples:
  einloom gpu-bench --show                       # the shipped H200 dataset, with measured / roofline
  einloom gpu-bench --list --models bert          # the shapes that would be measured (no GPU needed)
  einloom gpu-bench -o h200.json                  # measure the default plan (about 6 minutes on an H200)
  einloom gpu-bench --models llama3-8b-decode --kernels sdpa-flash,sdpa-cudnn -o decode.json --json

FLOPs and bytes follow einloom.cost_models.gpu.FLOP_CONVENTION (causal counts the kept pairs, ~half)."""

INSTALL_HINT = ("pip install 'einloom[gpu]' (PyTorch with CUDA and nvidia-ml-py) on a machine with an NVIDIA GPU; "
                "without one, 'einloom gpu-bench --show' prints the shipped H200 measurements")


def register(subparsers) -> None:
    from einloom.cost_models.gpu import KERNELS
    parser = subparsers.add_parser(
        "gpu-bench", help="measure attention kernels (SDPA backends, FlexAttention) on this GPU; show datasets",
        description="Measure PyTorch scaled_dot_product_attention (flash, cuDNN, memory-efficient, math) and "
                    "compiled FlexAttention on attention shapes from einloom's workloads: median time of CUDA-event "
                    "timed repeats, NVML energy, board power and clocks, achieved TFLOP/s and GB/s, and the "
                    "fraction of the datasheet roofline. Writes a JSON dataset (-o) and prints a table.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", nargs="?", const="default", metavar="DATASET",
                        help="print a dataset (default: einloom's measured H200 dataset) instead of measuring")
    parser.add_argument("--list", action="store_true", help="print the shapes that would be measured and exit")
    parser.add_argument("--models", help="comma-separated workloads (default: the plan's: llama3-8b, "
                                         "llama3-8b-decode, bert, trxl, t5, xlm)")
    parser.add_argument("--kernels", help=f"comma-separated kernels out of {', '.join(KERNELS)}")
    parser.add_argument("--dtypes", help="comma-separated dtypes out of bf16, fp16")
    parser.add_argument("--max-seq-len", metavar="N", help="leave out longer sequences (e.g. 32K)")
    parser.add_argument("--gpus", default="A100,H100,H200,B200", help="rooflines to compare with (default: all)")
    parser.add_argument("--budget-s", type=float, metavar="S", help="start no new point after S seconds")
    parser.add_argument("--min-time-s", type=float, default=2.0, metavar="S",
                        help="least duration of each timed loop (default 2; NVML's energy counter ticks ~every 0.1 s)")
    parser.add_argument("-o", "--output", metavar="FILE", default="gpu-bench.json",
                        help="dataset to write when measuring (default gpu-bench.json)")
    parser.add_argument("--json", action="store_true", help="print the dataset (or the shape list) as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=run)


def _names(text: str | None, flag: str, allowed: Sequence[str]) -> list[str] | None:
    if text is None:
        return None
    import difflib
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise EinloomError(f"{flag}: expected a comma-separated list", hint=f"choices: {', '.join(allowed)}")
    for name in names:
        if name not in allowed:
            close = difflib.get_close_matches(name, list(allowed), n=1)
            raise EinloomError(f"{flag}: unknown value '{name}'",
                               hint=(f"did you mean '{close[0]}'? " if close else "") + f"choices: {', '.join(allowed)}")
    return names


def _selection(args) -> dict[str, Any]:
    from einloom.cost_models.gpu import DEFAULT_PLAN, DTYPE_BYTES, KERNELS
    from einloom.cost_models.workload import workload_presets
    from einloom.experiment import parse_seq_len
    plan_models = sorted({m for entry in DEFAULT_PLAN for m in entry[0]})
    models = _names(args.models, "--models", sorted(set(plan_models) | set(workload_presets())))
    unplanned = [m for m in models or [] if m not in plan_models]
    if unplanned:
        raise EinloomError(f"--models: {', '.join(unplanned)} is not in the measurement plan",
                           hint=f"planned models: {', '.join(plan_models)}")
    max_len = None
    if args.max_seq_len is not None:
        try:
            max_len = parse_seq_len(args.max_seq_len)
        except ValueError:
            raise EinloomError(f"--max-seq-len: expected a sequence length, got {args.max_seq_len!r}",
                               hint="write e.g. 32K or 32768") from None
    return {"models": models, "kernels": _names(args.kernels, "--kernels", KERNELS),
            "dtypes": _names(args.dtypes, "--dtypes", list(DTYPE_BYTES)), "max_seq_len": max_len}


def run(args) -> int:
    from einloom.cost_models.gpu import bench_shapes, gpu_specs, load_dataset
    gpus = _names(args.gpus, "--gpus", list(gpu_specs())) or []
    for flag, value in (("--budget-s", args.budget_s), ("--min-time-s", args.min_time_s)):
        if value is not None and not value > 0:
            raise EinloomError(f"{flag}: must be a positive number of seconds, got {value}")
    if args.show is not None:
        data = load_dataset(None if args.show == "default" else args.show)
        _print_dataset(data, gpus, as_json=args.json)
        return 0
    shapes = bench_shapes(**_selection(args))
    if not shapes:
        raise EinloomError("no shape of the plan matches --models/--kernels/--dtypes/--max-seq-len",
                           hint="run 'einloom gpu-bench --list' to see the plan")
    if args.list:
        _print_shapes(shapes, gpus, as_json=args.json)
        return 0
    measure = _load_measurement()
    data = _measure(measure, shapes, args)
    from einloom.cost_models.gpu import FLOP_CONVENTION
    data["flop_convention"] = FLOP_CONVENTION
    data["produced_by"] = {"command": "einloom gpu-bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["gpu-bench"]
                           else "einloom gpu-bench", "date": data.get("started")}
    _write(Path(args.output), data)
    data = load_dataset(args.output)
    _print_dataset(data, gpus, as_json=args.json)
    if not args.json:
        print(f"\nwrote {args.output}")
    return 0


def _load_measurement():
    """The measurement module, or a one-line error saying what is missing and how to install it."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ToolError(f"measuring needs PyTorch with CUDA, which is not installed ({exc})", hint=INSTALL_HINT) from None
    except Exception as exc:  # a broken install (missing CUDA libraries, ...)
        raise ToolError(f"PyTorch is installed but does not load: {type(exc).__name__}: {exc}",
                        hint=INSTALL_HINT) from None
    if not torch.cuda.is_available():
        raise ToolError(f"PyTorch {torch.__version__} sees no CUDA GPU here", hint=INSTALL_HINT)
    from einloom.cost_models import gpu_measure
    return gpu_measure


def _measure(measure, shapes: list[dict[str, Any]], args) -> dict[str, Any]:
    from tqdm import tqdm
    bar = tqdm(total=len(shapes), desc="gpu-bench", unit="pt", file=sys.stderr,
               disable=args.no_progress or not sys.stderr.isatty())

    def progress(i: int, n: int, point: dict[str, Any]) -> None:
        if bar.disable and not args.no_progress:  # not a terminal (a log): one line per point
            measure.print_progress(i, n, point, file=sys.stderr)
        bar.set_postfix_str(point["id"], refresh=False)
        bar.update()

    try:
        return measure.measure(shapes, budget_s=args.budget_s, min_time_s=args.min_time_s, progress=progress,
                               save=lambda data: _write(Path(args.output), data))
    finally:
        bar.close()


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise EinloomError(f"-o {path}: cannot write the dataset: {exc.strerror or exc}") from None


def _print_shapes(shapes: list[dict[str, Any]], gpus: list[str], *, as_json: bool) -> None:
    from einloom.cost_models.gpu import roofline
    from einloom.report.table import format_table
    if as_json:
        print(json.dumps(shapes, indent=1))
        return
    rows = []
    for s in shapes:
        rows.append([s["id"], s["batch"], s["flops"] / 1e12, s["bytes"] / 1e9]
                    + [roofline(g, s["flops"], s["bytes"], s["dtype"]).time_s * 1e3 for g in gpus])
    print(format_table(["shape", "batch", "TFLOP", "GB"] + [f"{g} roofline ms" for g in gpus], rows,
                       title=f"{len(shapes)} shapes"))


def _print_dataset(data: dict[str, Any], gpus: list[str], *, as_json: bool) -> None:
    from einloom.cost_models.gpu import dataset_points, measured_gpu
    from einloom.gpu_compare import roofline_ratios
    from einloom.report.table import format_table
    points = dataset_points(data, gpus)
    if as_json:
        print(json.dumps(dict(data, points=points, failed=[p for p in data["points"] if p.get("error")]), indent=1))
        return
    env = data["environment"]
    own = measured_gpu(data)
    print(f"{data.get('file')}: {env.get('device')}, driver {env.get('driver')}, CUDA {env.get('cuda')}, "
          f"torch {env.get('torch')}, cuDNN {env.get('cudnn')}, triton {env.get('triton')}; "
          f"{len(points)} measured points, {len(data['points']) - len(points)} failed")
    rows = []
    for p in points:
        spread = f"{(p['time_p10_s'] / p['time_s'] - 1) * 100:+.1f}/{(p['time_p90_s'] / p['time_s'] - 1) * 100:+.1f}%" \
            if p.get("time_p10_s") is not None else "-"
        energy = p.get("energy_j")
        rows.append([p["id"], p["time_s"] * 1e3, spread, p["tflops"], p["gbps"],
                     None if energy is None else energy * 1e3, p.get("loop_power_w"), None if p.get("sm_clock_median_mhz") is None else float(p["sm_clock_median_mhz"]),
                     p.get("roofline_fraction"), p.get("roofline_bound")]
                    + [p[f"roofline_s.{g}"] * 1e3 for g in gpus])
    print(format_table(["point", "ms (median)", "p10/p90", "TFLOP/s", "GB/s", "mJ", "W", "SM MHz",
                        f"measured/roofline{f' ({own.key})' if own else ''}", "bound"]
                       + [f"{g} roofline ms" for g in gpus], rows))
    ratios = roofline_ratios(points)
    if ratios:
        print()
        print(format_table(["kernel", "points", "median", "min", "max"],
                           [[r["kernel"], r["points"], r["median"], r["min"], r["max"]] for r in ratios],
                           title="measured / roofline per kernel"))
    failed = [p for p in data["points"] if p.get("error")]
    if failed:
        print()
        print(format_table(["point", "error"], [[p["id"], p["error"][:140]] for p in failed], title="failed points"))
