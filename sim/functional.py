"""Functional mode: compute a schedule's outputs on random inputs and compare with the interpreter.

* ``fp64`` -- the cascade interpreter runs tile by tile in the schedule's order over the query rank's
  tiles (each tile of the outermost loops over a rank of the output that no Einsum reduces, e.g. the
  P tiles of FuseMax's GLB loop), and the assembled outputs are compared with one whole-cascade run.
  A tile keeps its coordinates in the whole problem (``run_cascade``'s ``slice_of``), so coordinate
  masks such as bottom-right causal ``m <= p + M - P`` mask it as the whole run does.  A rank that
  cannot be run tile by tile (it is partitioned, an Einsum iterates or reduces over it, a size
  derives from it, an index is computed from it) is run whole, and the result says so (``note``).
* a number format (``int8``, ``int16``, ``bf16`` or ``fixed``/``bf16`` kinds) -- the format
  interpreter (:func:`einloom.sim.formats.interpret.run_in_format`) runs the cascade, any cascade, on
  the format's op-class primitives with its reductions chained in the schedule's loop order; compared
  with the float64 interpreter on the same quantized inputs.

Limits: sizes up to 2**22 elements per tensor (a functional run is for checking, not for full
workloads).
"""
from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from einloom.einsum.interpret import run_cascade, slice_refusal
from einloom.errors import EinloomError
from einloom.mapper.lower import Schedule

__all__ = ["run_functional", "PRESETS"]

PRESETS = {"int8": {"kind": "fixed", "input_bits": 8, "frac_bits": 4, "acc_bits": 32},
           "int16": {"kind": "fixed", "input_bits": 16, "frac_bits": 8, "acc_bits": 40},
           "bf16": {"kind": "bf16"}}

LIMIT = 1 << 22


def _inputs(cascade: Any, sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in cascade.inputs:
        shape = tuple(int(sizes[r]) for r in cascade.tensors[name].ranks)
        if prod(shape) > LIMIT:
            raise EinloomError(f"--functional: input {name} has {prod(shape):,} elements (limit {LIMIT:,})",
                               hint="use a smaller --seq-len / workload for a functional run")
        out[name] = rng.standard_normal(shape)
    return out


def run_functional(schedule: Schedule, cascade: Any, mode: str, *, seed: int = 0,
                   spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``mode`` (``fp64`` or a format) and return ``{format, outputs, max_abs_error, tiles}``;
    ``spec``: the format's full specification instead of the preset ``mode`` names (e.g. with an
    architecture's ``acc_latency``)."""
    sizes = {r: int(n) for r, n in schedule.sizes.items()}
    inputs = _inputs(cascade, sizes, seed)
    reference = run_cascade(cascade, inputs, sizes).outputs
    out_name = cascade.outputs[0]
    if mode == "fp64":
        return _tiled_fp64(schedule, cascade, inputs, sizes, reference, out_name)
    spec = spec if spec is not None else PRESETS.get(mode, {"kind": mode})
    return _format_run(schedule, cascade, inputs, sizes, reference[out_name], spec, mode)


def _tiled_fp64(schedule, cascade, inputs, sizes, reference, out_name) -> dict[str, Any]:
    out_ranks = cascade.tensors[out_name].ranks
    g = schedule.groups[-1]
    tiled = next((lp for lp in g.loops if lp.level in ("DRAM", "GLB") and lp.rank in out_ranks
                  and all(lp.rank not in cascade.tensors[i].ranks or i == i for i in cascade.inputs)), None)
    result = np.zeros_like(reference[out_name])
    note = None
    refusal = tiled is not None and slice_refusal(cascade, sizes, tiled.rank)
    if refusal:
        note, tiled = f"one whole run: {refusal}", None
    if tiled is None:
        result = run_cascade(cascade, inputs, sizes).outputs[out_name]
        tiles = 1
    else:
        rank = tiled.rank
        extent = sum(lp.extent for lp in g.loops if lp.rank == rank and lp.level in ("DRAM", "GLB"))
        n = sizes[rank]
        step = -(-n // extent)
        tiles = 0
        for lo in range(0, n, step):          # the schedule's order over the rank's tiles
            hi = min(n, lo + step)
            part = _take(cascade, inputs, rank, lo, hi)
            # the slice keeps its coordinates in the whole problem (a mask such as m <= p + M - P)
            got = run_cascade(cascade, part, sizes, slice_of=(rank, lo, hi)).outputs[out_name]
            index = [slice(None)] * result.ndim
            index[out_ranks.index(rank)] = slice(lo, hi)
            result[tuple(index)] = got
            tiles += 1
    err = float(np.max(np.abs(result - reference[out_name])))
    out = {"format": "fp64", "outputs": int(result.size), "max_abs_error": err, "tiles": tiles}
    return {**out, "note": note} if note else out


def _take(cascade: Any, inputs: dict[str, np.ndarray], rank: str, lo: int, hi: int) -> dict[str, np.ndarray]:
    """The inputs' coordinates ``lo .. hi-1`` of ``rank`` (inputs without the rank whole)."""
    return {k: (np.take(v, range(lo, hi), axis=cascade.tensors[k].ranks.index(rank))
                if rank in cascade.tensors[k].ranks else v) for k, v in inputs.items()}


def _format_run(schedule, cascade, inputs, sizes, reference, spec, mode) -> dict[str, Any]:
    from einloom.sim.formats import FormatSpecError, make_format
    from einloom.sim.formats.arith import arith_for
    from einloom.sim.formats.interpret import run_in_format, schedule_loop_order
    try:  # head_dim/max_keys only size the RTL's accumulators here; the cascade's params give the scale
        fmt = make_format(spec, head_dim=16, max_keys=256)
    except FormatSpecError as err:
        raise EinloomError(f"--functional {mode}: {err}",
                           hint="formats: fp64, " + ", ".join(PRESETS) + " or a kind of sim.formats") from None
    codes = {n: fmt.quantize(v) for n, v in inputs.items()}
    # float64 of the quantized inputs: the comparison counts the arithmetic, not the input rounding
    from einloom.einsum.interpret import run_cascade as _run
    out_name = cascade.outputs[0]
    reference = _run(cascade, {n: fmt.dequantize(c) for n, c in codes.items()}, sizes).outputs[out_name]
    order = schedule_loop_order(schedule)
    result = run_in_format(cascade, arith_for(fmt), codes, sizes, loop_order=order)
    got = fmt.output_to_float(result.codes[out_name])
    ok = np.isfinite(reference)
    err = float(np.max(np.abs(got - reference)[ok])) if ok.any() else 0.0
    return {"format": mode, "outputs": int(got.size), "max_abs_error": err, "loop_order": list(order)}
