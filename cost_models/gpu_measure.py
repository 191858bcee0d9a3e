"""Measure attention kernels on a CUDA GPU: PyTorch SDPA backends and compiled FlexAttention.

This module needs PyTorch with CUDA (the ``einloom[gpu]`` extra); NVML (``nvidia-ml-py``, imported as
``pynvml``) adds energy, board power and clocks.  It imports nothing of einloom, so it also runs on
its own on a GPU machine that has only torch::

    python gpu_measure.py shapes.json dataset.json [--budget-s 480]

where ``shapes.json`` is the list made by :func:`einloom.cost_models.gpu.bench_shapes` (each entry
already carries its FLOP and byte counts).  :func:`measure` is the library entry point used by
``einloom gpu-bench``.

Method, per point (each entry of the shape list):

* inputs drawn from a standard normal distribution (never zeros), Q as ``[B, Hq, Lq, D]`` and K, V as
  ``[B, Hkv, Lkv, D]``;
* a correctness check first: rows of batch 0 of the first and last query head against a float32
  reference with the same mask/bias (``rel_error`` = ||out - ref|| / ||ref||; > 2e-2 fails the point);
* warm-up (FlexAttention: the first call compiles, its time is recorded as ``compile_s``) and about
  0.3 s of pre-heat calls, then a timed loop of ``repeats`` calls (at least 2 s), each between two CUDA
  events; ``time_s`` is the median, with the minimum, maximum, 10th/90th percentiles, the mean and
  the coefficient of variation;
* NVML's total-energy counter (mJ), which the driver updates only about every 100 ms: the loop starts
  right after an update and ends at the first update after its final synchronize, so the energy
  window holds the whole loop and a short idle tail (``energy_idle_tail_s``); ``energy_j`` is the
  window's energy over ``repeats``.  A sampling thread reads the board power and the SM/memory
  clocks every 10 ms during the loop (mean/max power, median/min/max clocks);
* achieved ``tflops`` (the entry's ``flops`` over the median time) and ``gbps`` (``bytes``).

A point that fails (backend not available for the shape, out of memory, wrong result) is kept with
its ``error`` and no figures.  After each point the whole dataset is rewritten, so a run stopped at a
time limit still leaves everything it measured.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

#: Kernels this module can run (``kernel`` field of a shape).
KERNELS = ("sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-math", "flex")
#: Relative error above which a kernel's output counts as wrong.
MAX_REL_ERROR = 2e-2
_REFERENCE_ROWS = 64


def _torch():
    import torch  # noqa: PLC0415 (optional dependency)
    return torch


# ==================================================================================================
# NVML: energy, power, clocks
# ==================================================================================================

class _Nvml:
    """Energy counter, power and clock readings of GPU ``index`` (all None without NVML)."""

    def __init__(self, index: int = 0):
        self.handle = None
        self.error = None
        self.instant = True
        try:
            import pynvml  # noqa: PLC0415
            pynvml.nvmlInit()
            self.nv = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:  # no NVML: time only
            self.error = f"NVML not available: {exc}"

    def _call(self, name: str, *args: Any) -> Any:
        if self.handle is None:
            return None
        try:
            return getattr(self.nv, name)(self.handle, *args)
        except Exception:
            return None

    def energy_mj(self) -> int | None:
        return self._call("nvmlDeviceGetTotalEnergyConsumption")

    def power_w(self) -> float | None:
        """Board power (W): NVML's instantaneous reading where the driver has it, else its average."""
        if self.handle is not None and self.instant:
            try:
                field = self.nv.nvmlDeviceGetFieldValues(self.handle, [self.nv.NVML_FI_DEV_POWER_INSTANT])[0]
                if field.nvmlReturn == 0 and field.value.uiVal > 0:
                    return field.value.uiVal / 1000.0
            except Exception:
                pass
            self.instant = False
        mw = self._call("nvmlDeviceGetPowerUsage")
        return None if mw is None else mw / 1000.0

    def wait_tick(self, timeout_s: float = 0.5) -> tuple[int | None, float]:
        """Spin until the energy counter changes (it updates about every 100 ms on an H200); returns the
        new reading and the host time of the change, so an interval starts and ends on an update."""
        first = self.energy_mj()
        start = time.perf_counter()
        while first is not None:
            value = self.energy_mj()
            now = time.perf_counter()
            if value != first or now - start > timeout_s:
                return value, now
            time.sleep(0.0005)
        return None, start

    def clocks_mhz(self) -> tuple[int | None, int | None]:
        if self.handle is None:
            return None, None
        return (self._call("nvmlDeviceGetClockInfo", self.nv.NVML_CLOCK_SM),
                self._call("nvmlDeviceGetClockInfo", self.nv.NVML_CLOCK_MEM))

    def throttle_reasons(self) -> int | None:
        for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            value = self._call(name)
            if value is not None:
                return int(value)
        return None

    def info(self) -> dict[str, Any]:
        if self.handle is None:
            return {"nvml": self.error}
        out: dict[str, Any] = {}
        try:
            out["driver"] = _text(self.nv.nvmlSystemGetDriverVersion())
        except Exception:
            pass
        for key, name, args in (("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit", ()),
                                ("max_sm_clock_mhz", "nvmlDeviceGetMaxClockInfo", (self.nv.NVML_CLOCK_SM,)),
                                ("max_mem_clock_mhz", "nvmlDeviceGetMaxClockInfo", (self.nv.NVML_CLOCK_MEM,)),
                                ("name", "nvmlDeviceGetName", ()), ("serial", "nvmlDeviceGetSerial", ()),
                                ("vbios", "nvmlDeviceGetVbiosVersion", ())):
            value = self._call(name, *args)
            if value is not None:
                out[key] = value / 1000.0 if key == "power_limit_w" else _text(value)
        return out


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class _Sampler(threading.Thread):
    """Reads board power and clocks every ``period_s`` until stopped."""

    def __init__(self, nvml: _Nvml, period_s: float = 0.01):
        super().__init__(daemon=True)
        self.nvml, self.period_s = nvml, period_s
        self.power: list[float] = []
        self.sm: list[int] = []
        self.mem: list[int] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            p = self.nvml.power_w()
            sm, mem = self.nvml.clocks_mhz()
            if p is not None:
                self.power.append(p)
            if sm is not None:
                self.sm.append(sm)
            if mem is not None:
                self.mem.append(mem)
            self._stop_event.wait(self.period_s)

    def stop(self) -> dict[str, Any]:
        self._stop_event.set()
        self.join()
        out: dict[str, Any] = {"power_samples": len(self.power)}
        if self.power:
            out.update(power_mean_w=statistics.fmean(self.power), power_max_w=max(self.power))
        if self.sm:
            out.update(sm_clock_median_mhz=statistics.median(self.sm), sm_clock_min_mhz=min(self.sm),
                       sm_clock_max_mhz=max(self.sm))
        if self.mem:
            out.update(mem_clock_median_mhz=statistics.median(self.mem))
        return out


# ==================================================================================================
# Kernels
# ==================================================================================================

def _mask_predicate(shape: dict[str, Any]) -> Callable[[Any, Any], Any] | None:
    """``(q_index, k_index) -> keep`` for the shape's mask (positions aligned at the end), or None."""
    offset = shape["kv_len"] - shape["q_len"]  # decode: the queries are the newest tokens
    causal, window, sinks = shape["causal"], shape.get("window"), shape.get("sinks") or 0

    if not causal and window is None:
        return None

    def keep(q, k):
        qpos = q + offset
        ok = k <= qpos if causal else (k >= 0)
        if window is not None:
            band = (qpos - k) < window
            if sinks:
                band = band | (k < sinks)
            ok = ok & band
        return ok
    return keep


def _alibi_slopes(heads: int, device: str):
    torch = _torch()
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)], device=device, dtype=torch.float32)


def _reference(shape: dict[str, Any], q, k, v, heads: Sequence[int]) -> list[Any]:
    """float32 attention of the first rows of batch 0, for query heads ``heads``."""
    torch = _torch()
    rows = min(shape["q_len"], _REFERENCE_ROWS)
    group = shape["heads_q"] // shape["heads_kv"]
    keep = _mask_predicate(shape)
    qi = torch.arange(rows, device=q.device)[:, None]
    ki = torch.arange(shape["kv_len"], device=q.device)[None, :]
    out = []
    for h in heads:
        qh = q[0, h, :rows].float()
        kh, vh = k[0, h // group].float(), v[0, h // group].float()
        s = (qh @ kh.T) / math.sqrt(shape["head_dim"])
        if shape.get("bias") == "alibi":
            slope = _alibi_slopes(shape["heads_q"], q.device)[h]
            s = s + slope * (ki - (qi + shape["kv_len"] - shape["q_len"])).float()
        if keep is not None:
            s = s.masked_fill(~keep(qi, ki), float("-inf"))
        out.append(torch.softmax(s, dim=-1) @ vh)
    return out


class _Compiled:
    """One compiled FlexAttention callable (torch.compile caches one graph per shape and mods)."""

    fn = None

    @classmethod
    def get(cls):
        if cls.fn is None:
            torch = _torch()
            from torch.nn.attention.flex_attention import flex_attention  # noqa: PLC0415
            for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                         "accumulated_cache_size_limit"):
                if hasattr(torch._dynamo.config, name):
                    setattr(torch._dynamo.config, name, 256)
            cls.fn = torch.compile(flex_attention, dynamic=False)
        return cls.fn


def _kernel(shape: dict[str, Any], q, k, v) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A no-argument callable running the shape's kernel, and notes on how it runs."""
    torch = _torch()
    import torch.nn.functional as F  # noqa: PLC0415
    kernel, gqa = shape["kernel"], shape["heads_q"] != shape["heads_kv"]
    notes: dict[str, Any] = {}
    if gqa and shape.get("gqa_mode") == "expand":
        group = shape["heads_q"] // shape["heads_kv"]
        k, v, gqa = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1), False
        notes["gqa"] = "K/V expanded to the query heads (repeat_interleave) before the call"
    elif gqa:
        notes["gqa"] = "native (enable_gqa=True)"
    if kernel == "flex":
        from torch.nn.attention.flex_attention import create_block_mask  # noqa: PLC0415
        flex = _Compiled.get()
        keep = _mask_predicate(shape)
        block_mask = None
        if keep is not None:
            start = time.perf_counter()
            try:  # _compile avoids materializing the Q x KV mask (128 GiB at 128K tokens)
                block_mask = create_block_mask(lambda b, h, qi, ki: keep(qi, ki), None, None, shape["q_len"],
                                               shape["kv_len"], device="cuda", _compile=True)
            except TypeError:
                block_mask = create_block_mask(lambda b, h, qi, ki: keep(qi, ki), None, None, shape["q_len"],
                                               shape["kv_len"], device="cuda")
            notes["block_mask_s"] = time.perf_counter() - start
        score_mod = None
        if shape.get("bias") == "alibi":
            slopes = _alibi_slopes(shape["heads_q"], "cuda")
            offset = shape["kv_len"] - shape["q_len"]

            def score_mod(score, b, h, qi, ki):
                return score + slopes[h] * (ki - qi - offset)
        return (lambda: flex(q, k, v, score_mod=score_mod, block_mask=block_mask, enable_gqa=gqa)), notes

    from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: PLC0415
    backend = {"sdpa-flash": SDPBackend.FLASH_ATTENTION, "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION,
               "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION, "sdpa-math": SDPBackend.MATH}[kernel]
    if shape.get("bias") is not None:
        raise ValueError("SDPA runs here without a bias; use kernel flex for ALiBi")
    attn_mask, is_causal = None, False
    keep = _mask_predicate(shape)
    if keep is not None:
        if shape["causal"] and shape.get("window") is None and shape["q_len"] == shape["kv_len"]:
            is_causal = True
        else:  # decode-causal or windowed: an explicit boolean mask
            qi = torch.arange(shape["q_len"], device="cuda")[:, None]
            ki = torch.arange(shape["kv_len"], device="cuda")[None, :]
            attn_mask = keep(qi, ki)
            notes["explicit_mask"] = True
            if bool(attn_mask.all()):
                attn_mask = None
                notes["explicit_mask"] = "all true: dropped"

    def call():
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, enable_gqa=gqa)
    return call, notes


# ==================================================================================================
# One point
# ==================================================================================================

def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def measure_point(shape: dict[str, Any], nvml: _Nvml, *, min_time_s: float = 2.0, max_repeats: int = 20000,
                  min_repeats: int = 5, warmup: int = 3, preheat_s: float = 0.3) -> dict[str, Any]:
    """Run one shape (see the module docstring); returns the shape plus the measured fields."""
    torch = _torch()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[shape["dtype"]]
    out = dict(shape)
    gen = torch.Generator(device="cuda").manual_seed(shape.get("seed", 0))
    b, hq, hkv, lq, lkv, d = (shape[k] for k in ("batch", "heads_q", "heads_kv", "q_len", "kv_len", "head_dim"))
    q = torch.randn(b, hq, lq, d, device="cuda", dtype=dtype, generator=gen)
    k = torch.randn(b, hkv, lkv, d, device="cuda", dtype=dtype, generator=gen)
    v = torch.randn(b, hkv, lkv, d, device="cuda", dtype=dtype, generator=gen)
    call, notes = _kernel(shape, q, k, v)
    out.update(notes)
    # correctness (and, for FlexAttention, compilation) on the first call
    torch.cuda.synchronize()
    start = time.perf_counter()
    result = call()
    torch.cuda.synchronize()
    out["first_call_s"] = time.perf_counter() - start
    if shape["kernel"] == "flex":
        out["compile_s"] = out["first_call_s"]
    if not bool(torch.isfinite(result).all()):
        raise RuntimeError("output has NaN or infinity")
    heads = sorted({0, hq - 1})
    refs = _reference(shape, q, k, v, heads)
    rows = refs[0].shape[0]
    num = sum(float((result[0, h, :rows].float() - r).norm()) ** 2 for h, r in zip(heads, refs))
    den = sum(float(r.norm()) ** 2 for r in refs)
    out["rel_error"] = math.sqrt(num / den) if den > 0 else None
    out["rel_error_rows"] = rows
    if out["rel_error"] is None or out["rel_error"] > MAX_REL_ERROR:
        raise RuntimeError(f"wrong result: relative error {out['rel_error']} > {MAX_REL_ERROR}")
    del result, refs
    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    # estimate the time of one call to size the timed loop
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    call()
    e1.record()
    torch.cuda.synchronize()
    estimate = max(e0.elapsed_time(e1) / 1000.0, 1e-6)
    repeats = int(min(max_repeats, max(min_repeats, math.ceil(min_time_s / estimate))))
    # pre-heat: run about preheat_s so clocks and power settle before the timed loop
    for _ in range(int(min(max_repeats, math.ceil(preheat_s / estimate)))):
        call()
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
    power_before = nvml.power_w()
    sampler = _Sampler(nvml)
    energy0, tick0 = nvml.wait_tick()
    sampler.start()
    wall0 = time.perf_counter()
    for begin, end in events:
        begin.record()
        call()
        end.record()
    torch.cuda.synchronize()
    wall1 = time.perf_counter()
    energy1, tick1 = nvml.wait_tick()
    out.update(sampler.stop())
    times = [b_.elapsed_time(e_) / 1000.0 for b_, e_ in events]
    median = statistics.median(times)
    out.update(repeats=repeats, warmup=warmup, time_s=median, time_min_s=min(times), time_max_s=max(times),
               time_p10_s=_percentile(times, 0.1), time_p90_s=_percentile(times, 0.9),
               time_mean_s=statistics.fmean(times), time_cv=statistics.pstdev(times) / statistics.fmean(times),
               loop_wall_s=wall1 - wall0, power_before_w=power_before, throttle_reasons=nvml.throttle_reasons())
    if energy0 is not None and energy1 is not None and energy1 > energy0:
        out["loop_energy_j"] = (energy1 - energy0) / 1000.0
        out["energy_window_s"] = tick1 - tick0  # counter update to counter update, loop inside
        out["energy_idle_tail_s"] = tick1 - wall1  # idle time after the loop inside that window
        out["energy_j"] = out["loop_energy_j"] / repeats
        out["loop_power_w"] = out["loop_energy_j"] / out["energy_window_s"]
    out["tflops"] = shape["flops"] / median / 1e12
    out["gbps"] = shape["bytes"] / median / 1e9
    return out


# ==================================================================================================
# A run
# ==================================================================================================

def environment() -> dict[str, Any]:
    """Device, driver, CUDA, cuDNN, torch and Triton versions (and what NVML says about the board)."""
    torch = _torch()
    props = torch.cuda.get_device_properties(0)
    env: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0), "compute_capability": list(torch.cuda.get_device_capability(0)),
        "sm_count": props.multi_processor_count, "memory_gib": props.total_memory / 2 ** 30,
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "python": platform.python_version(), "host": platform.node()}
    try:
        import triton  # noqa: PLC0415
        env["triton"] = triton.__version__
    except Exception:
        env["triton"] = None
    nvml = _Nvml()
    env.update(nvml.info())
    energy0, tick0 = nvml.wait_tick()
    time.sleep(1.0)
    energy1, tick1 = nvml.wait_tick()
    if energy0 is not None and energy1 is not None and tick1 > tick0:
        env["idle_power_w"] = (energy1 - energy0) / 1000.0 / (tick1 - tick0)
    probe = []
    for _ in range(3):
        _, t0 = nvml.wait_tick()
        _, t1 = nvml.wait_tick()
        probe.append(t1 - t0)
    env["energy_counter_period_s"] = statistics.median(probe)
    return env


def measure(shapes: Sequence[dict[str, Any]], *, budget_s: float | None = None, min_time_s: float = 2.0,
            progress: Callable[[int, int, dict[str, Any]], None] | None = None,
            save: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Measure every shape; returns ``{"environment", "method", "points", "skipped"}``.

    ``budget_s`` stops starting new points once that many seconds have passed (the rest are listed
    under ``skipped``); ``save`` is called with the dataset after each point.
    """
    torch = _torch()
    if not torch.cuda.is_available():
        raise RuntimeError("PyTorch sees no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    nvml = _Nvml()
    data: dict[str, Any] = {"environment": environment(), "method": METHOD, "points": [], "skipped": [],
                            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    start = time.perf_counter()
    for i, shape in enumerate(shapes):
        if budget_s is not None and time.perf_counter() - start > budget_s:
            data["skipped"] = [s["id"] for s in shapes[i:]]
            break
        try:
            point = measure_point(shape, nvml, min_time_s=min_time_s)
        except Exception as exc:  # keep going: one backend's refusal is a data point too
            point = dict(shape)
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            text = lines[0][:300] if lines else ""
            if len(lines) > 1:
                text += " ... " + lines[-1][:300]
            point["error"] = f"{type(exc).__name__}: {text}"
        torch.cuda.empty_cache()
        data["points"].append(point)
        data["elapsed_s"] = time.perf_counter() - start
        if progress:
            progress(i, len(shapes), point)
        if save:
            save(data)
    return data


METHOD = (
    "Per point: inputs ~ N(0,1) in the point's dtype; first call checked against a float32 reference "
    f"(first {_REFERENCE_ROWS} query rows of batch 0, first and last query head; fail above "
    f"{MAX_REL_ERROR} relative error); 3 warm-up calls; about 0.3 s of pre-heat calls; a timed loop of "
    "max(5, ceil(2 s / one call)) calls, each between two CUDA events; time_s = median, with min/max/p10/p90, "
    "mean and the coefficient of variation. Energy: NVML total-energy counter (mJ), which updates about every "
    "100 ms (environment.energy_counter_period_s): the loop starts right after an update and the reading after "
    "it is the first update after the final synchronize, so the window (energy_window_s) holds the loop plus "
    "energy_idle_tail_s of idle; energy_j = window energy / calls (board energy, idle included; "
    "environment.idle_power_w is the idle board power). Board power (NVML instantaneous reading where "
    "available) and SM/memory clocks sampled every 10 ms during the loop; throttle_reasons is NVML's clock "
    "event mask after the loop (4 = software power cap). FlexAttention: torch.compile(flex_attention, "
    "dynamic=False); compile_s is the first call (compilation included). Clocks, power limit and application "
    "clocks were left as found.")


def print_progress(i: int, n: int, point: dict[str, Any], file: Any = None) -> None:
    """One line for a measured (or failed) point: time, spread, rates, energy, clock, error."""
    file = file or sys.stdout
    if point.get("error"):
        print(f"[{i + 1}/{n}] {point['id']}: {point['error']}", file=file, flush=True)
    else:
        energy = point.get("energy_j")
        print(f"[{i + 1}/{n}] {point['id']}: {point['time_s'] * 1e3:.3f} ms (cv {point['time_cv']:.3f}, "
              f"n={point['repeats']}) {point['tflops']:.1f} TFLOP/s {point['gbps']:.0f} GB/s "
              f"{'-' if energy is None else f'{energy * 1e3:.2f} mJ'} sm {point.get('sm_clock_median_mhz')} MHz "
              f"err {point['rel_error']:.1e}", file=file, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="measure attention kernels listed in a shapes JSON file")
    parser.add_argument("shapes", help="JSON list of shapes (einloom.cost_models.gpu.bench_shapes)")
    parser.add_argument("output", help="dataset JSON to write")
    parser.add_argument("--budget-s", type=float, default=None, help="stop starting points after this many s")
    parser.add_argument("--min-time-s", type=float, default=2.0, help="least duration of a timed loop")
    parser.add_argument("--only", default=None, help="comma-separated substrings of shape ids to keep")
    args = parser.parse_args(argv)
    shapes = json.loads(Path(args.shapes).read_text())
    if args.only:
        keys = args.only.split(",")
        shapes = [s for s in shapes if any(key in s["id"] for key in keys)]
    out = Path(args.output)

    def save(data: dict[str, Any]) -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, out)
    data = measure(shapes, budget_s=args.budget_s, min_time_s=args.min_time_s, progress=print_progress, save=save)
    save(data)
    ok = sum(1 for p in data["points"] if not p.get("error"))
    print(f"{ok} of {len(data['points'])} points measured, {len(data['skipped'])} skipped, "
          f"{data.get('elapsed_s', 0):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
