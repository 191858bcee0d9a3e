"""Accelerator vs GPU kernels: the ``gpu_baselines:`` section of an experiment and its comparison.

An experiment may name GPU baselines::

    gpu_baselines:
      accelerator: FuseMax            # the configuration compared (default: the last one)
      gpus: [H200, H100, A100, B200]  # rooflines shown (default: all of cost_models/data/gpu_specs.yaml)
      dataset: default                # the shipped H200 measurements, or a 'gpu-bench -o' JSON file
      dtype: bf16                     # kernels of this dtype (bf16 or fp16)
      variant: sliding_window         # the GPU kernels' mask (default: causal for a causal prefill
      window: 4096                    #   workload, else dense); window/sinks for the windowed ones
      extra_points:                   # points outside the models x seq_lens grid (attention scope);
        - {model: llama3-8b, seq_len: 32K, cascade: causal-1pass}   # cascade: the accelerator runs this one
        - {model: llama3-8b-decode, seq_len: 32K}
      headline:                       # rows shown first in the summary (default: none)
        - {model: bert, seq_len: 4K}

For every attention-scope point of the accelerator configuration (the grid's and the extra ones),
:func:`gpu_comparison` puts the accelerator's latency and energy (from the experiment's own result
rows) next to the fastest measured GPU kernel for the same attention shape (scaled linearly from the
measured batch to the workload's) and the roofline of every listed GPU: latency, achieved TFLOP/s,
energy per attention call and pJ per FLOP (FLOPs by :data:`einloom.cost_models.gpu.FLOP_CONVENTION`,
the same count for both sides).  The technology-normalized view scales the accelerator's on-chip
energy and area from its node to the measured GPU's node with einloom's scaling model
(:mod:`einloom.cost_models.technology`, Stillmaker & Baas), and compares at iso-area (copies of the
accelerator filling the GPU's die) and at iso-power (copies drawing the GPU's TDP); :data:`ASSUMPTIONS`
says exactly what is assumed.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from einloom.cost_models.gpu import (VARIANTS, attention_bytes, attention_flops, best_measured, dataset_points,
                                     gpu_spec, gpu_specs, load_dataset, make_shape, measured_gpu, roofline)
from einloom.cost_models.technology import node_factors
from einloom.einsum.errors import EinloomError

_KEYS = ("accelerator", "gpus", "dataset", "dtype", "variant", "window", "sinks", "extra_points", "headline")

ASSUMPTIONS = (
    "GPU: the fastest measured kernel for the same attention shape and dtype; time and energy scale linearly "
    "from the measured batch to the workload's batch (the measured calls fill the GPU). Energy is NVML board "
    "energy (idle included).",
    "Roofline: max(FLOPs / dense tensor peak, bytes / HBM bandwidth) from the datasheet; roofline energy = TDP x "
    "roofline time (a model, not a measurement).",
    "FLOPs: the two matrix products over the (query, key) pairs the mask keeps, 2 FLOP per MAC, softmax not "
    "counted; the same count is used for the accelerator's TFLOP/s and pJ/FLOP. An accelerator cascade that "
    "does not skip masked pairs does more work than this count.",
    "Technology normalization: the accelerator's energy except DRAM is scaled by the Stillmaker & Baas energy "
    "factor and its area by their area factor from its node to the GPU's node (5 nm is einloom's extrapolation, "
    "cost_models/data/technology_scaling.yaml); DRAM energy and the clock frequency are kept as modeled.",
    "Iso-area: n = GPU die area / scaled accelerator area copies run independent (batch, head) instances in "
    "parallel (n at most the number of instances); iso-power: n = GPU TDP / (scaled accelerator energy / "
    "latency). Latency = max(accelerator latency / n, accelerator DRAM bytes / GPU HBM bandwidth): the copies "
    "share the GPU's HBM. Energy per call does not change with n.",
)


@dataclass(frozen=True)
class GpuBaselines:
    """A validated ``gpu_baselines:`` section (see the module docstring)."""

    accelerator: str
    gpus: tuple[str, ...]
    dataset: str | None
    dtype: str
    extra_points: tuple[tuple[str, int], ...] = ()
    headline: tuple[tuple[str, int], ...] = ()
    extra_cascades: tuple[tuple[str, int, str], ...] = ()     # (model, seq_len, cascade) overriding the config's
    variant: str | None = None
    window: int | None = None
    sinks: int = 0


def read_gpu_baselines(r: Any, raw: Any, base: Path, config_names: Sequence[str],
                       load_model: Callable[[str], Any], parse_len: Callable[[Any, tuple], int]
                       ) -> tuple[GpuBaselines, dict[str, str]]:
    """Validate the section with the experiment reader ``r`` (its ``mapping``/``string``/``fail``).

    Returns the section and the model sources of the extra points (name -> file or preset name);
    ``load_model(ref)`` loads a workload (raising on a bad one), ``parse_len`` reads a sequence length.
    """
    top = ("gpu_baselines",)
    section = r.mapping(raw if raw is not None else {}, top, (), _KEYS)
    accelerator = config_names[-1]
    if "accelerator" in section:
        accelerator = r.string(section["accelerator"], top + ("accelerator",), what="a configuration name")
        if accelerator not in config_names:
            raise r.fail(top + ("accelerator",), f"no configuration named '{accelerator}'",
                         hint=f"configurations: {', '.join(config_names)}")
    known = list(gpu_specs())
    gpus_raw = section.get("gpus", known)
    gpus_list = gpus_raw if isinstance(gpus_raw, list) else [gpus_raw]
    gpus = []
    for i, g in enumerate(gpus_list):
        path = top + (("gpus", i) if isinstance(gpus_raw, list) else ("gpus",))
        try:
            gpus.append(gpu_spec(r.string(g, path, what="a GPU name")).key)
        except EinloomError as exc:
            raise r.fail(path, exc.message, exc.hint) from None
    dataset = None
    if section.get("dataset", "default") != "default":
        ref = r.string(section["dataset"], top + ("dataset",), what="'default' or a gpu-bench JSON file")
        candidate = base / ref
        dataset = str(candidate) if candidate.exists() and not Path(ref).is_absolute() else ref
        try:
            load_dataset(dataset)
        except EinloomError as exc:
            raise r.fail(top + ("dataset",), exc.message, exc.hint) from None
    dtype = r.string(section.get("dtype", "bf16"), top + ("dtype",))
    if dtype not in ("bf16", "fp16"):
        raise r.fail(top + ("dtype",), f"unknown dtype '{dtype}'", hint="write bf16 or fp16")
    variant = None
    if "variant" in section:
        variant = r.string(section["variant"], top + ("variant",))
        if variant not in VARIANTS:
            raise r.fail(top + ("variant",), f"unknown mask variant '{variant}'", hint=f"one of {', '.join(VARIANTS)}")
    sizes = {}
    for key in ("window", "sinks"):
        if key in section:
            value = section[key]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise r.fail(top + (key,), f"{key} must be a positive integer, got {value!r}")
            if variant not in ("sliding_window", "sinks_window") or (key == "sinks" and variant != "sinks_window"):
                raise r.fail(top + (key,), f"{key} needs variant: {'sinks_window' if key == 'sinks' else 'sliding_window'}")
            sizes[key] = value
    if variant in ("sliding_window", "sinks_window") and "window" not in sizes:
        raise r.fail(top + ("variant",), f"variant {variant} needs window:", hint="add window: 4096")
    if variant == "sinks_window" and "sinks" not in sizes:
        raise r.fail(top + ("variant",), "variant sinks_window needs sinks:", hint="add sinks: 4")
    sources: dict[str, str] = {}
    cascades: list[tuple[str, int, str]] = []

    def points(key: str) -> tuple[tuple[str, int], ...]:
        raw_points = section.get(key) or []
        if not isinstance(raw_points, list):
            raise r.fail(top + (key,), f"expected a list of points, got {type(raw_points).__name__}",
                         hint="write - {model: llama3-8b, seq_len: 32K}")
        out = []
        for i, p in enumerate(raw_points):
            path = top + (key, i)
            allowed = ("model", "seq_len", "cascade") if key == "extra_points" else ("model", "seq_len")
            p = r.mapping(p, path, ("model", "seq_len"), allowed)
            model = r.string(p["model"], path + ("model",))
            ref = str(base / model) if (base / model).exists() and not Path(model).is_absolute() else model
            try:
                load_model(ref)
            except EinloomError as exc:
                raise r.fail(path + ("model",), exc.message, exc.hint) from None
            sources[model] = ref
            out.append((model, parse_len(p["seq_len"], path + ("seq_len",))))
            if "cascade" in p:
                name = r.string(p["cascade"], path + ("cascade",), what="a library cascade or spec file")
                ref_c = str(base / name) if (base / name).exists() and not Path(name).is_absolute() else name
                try:
                    from einloom.einsum import load_cascade
                    load_cascade(ref_c)
                except EinloomError as exc:
                    raise r.fail(path + ("cascade",), exc.message, exc.hint) from None
                cascades.append((out[-1][0], out[-1][1], ref_c))
        return tuple(out)

    extra = points("extra_points")
    headline = points("headline")
    return GpuBaselines(accelerator, tuple(gpus), dataset, dtype, extra, headline, tuple(cascades), variant,
                        sizes.get("window"), sizes.get("sinks", 0)), sources


# ==================================================================================================
# The comparison
# ==================================================================================================

def _variant(workload: Any) -> str:
    """Mask variant of the GPU kernel matching a workload (a decode query masks nothing)."""
    return "causal" if workload.causal and workload.phase == "prefill" else "dense"


def _per_flop_pj(energy_j: float | None, flops: float) -> float | None:
    return None if energy_j is None or flops <= 0 else energy_j * 1e12 / flops


def compare_point(row: Mapping[str, Any], workload: Any, measured: Sequence[Mapping[str, Any]], own: Any,
                  gpus: Sequence[str], node_nm: int, dtype: str, variant: str | None = None,
                  window: int | None = None, sinks: int = 0) -> dict[str, Any]:
    """One workload point: accelerator (``row``) vs the best measured kernel and each GPU's roofline.

    ``variant`` (default: from the workload) is the GPU kernels' mask; ``window``/``sinks`` size it.
    """
    variant = variant or _variant(workload)
    sizes = {"window": window, "sinks": sinks} if window is not None else {}
    shape = make_shape(row["model"], row["seq_len"], "sdpa-flash", dtype, variant, workload=workload, **sizes)
    full = dict(shape, batch=workload.batch)
    flops, nbytes = attention_flops(full), attention_bytes(full)
    acc_t, acc_e = float(row["latency_s"]), float(row["energy_pj"]) * 1e-12
    entry: dict[str, Any] = {
        "model": row["model"], "seq_len": row["seq_len"], "phase": workload.phase, "variant": variant,
        "batch": workload.batch, "heads_q": workload.heads, "heads_kv": workload.kv_heads,
        "head_dim": workload.head_dim_e, "flops": flops, "bytes": nbytes,
        "accelerator": {"configuration": row["configuration"], "cascade": row.get("cascade"), "node_nm": node_nm,
                        "latency_s": acc_t, "energy_j": acc_e, "tflops": flops / acc_t / 1e12,
                        "pj_per_flop": _per_flop_pj(acc_e, flops),
                        "area_mm2": None if row.get("area_um2") is None else float(row["area_um2"]) / 1e6}}
    best = best_measured(measured, heads_q=workload.heads, heads_kv=workload.kv_heads, head_dim=workload.head_dim_e,
                         q_len=workload.seq_len_q, kv_len=workload.seq_len_kv, variant=variant, dtype=dtype,
                         window=shape.get("window"), sinks=shape.get("sinks") or 0)
    if best is not None:
        factor = workload.batch / best["batch"]
        t = best["time_s"] * factor
        e = None if best.get("energy_j") is None else best["energy_j"] * factor
        entry["gpu_measured"] = {
            "gpu": own.key if own else None, "kernel": best["kernel"], "id": best["id"],
            "measured_batch": best["batch"], "latency_s": t, "energy_j": e, "tflops": flops / t / 1e12,
            "pj_per_flop": _per_flop_pj(e, flops), "roofline_fraction": best.get("roofline_fraction"),
            "power_w": best.get("loop_power_w"), "sm_clock_mhz": best.get("sm_clock_median_mhz")}
    else:
        entry["gpu_measured"] = None
    entry["rooflines"] = {}
    for key in gpus:
        line = roofline(key, flops, nbytes, dtype)
        entry["rooflines"][key] = {"latency_s": line.time_s, "bound": line.bound, "energy_j": line.energy_j,
                                   "tflops": flops / line.time_s / 1e12,
                                   "pj_per_flop": _per_flop_pj(line.energy_j, flops)}
    target = own or gpu_spec("H200")
    entry["normalized"] = _normalized(row, workload, target, node_nm, acc_t, acc_e, flops)
    gpu_t = entry["gpu_measured"]["latency_s"] if best is not None else entry["rooflines"].get(target.key, {}).get(
        "latency_s")
    gpu_e = entry["gpu_measured"]["energy_j"] if best is not None else None
    norm = entry["normalized"]
    entry["ratios"] = {
        "versus": "measured" if best is not None else "roofline",
        "speedup": _div(gpu_t, acc_t), "energy_ratio": _div(acc_e, gpu_e),
        "speedup_iso_area": _div(gpu_t, norm["iso_area"]["latency_s"]),
        "speedup_iso_power": _div(gpu_t, norm["iso_power"]["latency_s"]),
        "energy_ratio_normalized": _div(norm["energy_j"], gpu_e)}
    return entry


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or not b > 0 else a / b


def _normalized(row: Mapping[str, Any], workload: Any, gpu: Any, node_nm: int, acc_t: float, acc_e: float,
                flops: float) -> dict[str, Any]:
    """The accelerator scaled to ``gpu``'s node, at iso-area and iso-power (:data:`ASSUMPTIONS`)."""
    e_from, a_from = node_factors(node_nm)
    e_to, a_to = node_factors(gpu.node_nm)
    energy_factor, area_factor = e_to / e_from, a_to / a_from
    breakdown = row.get("energy_breakdown_pj") or {}
    dram_j = float(breakdown.get("dram", 0.0)) * 1e-12
    energy = dram_j + (acc_e - dram_j) * energy_factor
    area = None if row.get("area_um2") is None else float(row["area_um2"]) / 1e6 * area_factor
    instances = workload.batch * workload.heads
    hbm_floor = float(row.get("dram_bytes") or 0.0) / (gpu.hbm_gbps * 1e9)
    power = energy / acc_t

    def replicated(copies: float | None) -> dict[str, Any]:
        if copies is None:
            return {"copies": None, "latency_s": None}
        used = min(copies, instances)
        latency = max(acc_t / used, hbm_floor)
        return {"copies": copies, "copies_used": used, "latency_s": latency, "tflops": flops / latency / 1e12,
                "hbm_bound": hbm_floor >= acc_t / used}

    return {"gpu": gpu.key, "node_nm": gpu.node_nm, "energy_factor": energy_factor, "area_factor": area_factor,
            "energy_j": energy, "dram_energy_j": dram_j, "pj_per_flop": _per_flop_pj(energy, flops),
            "area_mm2": area, "power_w": power, "instances": instances,
            "iso_area": replicated(None if not area else gpu.die_mm2 / area),
            "iso_power": replicated(gpu.tdp_w / power if power > 0 else None)}


def roofline_ratios(measured: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per kernel: how far the measured points are from the measured GPU's roofline (median, min, max)."""
    out = []
    for kernel in sorted({p["kernel"] for p in measured}):
        values = [p["roofline_fraction"] for p in measured if p["kernel"] == kernel and p.get("roofline_fraction")]
        if values:
            out.append({"kernel": kernel, "points": len(values), "median": statistics.median(values),
                        "min": min(values), "max": max(values)})
    return out


def gpu_comparison(experiment: Any, rows: Sequence[Mapping[str, Any]],
                   evaluate_extra: Callable[[str, int], Mapping[str, Any]],
                   load_model: Callable[[str], Any], node_nm: int) -> dict[str, Any]:
    """The comparison for ``experiment.gpu_baselines`` (plain data, stored in results.json).

    ``rows``: the experiment's result rows; ``evaluate_extra(model, seq_len)`` returns the accelerator's
    attention row for an extra point; ``load_model(name)`` the workload at its default length;
    ``node_nm`` is the accelerator architecture's technology node.
    """
    spec: GpuBaselines = experiment.gpu_baselines
    data = load_dataset(spec.dataset)
    measured = dataset_points(data, spec.gpus)
    own = measured_gpu(data)
    picked = [r for r in rows if r["configuration"] == spec.accelerator and r["scope"] == "attention"]
    picked += [evaluate_extra(model, n) for model, n in spec.extra_points]
    points, failed = [], []
    for row in picked:
        if row.get("error") or row.get("latency_s") is None or row.get("energy_pj") is None:
            failed.append({"model": row["model"], "seq_len": row["seq_len"], "error": row.get("error")})
            continue
        workload = load_model(row["model"]).with_seq_len(row["seq_len"])
        try:
            points.append(compare_point(row, workload, measured, own, spec.gpus, node_nm, spec.dtype, spec.variant,
                                        spec.window, spec.sinks))
        except EinloomError as exc:  # e.g. a workload the GPU kernels do not cover (E != F)
            failed.append({"model": row["model"], "seq_len": row["seq_len"], "error": str(exc)})
    env = data.get("environment", {})
    return {
        "accelerator": spec.accelerator, "accelerator_node_nm": node_nm, "dtype": spec.dtype,
        "variant": spec.variant, "window": spec.window, "sinks": spec.sinks,
        "dataset": {"file": data.get("file"), "device": env.get("device"), "driver": env.get("driver"),
                    "cuda": env.get("cuda"), "torch": env.get("torch"), "cudnn": env.get("cudnn"),
                    "date": (data.get("produced_by") or {}).get("date") or data.get("started"),
                    "points": len(measured)},
        "measured_gpu": own.key if own else None,
        "gpus": {k: {"name": g.name, "dense_tflops": dict(g.dense_tflops), "hbm_gbps": g.hbm_gbps, "tdp_w": g.tdp_w,
                     "node_nm": g.node_nm, "die_mm2": g.die_mm2}
                 for k, g in gpu_specs().items() if k in spec.gpus},
        "headline": [{"model": m, "seq_len": n} for m, n in spec.headline],
        "assumptions": list(ASSUMPTIONS),
        "roofline_ratios": roofline_ratios(measured),
        "points": points, "failed": failed}


def run_gpu_comparison(experiment: Any, rows: Sequence[Mapping[str, Any]], evaluate_point: Callable[[Any], Any]
                       ) -> dict[str, Any]:
    """:func:`gpu_comparison` for an experiment run by :func:`einloom.experiment.run_experiment`: extra
    points are evaluated with the same ``evaluate_point`` as the grid (an :class:`EinloomError` there is
    recorded as that point's error)."""
    from einloom.experiment import EvalPoint, _config_objects, _load_workload, _row  # noqa: PLC0415 (cycle)

    spec: GpuBaselines = experiment.gpu_baselines
    config = experiment.configuration(spec.accelerator)
    cascade, arch, mapping = _config_objects(config)

    def load_model(model: str) -> Any:
        return _load_workload(experiment.model_sources.get(model, model))

    own = {(m, n): c for m, n, c in spec.extra_cascades}

    def evaluate_extra(model: str, n: int) -> Mapping[str, Any]:
        from dataclasses import replace

        from einloom.einsum import load_cascade
        point_config, point_cascade = config, cascade
        if (model, n) in own:              # this point's own cascade (a causal or GQA form), same mapping rule
            point_cascade = load_cascade(own[(model, n)])
            point_config = replace(config, cascade=own[(model, n)])
        point = EvalPoint(model, n, "attention", point_config, load_model(model).with_seq_len(n), point_cascade,
                          arch, mapping)
        try:
            return _row(point, evaluate_point(point), None)
        except EinloomError as exc:
            return _row(point, None, str(exc))

    return gpu_comparison(experiment, rows, evaluate_extra, load_model, int(getattr(arch, "technology_nm", 45)))
