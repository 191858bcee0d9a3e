"""cocotb testbench of the attention core: drivers, monitor, reference model, scoreboard.

Loaded by cocotb inside the simulator.  ``EINLOOM_TB_SPEC`` names a JSON file
``{"config": <RtlConfig.to_dict()>, "cases": [{name, P, M, causal, window, sinks, seed, backpressure, input_gaps,
sd}]}``;
one cocotb test is generated per case.  Each test writes ``{passed, cycles, expected_cycles, ...}`` into
the JSON file named by ``EINLOOM_TB_RESULTS``.

Structure (cocotb's matrix_multiplier example):

* :class:`StreamDriver` drives one valid/ready sink (q, k, v) with optional random idle cycles;
* :class:`StreamMonitor` consumes the ``out`` stream with optional random backpressure;
* :func:`reference` is the golden model (:func:`einloom.sim.formats.golden_attention`, with a window
  :func:`einloom.rtl.tb.reference.golden_masked`);
* :func:`scoreboard` compares bit for bit and reports mismatches.
"""
from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from einloom.rtl.attention import core_params
from einloom.rtl.config import RtlConfig
from einloom.rtl.tb.reference import golden_masked
from einloom.sim.rtl_core import run_core


def pack(columns: np.ndarray, bits: int) -> list[int]:
    """[n, beats] codes -> one integer per beat, element i in bits [i*bits, (i+1)*bits)."""
    mask = (1 << bits) - 1
    out = []
    for beat in columns.T:
        word = 0
        for i, x in enumerate(beat):
            word |= (int(x) & mask) << (i * bits)
        out.append(word)
    return out


def unpack(word: int, n: int, bits: int) -> list[int]:
    mask = (1 << bits) - 1
    return [(word >> (i * bits)) & mask for i in range(n)]


class StreamDriver:
    """Drives ``<prefix>__valid/payload`` with a list of beats; counts transfers on valid & ready."""

    def __init__(self, dut, prefix: str, beats: list[int], rng: random.Random, gaps: float):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.beats, self.rng, self.gaps = beats, rng, gaps

    async def run(self) -> None:
        i = 0
        while i < len(self.beats):
            go = self.rng.random() >= self.gaps
            self.valid.value = int(go)
            self.payload.value = self.beats[i]
            await ReadOnly()
            fire = go and int(self.ready.value) == 1
            await RisingEdge(self.clk)
            if fire:
                i += 1
        self.valid.value = 0


class StreamMonitor:
    """Consumes ``out`` beats; ``backpressure`` is the probability that ready is low in a cycle."""

    def __init__(self, dut, count: int, rng: random.Random, backpressure: float):
        self.dut, self.count, self.rng, self.backpressure = dut, count, rng, backpressure
        self.beats: list[int] = []
        self.stalls = 0

    async def run(self) -> None:
        dut = self.dut
        while len(self.beats) < self.count:
            ready = self.rng.random() >= self.backpressure
            dut.out__ready.value = int(ready)
            await ReadOnly()
            if int(dut.out__valid.value):
                if ready:
                    self.beats.append(int(dut.out__payload.value.to_unsigned()))
                else:
                    self.stalls += 1
            await RisingEdge(dut.clk)
        dut.out__ready.value = 0


def reference(cfg: RtlConfig, q, k, v, causal: bool, window: int = 0, sinks: int = 0) -> np.ndarray:
    return golden_masked(cfg.fmt, q, k, v, tile_m=cfg.rows, causal=causal, window=window, sinks=sinks)


def scoreboard(fmt, got_words: list[int], want: np.ndarray, f_dim: int, bits: int) -> list[str]:
    errors = []
    for p, word in enumerate(got_words):
        got = fmt.from_wire_output(np.array(unpack(word, f_dim, bits)))
        bad = np.nonzero(got != want[:, p])[0]
        for f in bad[:4]:
            errors.append(f"AV[{f}, {p}]: got {int(got[f])}, want {int(want[f, p])}")
    if len(got_words) != want.shape[1]:
        errors.append(f"got {len(got_words)} output beats, want {want.shape[1]}")
    return errors


def _load_spec() -> dict:
    path = os.environ.get("EINLOOM_TB_SPEC")
    if not path or not os.path.exists(path):
        return {"config": None, "cases": []}
    with open(path) as fh:
        return json.load(fh)


def _record(name: str, result: dict) -> None:
    path = os.environ.get("EINLOOM_TB_RESULTS")
    if not path:
        return
    data = {}
    if os.path.exists(path):
        with open(path) as fh:
            data = json.load(fh)
    data[name] = result
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)


async def run_case(dut, cfg: RtlConfig, case: dict) -> dict:
    """One case; with ``heads`` (K/V heads, default 1) and ``groups`` (query heads per K/V head, default 1)
    the case is a GQA/MQA cascade folded onto the core (``einloom rtl``'s ``query_fold``): one core run
    per K/V head, its ``groups`` x ``P`` queries flattened group-major; each run is checked bit for bit
    and the cycles are the runs' sum."""
    fmt = cfg.fmt
    p_dim, m_dim, causal = case["P"], case["M"], bool(case.get("causal", False))
    heads, groups = int(case.get("heads", 1)), int(case.get("groups", 1))
    window, sinks = int(case.get("window", 0)), int(case.get("sinks", 0))
    seed = case.get("seed", 1)
    rng = np.random.default_rng(seed)
    sd = case.get("sd", 1.0)
    # the cascade's tensors: Q[E, G, P, J], K[E, M, J], V[F, M, J] (J: K/V head, G: query group)
    q_all = fmt.quantize(rng.normal(0, sd, (cfg.head_dim, groups, p_dim, heads)))
    k_all = fmt.quantize(rng.normal(0, sd, (cfg.head_dim, m_dim, heads)))
    v_all = fmt.quantize(rng.normal(0, 1.0, (cfg.value_dim, m_dim, heads)))
    prng = random.Random(seed)
    Clock(dut.clk, 10, unit="ns").start()
    errors, cycles, expected, macs, stalls = [], 0, 0, 0, 0
    for j in range(heads):
        q = q_all[:, :, :, j].reshape(cfg.head_dim, groups * p_dim)       # group-major: column g * P + p
        k, v = k_all[:, :, j], v_all[:, :, j]
        # the core's mask is per run: queries p of group g see the keys query p sees (bottom-right aligned)
        want = np.concatenate([reference(cfg, q[:, g * p_dim:(g + 1) * p_dim], k, v, causal, window, sinks)
                               for g in range(groups)], axis=1) if groups > 1 and causal else \
            reference(cfg, q, k, v, causal, window, sinks)
        if case.get("corrupt"):          # a deliberately wrong reference: the scoreboard must catch it
            want = want.copy()
            want[0, want.shape[1] - 1] += 1
        beats, got_cycles, got_stalls = await _run_once(dut, cfg, q, k, v, causal, window, sinks, prng, case)
        model = run_core(core_params(cfg), groups * p_dim, m_dim, causal, window=window, sinks=sinks)
        head = f"head {j}: " if heads > 1 else ""
        errors += [head + e for e in scoreboard(fmt, beats, want, cfg.value_dim, fmt.output_bits)]
        if got_stalls == 0 and got_cycles != model.cycles:
            errors.append(f"{head}compute_cycles {got_cycles} != expected {model.cycles}")
        if got_stalls and got_cycles < model.cycles:
            errors.append(f"{head}compute_cycles {got_cycles} < expected {model.cycles} under backpressure")
        cycles, expected, macs, stalls = cycles + got_cycles, expected + model.cycles, macs + model.macs, \
            stalls + got_stalls
    # 2D utilization measured in the RTL: multiply-accumulates on real keys and queries (those of the
    # tiles the core runs) / (PEs x measured compute cycles)
    util = macs / (cfg.rows * cfg.cols * cycles) if cycles else 0.0
    return {"passed": not errors, "errors": errors[:10], "cycles": cycles, "expected_cycles": expected,
            "macs": macs, "util_2d": util, "heads": heads, "groups": groups,
            "stalls": stalls, "P": p_dim, "M": m_dim, "E": cfg.head_dim, "F": cfg.value_dim,
            "causal": causal, "window": window, "sinks": sinks, "backpressure": case.get("backpressure", 0.0)}


async def _run_once(dut, cfg: RtlConfig, q, k, v, causal: bool, window: int, sinks: int, prng: random.Random,
                    case: dict) -> tuple[list[int], int, int]:
    """Reset, command, stream q/k/v in and the output out: (output beats, compute_cycles, output stalls)."""
    fmt = cfg.fmt
    p_dim, m_dim = q.shape[1], k.shape[1]
    dut.rst.value = 1
    dut.start.value = 0
    for name in ("q", "k", "v"):
        getattr(dut, f"{name}__valid").value = 0
    dut.out__ready.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    dut.num_queries.value = p_dim
    dut.num_keys.value = m_dim
    dut.causal.value = int(causal)
    dut.window.value = window
    dut.sinks.value = sinks
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0

    gaps = case.get("input_gaps", 0.0)
    bits = fmt.input_bits
    drivers = [StreamDriver(dut, "q", pack(fmt.to_wire(q), bits), prng, gaps),
               StreamDriver(dut, "k", pack(fmt.to_wire(k), bits), prng, gaps),
               StreamDriver(dut, "v", pack(fmt.to_wire(v), bits), prng, gaps)]
    monitor = StreamMonitor(dut, p_dim, prng, case.get("backpressure", 0.0))
    tasks = [cocotb.start_soon(d.run()) for d in drivers]
    mon = cocotb.start_soon(monitor.run())
    for t in tasks:
        await t
    await mon
    for _ in range(4):
        await RisingEdge(dut.clk)
    return monitor.beats, int(dut.compute_cycles.value.to_unsigned()), monitor.stalls


def _make_test(case: dict, cfg_dict: dict):
    async def test(dut):
        cfg = RtlConfig.from_dict(cfg_dict)
        result = await run_case(dut, cfg, case)
        _record(case["name"], result)
        assert result["passed"], "; ".join(result["errors"])
    test.__name__ = test.__qualname__ = f"attention_{case['name']}"
    return cocotb.test()(test)


_SPEC = _load_spec()
for _case in _SPEC.get("cases", []):
    globals()[f"attention_{_case['name']}"] = _make_test(_case, _SPEC["config"])
