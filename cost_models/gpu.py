"""GPU baselines: datasheet rooflines, attention shapes from einloom's workloads, the measured dataset.

* :func:`gpu_specs` / :func:`gpu_spec`: A100, H100, H200, B200 from ``data/gpu_specs.yaml`` (every
  figure cites its NVIDIA datasheet);
* :func:`valid_pairs`, :func:`attention_flops`, :func:`attention_bytes`: what one attention call must
  compute and move (the counting convention is :data:`FLOP_CONVENTION`);
* :func:`roofline`: the time a GPU needs at its datasheet peak (the larger of FLOPs / peak rate and
  bytes / HBM bandwidth);
* :func:`bench_shapes`: the points ``einloom gpu-bench`` measures, taken from the built-in workloads;
* :func:`load_dataset` / :func:`dataset_points`: the measured dataset (package data
  ``data/gpu_h200_attention.json``, or a ``gpu-bench`` output), each point with its roofline ratios;
* :func:`best_measured`: the fastest measured kernel for one workload point.

Nothing here needs PyTorch; the measurement itself is :mod:`einloom.cost_models.gpu_measure`.

Limits: the roofline counts the two matrix products only (no softmax) and assumes each input is read
once; it is a lower bound on time, not a prediction.  Batch scaling (:func:`scaled_to_batch`) assumes
the time of a call that fills the GPU grows linearly with the batch.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from einloom.cost_models.workload import Workload, load_workload
from einloom.einsum.errors import WorkloadError

#: Data types the roofline and the benchmark know, with their size in bytes.
DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2}
#: Kernels ``gpu-bench`` can measure (see :mod:`einloom.cost_models.gpu_measure`).
KERNELS: tuple[str, ...] = ("sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-math", "flex")
#: Mask/bias variants of a shape.
VARIANTS: tuple[str, ...] = ("dense", "causal", "sliding_window", "sinks_window", "alibi_causal")
#: The shipped dataset (package data).
DATASET_FILE = "gpu_h200_attention.json"

FLOP_CONVENTION = (
    "flops = 4 * batch * heads_q * head_dim * pairs: the two matrix products (Q K^T and P V) at 2 FLOP per "
    "multiply-accumulate, over the (query, key) pairs the mask keeps (a causal prefill of length L keeps "
    "L(L+1)/2 pairs, about half of dense; a window W keeps about L*W); softmax (max, exp, sum, division) is "
    "not counted. bytes = dtype size * (Q + O + K + V elements), each read or written once, K and V at "
    "heads_kv (grouped-query attention shares them) and only the keys some query can see. "
    "tflops = flops / time, gbps = bytes / time.")


# ==================================================================================================
# GPU specifications and the roofline
# ==================================================================================================

@dataclass(frozen=True)
class GpuSpec:
    """Datasheet figures of one GPU (``data/gpu_specs.yaml``)."""

    key: str
    name: str
    dense_tflops: Mapping[str, float]
    hbm_gbps: float
    tdp_w: float
    memory_gb: float
    node_nm: int
    process: str
    die_mm2: float
    sources: Mapping[str, str]

    def peak_flops(self, dtype: str) -> float:
        """Dense tensor-core FLOP/s for ``dtype``."""
        if dtype not in self.dense_tflops:
            raise WorkloadError(f"GPU {self.key} has no peak rate for dtype '{dtype}'",
                                hint=f"dtypes: {', '.join(self.dense_tflops)}")
        return float(self.dense_tflops[dtype]) * 1e12

    @property
    def ridge_flop_per_byte(self) -> float:
        """Arithmetic intensity (bf16) above which the roofline is compute-bound."""
        return self.peak_flops("bf16") / (self.hbm_gbps * 1e9)


@lru_cache(maxsize=None)
def _specs_data() -> dict[str, Any]:
    return yaml.safe_load(resources.files("einloom.cost_models").joinpath("data", "gpu_specs.yaml").read_text())


def gpu_specs() -> dict[str, GpuSpec]:
    """Every GPU of ``data/gpu_specs.yaml`` by key (A100, H100, H200, B200)."""
    return {key: GpuSpec(key=key, name=v["name"], dense_tflops=dict(v["dense_tflops"]), hbm_gbps=float(v["hbm_gbps"]),
                         tdp_w=float(v["tdp_w"]), memory_gb=float(v["memory_gb"]), node_nm=int(v["node_nm"]),
                         process=v["process"], die_mm2=float(v["die_mm2"]), sources=dict(v["sources"]))
            for key, v in _specs_data().items()}


def gpu_spec(key: str) -> GpuSpec:
    """One GPU by key (case-insensitive); an unknown key raises with the known ones."""
    specs = gpu_specs()
    for k, spec in specs.items():
        if k.lower() == str(key).lower():
            return spec
    close = difflib.get_close_matches(str(key).upper(), list(specs), n=1)
    raise WorkloadError(f"unknown GPU '{key}'", hint=(f"did you mean '{close[0]}'? " if close else "")
                        + f"GPUs with datasheet figures: {', '.join(specs)}")


@dataclass(frozen=True)
class Roofline:
    """Lower bound on one call's time on a GPU: ``time_s = max(compute_s, memory_s)``."""

    gpu: str
    compute_s: float
    memory_s: float
    tdp_w: float

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"

    @property
    def energy_j(self) -> float:
        """The board at its TDP for the roofline time (a model, not a measurement)."""
        return self.tdp_w * self.time_s


def roofline(gpu: GpuSpec | str, flops: float, nbytes: float, dtype: str = "bf16") -> Roofline:
    """The roofline of ``flops`` FLOPs and ``nbytes`` bytes on ``gpu`` (see :class:`Roofline`)."""
    spec = gpu if isinstance(gpu, GpuSpec) else gpu_spec(gpu)
    return Roofline(spec.key, flops / spec.peak_flops(dtype), nbytes / (spec.hbm_gbps * 1e9), spec.tdp_w)


# ==================================================================================================
# Counting
# ==================================================================================================

def _tri(n: int) -> int:
    return n * (n + 1) // 2


def _causal_prefix(n: int) -> int:
    """Sum over query positions p < n of the keys k <= p: n(n+1)/2."""
    return _tri(max(n, 0))


def _window_prefix(n: int, window: int) -> int:
    """Sum over p < n of min(p + 1, window)."""
    n = max(n, 0)
    return _tri(n) if n <= window else _tri(window) + (n - window) * window


def _sinks_prefix(n: int, window: int, sinks: int) -> int:
    """Sum over p < n of the sink keys k < sinks outside p's window: max(0, min(sinks, p - window + 1))."""
    m = max(0, n - window)
    return _tri(m) if m <= sinks else _tri(sinks) + (m - sinks) * sinks


def valid_pairs(q_len: int, kv_len: int, *, causal: bool, window: int | None = None, sinks: int = 0) -> int:
    """(query, key) pairs a mask keeps, per batch element and head.

    Queries are the last ``q_len`` positions of ``kv_len`` (prefill: ``q_len == kv_len``; decode:
    ``q_len = 1``).  ``causal``: key <= query; ``window``: also query - key < window; ``sinks``: the
    first ``sinks`` keys stay visible outside the window.  A window needs ``causal``.
    """
    if q_len <= 0 or kv_len < q_len:
        raise WorkloadError(f"need 0 < q_len <= kv_len, got q_len {q_len}, kv_len {kv_len}")
    if window is not None and not causal:
        raise WorkloadError("a sliding window needs causal masking here", hint="set causal: true")
    if sinks and window is None:
        raise WorkloadError("attention sinks need a window", hint="give window: N")
    if not causal:
        return q_len * kv_len
    lo, hi = kv_len - q_len, kv_len
    if window is None:
        return _causal_prefix(hi) - _causal_prefix(lo)
    pairs = _window_prefix(hi, window) - _window_prefix(lo, window)
    if sinks:
        pairs += _sinks_prefix(hi, window, sinks) - _sinks_prefix(lo, window, sinks)
    return pairs


def _variant_mask(variant: str, window: int | None, sinks: int) -> tuple[bool, int | None, int]:
    if variant == "dense":
        return False, None, 0
    if variant in ("causal", "alibi_causal"):
        return True, None, 0
    if variant == "sliding_window":
        return True, window, 0
    if variant == "sinks_window":
        return True, window, sinks
    raise WorkloadError(f"unknown attention variant '{variant}'", hint=f"variants: {', '.join(VARIANTS)}")


def attention_flops(shape: Mapping[str, Any]) -> int:
    """FLOPs of one call of ``shape`` (:data:`FLOP_CONVENTION`)."""
    causal, window, sinks = _variant_mask(shape["variant"], shape.get("window"), shape.get("sinks") or 0)
    pairs = valid_pairs(shape["q_len"], shape["kv_len"], causal=causal, window=window, sinks=sinks)
    return 4 * shape["batch"] * shape["heads_q"] * shape["head_dim"] * pairs


def attention_bytes(shape: Mapping[str, Any]) -> int:
    """Fewest bytes one call of ``shape`` must move through HBM (:data:`FLOP_CONVENTION`)."""
    _, window, sinks = _variant_mask(shape["variant"], shape.get("window"), shape.get("sinks") or 0)
    kv = shape["kv_len"] if window is None else min(shape["kv_len"], shape["q_len"] + window - 1 + sinks)
    elements = (2 * shape["batch"] * shape["heads_q"] * shape["q_len"] * shape["head_dim"]
                + 2 * shape["batch"] * shape["heads_kv"] * kv * shape["head_dim"])
    return elements * DTYPE_BYTES[shape["dtype"]]


# ==================================================================================================
# Benchmark shapes
# ==================================================================================================

#: FLOPs of one measured call above which the batch is cut (about 30 ms on an H200).
FLOP_BUDGET = 1.5e13
#: Window and sinks of the masked variants (Mistral-7B's 4096-token window; StreamingLLM's 4 sinks).
WINDOW, SINKS = 4096, 4


def make_shape(model: str, seq_len: int, kernel: str, dtype: str = "bf16", variant: str | None = None, *,
               gqa_mode: str = "native", window: int = WINDOW, sinks: int = SINKS,
               workload: Workload | None = None) -> dict[str, Any]:
    """One benchmark point of a built-in (or given) workload at ``seq_len``, with its FLOP/byte counts.

    ``variant`` defaults to the workload's masking (``causal`` for causal prefill, ``dense`` otherwise:
    a decode query is the newest token, so causality masks nothing).  The batch is the workload's, cut
    to a power of two so that one call stays under :data:`FLOP_BUDGET` (``workload_batch`` keeps the
    workload's; :func:`scaled_to_batch` scales a measurement back).
    """
    if kernel not in KERNELS:
        raise WorkloadError(f"unknown kernel '{kernel}'", hint=f"kernels: {', '.join(KERNELS)}")
    if dtype not in DTYPE_BYTES:
        raise WorkloadError(f"unknown dtype '{dtype}'", hint=f"dtypes: {', '.join(DTYPE_BYTES)}")
    w = (workload or load_workload(model)).with_seq_len(seq_len)
    if w.head_dim_e != w.head_dim_f:
        raise WorkloadError(f"{model}: gpu-bench needs E == F (got {w.head_dim_e}, {w.head_dim_f})")
    if variant is None:
        variant = "causal" if w.causal and w.phase == "prefill" else "dense"
    shape: dict[str, Any] = {
        "model": model, "phase": w.phase, "seq_len": seq_len, "variant": variant, "dtype": dtype, "kernel": kernel,
        "batch": w.batch, "workload_batch": w.batch, "heads_q": w.heads, "heads_kv": w.kv_heads,
        "q_len": w.seq_len_q, "kv_len": w.seq_len_kv, "head_dim": w.head_dim_e,
        "causal": variant != "dense", "gqa_mode": gqa_mode}
    if variant in ("sliding_window", "sinks_window"):
        shape["window"] = window
    if variant == "sinks_window":
        shape["sinks"] = sinks
    if variant == "alibi_causal":
        shape["bias"] = "alibi"
    per_sequence = attention_flops(dict(shape, batch=1))
    batch = w.batch
    while batch > 1 and per_sequence * batch > FLOP_BUDGET:
        batch //= 2
    shape["batch"] = batch
    shape["flops"] = attention_flops(shape)
    shape["bytes"] = attention_bytes(shape)
    shape["id"] = "-".join([model, _seq_label(seq_len), variant, dtype, kernel]
                           + ([f"gqa_{gqa_mode}"] if gqa_mode != "native" else []) + [f"b{batch}"])
    return shape


def _seq_label(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


_K = 1024
#: The default measurement plan: (models, seq_lens, kernels, dtypes, variant, gqa_mode).
DEFAULT_PLAN: tuple[tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...], tuple[str, ...], str | None, str], ...] = (
    # Llama-3-8B prefill (causal, GQA 32/8) and decode (64 sequences x long KV cache)
    # (the memory-efficient backend has no grouped-query path: it runs on K/V expanded to the query heads)
    (("llama3-8b",), (4 * _K, 8 * _K, 32 * _K, 128 * _K), ("sdpa-flash", "sdpa-cudnn"), ("bf16",), None, "native"),
    (("llama3-8b",), (4 * _K, 32 * _K), ("sdpa-efficient",), ("bf16",), None, "expand"),
    (("llama3-8b-decode",), (4 * _K, 8 * _K, 32 * _K, 128 * _K), ("sdpa-flash", "sdpa-cudnn"), ("bf16",), None,
     "native"),
    (("llama3-8b-decode",), (4 * _K, 32 * _K), ("sdpa-efficient",), ("bf16",), None, "expand"),
    (("llama3-8b-decode",), (32 * _K,), ("sdpa-cudnn",), ("bf16",), None, "expand"),
    (("llama3-8b-decode",), (32 * _K,), ("sdpa-flash", "sdpa-math"), ("fp16",), None, "native"),
    (("llama3-8b",), (32 * _K,), ("sdpa-flash", "sdpa-cudnn"), ("fp16",), None, "native"),
    (("llama3-8b",), (32 * _K,), ("sdpa-flash",), ("bf16",), "dense", "native"),
    # FuseMax models (non-causal self-attention, batch 64)
    (("bert",), (1 * _K, 4 * _K, 16 * _K, 64 * _K), ("sdpa-flash", "sdpa-cudnn", "sdpa-efficient"), ("bf16",),
     None, "native"),
    (("bert",), (4 * _K, 64 * _K), ("sdpa-flash", "sdpa-cudnn"), ("fp16",), None, "native"),
    (("bert",), (4 * _K, 64 * _K), ("sdpa-flash", "sdpa-cudnn"), ("bf16",), "causal", "native"),
    (("trxl", "t5"), (1 * _K, 4 * _K, 16 * _K, 64 * _K), ("sdpa-flash", "sdpa-cudnn"), ("bf16",), None, "native"),
    (("xlm",), (4 * _K, 16 * _K, 64 * _K), ("sdpa-flash", "sdpa-cudnn", "sdpa-efficient"), ("bf16",), None,
     "native"),
    (("xlm",), (1 * _K,), ("sdpa-flash", "sdpa-cudnn"), ("bf16",), None, "native"),
    # FlexAttention (compiled) for the masked variants
    (("llama3-8b",), (32 * _K,), ("flex",), ("bf16",), "causal", "native"),
    (("llama3-8b",), (32 * _K,), ("flex",), ("bf16",), "sliding_window", "native"),
    (("llama3-8b",), (32 * _K,), ("flex",), ("bf16",), "sinks_window", "native"),
    (("llama3-8b",), (32 * _K,), ("flex",), ("bf16",), "alibi_causal", "native"),
    (("llama3-8b",), (8 * _K,), ("flex",), ("bf16",), "sliding_window", "native"),
    (("llama3-8b",), (128 * _K,), ("flex",), ("bf16",), "sliding_window", "native"),
    (("llama3-8b",), (32 * _K,), ("flex",), ("fp16",), "causal", "native"),
    (("llama3-8b-decode",), (32 * _K,), ("flex",), ("bf16",), None, "native"),
    (("llama3-8b-decode",), (32 * _K,), ("flex",), ("bf16",), None, "expand"),
    (("bert",), (4 * _K, 64 * _K), ("flex",), ("bf16",), None, "native"),
    # the same windows through SDPA with an explicit boolean mask (the "no special kernel" baseline)
    (("llama3-8b",), (8 * _K, 32 * _K), ("sdpa-cudnn",), ("bf16",), "sliding_window", "native"),
    (("llama3-8b",), (8 * _K,), ("sdpa-efficient",), ("bf16",), "sliding_window", "expand"),
    (("llama3-8b",), (8 * _K,), ("sdpa-cudnn",), ("bf16",), "sinks_window", "native"),
    (("llama3-8b",), (8 * _K,), ("sdpa-efficient",), ("bf16",), "sinks_window", "expand"),
    # the long tail: the unfused math backend where it fits, the longest sequences
    (("bert",), (1 * _K, 4 * _K), ("sdpa-math",), ("bf16",), None, "native"),
    (("bert", "trxl", "t5", "xlm"), (256 * _K,), ("sdpa-flash", "sdpa-cudnn"), ("bf16",), None, "native"),
    (("llama3-8b-decode",), (32 * _K,), ("sdpa-cudnn",), ("fp16",), None, "native"),
)


def bench_shapes(plan: Iterable[tuple] = DEFAULT_PLAN, *, models: Sequence[str] | None = None,
                 kernels: Sequence[str] | None = None, dtypes: Sequence[str] | None = None,
                 max_seq_len: int | None = None) -> list[dict[str, Any]]:
    """The shapes of ``plan`` (default :data:`DEFAULT_PLAN`), filtered by model, kernel, dtype and length."""
    shapes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for plan_models, lens, plan_kernels, plan_dtypes, variant, gqa_mode in plan:
        for model in plan_models:
            if models is not None and model not in models:
                continue
            for n in lens:
                if max_seq_len is not None and n > max_seq_len:
                    continue
                for kernel in plan_kernels:
                    if kernels is not None and kernel not in kernels:
                        continue
                    for dtype in plan_dtypes:
                        if dtypes is not None and dtype not in dtypes:
                            continue
                        shape = make_shape(model, n, kernel, dtype, variant, gqa_mode=gqa_mode)
                        if shape["heads_q"] == shape["heads_kv"] and gqa_mode != "native":
                            continue
                        if shape["id"] not in seen:
                            seen.add(shape["id"])
                            shapes.append(shape)
    return shapes


def scaled_to_batch(point: Mapping[str, Any], batch: int) -> tuple[float, float | None]:
    """``(time_s, energy_j)`` of a measured point scaled linearly from its batch to ``batch``."""
    factor = batch / point["batch"]
    energy = point.get("energy_j")
    return point["time_s"] * factor, None if energy is None else energy * factor


# ==================================================================================================
# The dataset
# ==================================================================================================

_POINT_KEYS = ("id", "model", "phase", "seq_len", "variant", "dtype", "kernel", "batch", "heads_q", "heads_kv",
               "q_len", "kv_len", "head_dim", "flops", "bytes")


def load_dataset(path: str | Path | None = None) -> dict[str, Any]:
    """A ``gpu-bench`` dataset: the shipped H200 one (``path`` None) or a JSON file.

    Checks that every point has the shape keys and that a measured point has a positive ``time_s``;
    errors name the file and the point.
    """
    if path is None:
        text = resources.files("einloom.cost_models").joinpath("data", DATASET_FILE).read_text()
        where = f"einloom/cost_models/data/{DATASET_FILE}"
    else:
        where = str(path)
        from einloom.base.yamlio import read_user_file
        text = read_user_file(path, WorkloadError)           # refuses folders, /dev/zero, binary, huge files
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{where}: line {exc.lineno}: not valid JSON ({exc.msg})",
                            hint="give a file written by 'einloom gpu-bench -o FILE'") from None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list) or "environment" not in data:
        raise WorkloadError(f"{where}: not a gpu-bench dataset (needs 'environment' and a 'points' list)",
                            hint="give a file written by 'einloom gpu-bench -o FILE'")
    for i, point in enumerate(data["points"]):
        missing = [k for k in _POINT_KEYS if not isinstance(point, dict) or k not in point]
        if missing:
            raise WorkloadError(f"{where}: points[{i}]: missing field(s) {', '.join(missing)}")
        if not point.get("error"):
            t = point.get("time_s")
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not (t > 0 and math.isfinite(t)):
                raise WorkloadError(f"{where}: points[{i}] ({point['id']}): time_s must be a positive number, "
                                    f"got {t!r}")
    data["file"] = where
    return data


def measured_gpu(data: Mapping[str, Any]) -> GpuSpec | None:
    """The :class:`GpuSpec` whose key appears in the dataset's device name (e.g. 'NVIDIA H200' -> H200)."""
    device = str(data.get("environment", {}).get("device", "")).upper()
    for key, spec in gpu_specs().items():
        if key in device.split() or key in device:
            return spec
    return None


def dataset_points(data: Mapping[str, Any], gpus: Sequence[str] = ("A100", "H100", "H200", "B200")
                   ) -> list[dict[str, Any]]:
    """Measured points (errors left out), each with ``roofline_s.<GPU>`` and, for the GPU it was measured
    on, ``roofline_fraction`` = roofline time / measured time (1.0 = at the datasheet peak)."""
    own = measured_gpu(data)
    out = []
    for point in data["points"]:
        if point.get("error"):
            continue
        row = dict(point)
        for key in gpus:
            row[f"roofline_s.{key}"] = roofline(key, point["flops"], point["bytes"], point["dtype"]).time_s
        if own is not None:
            line = roofline(own, point["flops"], point["bytes"], point["dtype"])
            row["roofline_fraction"] = line.time_s / point["time_s"]
            row["roofline_bound"] = line.bound
            row["tflops_fraction"] = point["flops"] / point["time_s"] / own.peak_flops(point["dtype"])
            row["bandwidth_fraction"] = point["bytes"] / point["time_s"] / (own.hbm_gbps * 1e9)
        out.append(row)
    return out


def best_measured(points: Sequence[Mapping[str, Any]], *, heads_q: int, heads_kv: int, head_dim: int, q_len: int,
                  kv_len: int, variant: str, dtype: str = "bf16", window: int | None = None,
                  sinks: int = 0) -> Mapping[str, Any] | None:
    """The measured point with the least time per batch element for one attention shape, or None.

    Points match by shape (heads, head size, query and key lengths, mask variant and its window and
    sinks, dtype), not by model
    name, so a workload file with a built-in model's sizes finds its measurements; the batch may differ
    (see :func:`scaled_to_batch`).
    """
    found = [p for p in points if not p.get("error") and p["heads_q"] == heads_q and p["heads_kv"] == heads_kv
             and p["head_dim"] == head_dim and p["q_len"] == q_len and p["kv_len"] == kv_len
             and p["variant"] == variant and p["dtype"] == dtype and p.get("window") == window
             and (p.get("sinks") or 0) == sinks]
    return min(found, key=lambda p: p["time_s"] / p["batch"]) if found else None
