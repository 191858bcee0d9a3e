"""Baseline mappings: Unfused, FLAT and FuseMax attention, and the layer's linear layers.

Each builder returns an ordinary :class:`~einloom.mapper.mapping.Mapping` (printable, serializable,
evaluated like any other); where the baseline's own method chooses a tile size (FuseMax's query tile
``P1``, FLAT's fusion granularity), the builder makes that choice with the evaluator under the same
rule the baseline uses, never with a per-configuration constant.

* **FuseMax** (1-pass cascade, MICRO 2024 §V; artifact ``proposal.py``): 2D array runs QK, LM, SLN,
  SLD, SLNV with keys-in-a-tile ``M0`` on the rows and queries ``P`` on the columns; the 1D array runs
  RM, PRM, SPD, SPNV, RD, RNV, AV with ``P`` on its lanes; ``E``/``F`` are temporal in each PE; one
  fusion group whose M1 iterations interleave across the two arrays.  ``P`` is split
  ``P2 (DRAM) x P1 (GLB) x cols``; ``P1`` is the largest whose running state, queries and one K/V
  tile fit the buffer (the artifact's rule), so K and V are re-read ``P2`` times.
* **FLAT** (3-pass cascade, ASPLOS 2023 as FuseMax evaluates it): 2D array runs QK and AV with ``E``
  (``F`` for AV) across the columns and the key rank ``M`` down the rows (``E/cols`` spatial use);
  the 1D array runs GM, SN, SD, A with ``M`` on its lanes; one group interleaving operators across
  row tiles.  Granularity = the row tile ``P1`` (``P1 = P`` is head granularity); QK and SN must be
  held along ``M`` for ``P1`` rows, so at long sequences FLAT spills QK and SN to DRAM, streaming them
  past the buffer as the artifact's FLAT mappings do (``flat_validation.csv``: ``QK_loc``/``A_loc``
  ``offchip``, i.e. Timeloop bypass).  The builder searches granularity x spill x buffer bypass of the
  inputs/output, as FLAT's own exhaustive search would: fastest first, then least energy.
* **Unfused** (3-pass): the same binding as FLAT, full-width spatial mappings (``P`` on columns, ``M``
  on rows), three kernels (QK | softmax | AV) with QK and A passed through DRAM (the artifact's
  ``unfused.py``); the softmax kernel keeps SN in the buffer, or spills it when it does not fit.
* **Linear layers** (Q, K, V, Z, FFN1, FFN2 as GEMMs ``(B*P) x K x N`` on the 2D array, weight tiles
  ``K x N`` spatial, an ``M`` tile of activations resident in the buffer): same latency for any
  architecture with the same array, energy from each architecture's costs (FuseMax §4.2).
"""
from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from einloom.einsum.errors import MappingError
from einloom.mapper.evaluate import (Evaluation, Hardware, _hardware, _instances, _view_for, check_mapping,
                                     evaluate_family, evaluate_view)
from einloom.mapper.mapping import FusionGroup, Mapping
from einloom.mapper.model import CascadeView, EinsumInfo

BASELINES = ("fusemax", "flat", "unfused")

FUSEMAX_2D = ("QK", "LM", "SLN", "SLD", "SLNV")
FUSEMAX_1D = ("RM", "PRM", "SPD", "SPNV", "RD", "RNV", "AV")
THREE_PASS_2D = ("QK", "AV")
THREE_PASS_1D = ("GM", "SN", "SD", "A")


def _dims(arch: Any) -> tuple[int, int, int]:
    hw = _hardware(arch)
    return hw.dims["2d"]["rows"], hw.dims["2d"]["cols"], hw.dims["1d"]["lanes"]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0] if n <= 4096 else \
        sorted({d for i in range(1, int(n ** 0.5) + 1) if n % i == 0 for d in (i, n // i)})


def _ranks(workload: Any) -> dict[str, int]:
    return dict(workload.rank_sizes())


# ------------------------------------------------------------------------------------------------
# FuseMax
# ------------------------------------------------------------------------------------------------

def fusemax_mapping(arch: Any, workload: Any, cascade: Any = "fusemax-1pass", *, p1: int | None = None
                    ) -> Mapping:
    """FuseMax's mapping of the 1-pass cascade (see the module docstring)."""
    rows, cols, lanes = _dims(arch)
    sizes = _ranks(workload)
    p_tiles = -(-sizes["P"] // cols)

    def build(p1_: int) -> Mapping:
        return Mapping(
            name="fusemax", cascade="fusemax-1pass", params={"M0": rows},
            description="1-pass; M0 on rows, P on columns/lanes, M1 iterations interleaved across arrays",
            binding={**{e: "2d" for e in FUSEMAX_2D}, **{e: "1d" for e in FUSEMAX_1D}},
            spatial={"2d": {"rows": ("M0",), "cols": ("P",)}, "1d": {"lanes": ("P",)}},
            tiling={"M0": {"spatial": rows}, "P": {"DRAM": p_tiles // p1_, "GLB": p1_, "spatial": min(cols, lanes)},
                    "E": {"PE": sizes["E"]}, "F": {"PE": sizes["F"]}},
            loop_order={"DRAM": ("P", "M1"), "GLB": ("P",), "PE": ("E", "F")},
            groups=(FusionGroup(("all",), "interleave", "M1"),))

    if p1 is not None:
        return build(p1)
    candidates = [d for d in _divisors(p_tiles)]
    base = build(1)
    rm = check_mapping(_view_for(cascade, base, workload, None), base, _hardware(arch))
    cand = np.array(candidates, dtype=float)
    res = evaluate_family(rm, {("DRAM", "P"): p_tiles / cand, ("GLB", "P"): cand})
    ok = np.nonzero(res["feasible"])[0]
    if len(ok) == 0:
        raise MappingError(f"FuseMax: even one query tile (P1 = 1) does not fit the buffer of {rm.hw.name}",
                           hint="use a larger global buffer or a smaller array")
    return build(int(cand[ok[-1]]))


# ------------------------------------------------------------------------------------------------
# FLAT and Unfused (3-pass cascade)
# ------------------------------------------------------------------------------------------------

def flat_mapping(arch: Any, workload: Any, cascade: Any = "softmax-3pass", *, p1: int | None = None,
                 spill: tuple[str, ...] | None = None, bypass: tuple[str, ...] | None = None) -> Mapping:
    """FLAT's fused 3-pass mapping (see the module docstring).

    Without ``p1``/``spill``/``bypass`` the builder searches them as FLAT's own exhaustive search
    would: every row granularity ``P1`` (a divisor of ``P``), spilling QK and SN or not, and staging
    the inputs and output (Q, K, V, AV) in the buffer or streaming them past it; it keeps the fastest
    feasible candidates (within 0.1%) and of those the one with the least energy.
    """
    rows, cols, lanes = _dims(arch)
    sizes = _ranks(workload)
    P, M = sizes["P"], sizes["M"]
    m0 = min(rows, M)

    def build(p1_: int, spill_: tuple[str, ...], bypass_: tuple[str, ...]) -> Mapping:
        gran = "head" if p1_ == P else f"row ({p1_} rows)"
        streamed = [t for t in bypass_ if t not in spill_]
        return Mapping(
            name="flat", cascade="softmax-3pass",
            description=f"3-pass fused at {gran} granularity, E across the columns"
                        + (f", {'+'.join(spill_)} spilled" if spill_ else "")
                        + (f", {'+'.join(bypass_)} bypassing the buffer" if bypass_ else ""),
            binding={**{e: "2d" for e in THREE_PASS_2D}, **{e: "1d" for e in THREE_PASS_1D}},
            spatial={"2d": {"rows": ("M",), "cols": ("E",)}, "1d": {"lanes": ("M",)}},
            spatial_overrides={"AV": {"rows": ("M",), "cols": ("F",)}},
            tiling={"M": {"DRAM": -(-M // m0), "spatial": m0}, "P": {"DRAM": P // p1_, "PE": p1_},
                    "E": {"spatial": min(sizes["E"], cols)}, "F": {"spatial": min(sizes["F"], cols)}},
            loop_order={"DRAM": ("P", "M"), "PE": ("P",)},
            groups=(FusionGroup(("all",), "interleave", "P"),), spill=spill_,
            bypass=tuple(spill_) + tuple(streamed))

    if p1 is not None:
        return build(p1, tuple(spill or ()), tuple(bypass or ()))
    hw = _hardware(arch)
    cand = np.array([d for d in _divisors(P)], dtype=float)
    spills = ((), ("QK", "SN")) if spill is None else (tuple(spill),)
    bypasses = ((), ("Q", "K", "V", "AV")) if bypass is None else (tuple(bypass),)
    scored: list[tuple[float, float, int, tuple[str, ...], tuple[str, ...]]] = []
    for spill_ in spills:
        for bypass_ in bypasses:
            base = build(1, spill_, bypass_)
            rm = check_mapping(_view_for(cascade, base, workload, None), base, hw)
            res = evaluate_family(rm, {("DRAM", "P"): P / cand, ("PE", "P"): cand})
            for i in np.nonzero(res["feasible"])[0]:
                scored.append((float(res["latency_cycles"][i]), float(res["energy_pj"][i]), int(cand[i]),
                               spill_, bypass_))
    if not scored:
        raise MappingError(f"FLAT: no granularity fits the buffer of {hw.name}",
                           hint="use a larger global buffer or a smaller array")
    fastest = min(s[0] for s in scored)
    _, _, p1_, spill_, bypass_ = min((s for s in scored if s[0] <= fastest * 1.001), key=lambda s: (s[1], -s[2]))
    return build(p1_, spill_, bypass_)


def unfused_mapping(arch: Any, workload: Any, cascade: Any = "softmax-3pass", *,
                    spill: tuple[str, ...] | None = None, bypass: tuple[str, ...] | None = None) -> Mapping:
    """The unfused 3-pass baseline (see the module docstring).

    Three kernels, as the FuseMax artifact's ``Unfused`` runs them: QK on the 2D array, the softmax
    (GM, SN, SD, A) on the 1D array with SN kept in the buffer between its three passes, AV on the 2D
    array; QK and A go from one kernel to the next through DRAM.  Without ``spill``/``bypass`` the
    builder also tries spilling SN (needed once 256 rows of SN outgrow the buffer) and streaming the
    inputs/output past the buffer, and keeps the fastest (then least-energy) feasible choice.
    """
    rows, cols, lanes = _dims(arch)
    sizes = _ranks(workload)
    P, M = sizes["P"], sizes["M"]
    m0, p0 = min(rows, M), min(cols, P)

    def build(spill_: tuple[str, ...], bypass_: tuple[str, ...]) -> Mapping:
        return Mapping(
            name="unfused", cascade="softmax-3pass",
            description="3 kernels (QK | softmax | AV), QK and A through DRAM"
                        + (f", {'+'.join(t for t in spill_ if t not in ('QK', 'A'))} spilled"
                           if set(spill_) - {"QK", "A"} else ""),
            binding={**{e: "2d" for e in THREE_PASS_2D}, **{e: "1d" for e in THREE_PASS_1D}},
            spatial={"2d": {"rows": ("M",), "cols": ("P",)}, "1d": {"lanes": ("P",)}},
            tiling={"M": {"DRAM": -(-M // m0), "spatial": m0}, "P": {"DRAM": -(-P // p0), "spatial": p0},
                    "E": {"PE": sizes["E"]}, "F": {"PE": sizes["F"]}},
            loop_order={"DRAM": ("P", "M"), "PE": ("E", "F")},
            groups=(FusionGroup(("QK",), "none"), FusionGroup(THREE_PASS_1D, "sequential"),
                    FusionGroup(("AV",), "none")),
            spill=spill_, bypass=bypass_)

    if spill is not None or bypass is not None:
        spill_ = tuple(spill) if spill is not None else ("QK", "A")
        return build(spill_, tuple(bypass) if bypass is not None else spill_)
    hw = _hardware(arch)
    scored = []
    for spill_ in (("QK", "A"), ("QK", "A", "SN")):
        for streamed in ((), ("Q", "K", "V", "AV")):
            mapping = build(spill_, spill_ + streamed)
            rm = check_mapping(_view_for(cascade, mapping, workload, None), mapping, hw)
            res = evaluate_family(rm)
            if res["feasible"][0]:
                scored.append((float(res["latency_cycles"][0]), float(res["energy_pj"][0]), mapping))
    if not scored:
        raise MappingError(f"Unfused: the softmax kernel does not fit the buffer of {hw.name}",
                           hint="use a larger global buffer or a smaller array")
    fastest = min(t[0] for t in scored)
    return min((t for t in scored if t[0] <= fastest * 1.001), key=lambda t: t[1])[2]


def baseline_cascade(name: str) -> str:
    """The library cascade a baseline maps."""
    return "fusemax-1pass" if name == "fusemax" else "softmax-3pass"


def baseline_mapping(name: str, cascade: Any, arch: Any, workload: Any) -> Mapping:
    """Build baseline ``name`` (fusemax, flat, unfused) for ``arch`` and ``workload``."""
    key = name.lower()
    if key not in BASELINES:
        import difflib
        close = difflib.get_close_matches(key, BASELINES, n=1)
        raise MappingError(f"unknown baseline mapping '{name}'",
                           hint=(f"did you mean '{close[0]}'? " if close else "")
                           + f"baselines: {', '.join(BASELINES)}, or a mapping file")
    if cascade is None or isinstance(cascade, str) and cascade == baseline_cascade(key):
        cascade = baseline_cascade(key)
    return {"fusemax": fusemax_mapping, "flat": flat_mapping, "unfused": unfused_mapping}[key](
        arch, workload, cascade)


# ------------------------------------------------------------------------------------------------
# Linear layers
# ------------------------------------------------------------------------------------------------

def gemm_view(name: str, m: int, k: int, n: int) -> CascadeView:
    """``Z[m, n] = X[m, k] * W[k, n]`` as a one-Einsum cascade view."""
    z = EinsumInfo("Z", ("M", "N", "K"), ("K",), ("X", "W"), {"mac": m * k * n})
    return CascadeView.from_parts(name, [z], {"M": m, "N": n, "K": k},
                                  {"X": ("M", "K"), "W": ("K", "N"), "Z": ("M", "N")}, ["X", "W"], ["Z"])


def linear_layer_mapping(arch: Any, m: int, k: int, n: int, m_tile: int = 1) -> Mapping:
    """Weight tile ``K x N`` spatial (rows x columns); ``m_tile`` activation rows resident per tile."""
    rows, cols, _ = _dims(arch)
    k0, n0 = min(rows, k), min(cols, n)
    return Mapping(
        name="linear", description="weight-stationary GEMM, activation rows streamed per weight tile",
        binding={"Z": "2d"}, spatial={"2d": {"rows": ("K",), "cols": ("N",)}},
        tiling={"K": {"GLB": -(-k // k0), "spatial": k0}, "N": {"DRAM": -(-n // n0), "spatial": n0},
                "M": {"DRAM": -(-m // m_tile), "PE": m_tile}},
        loop_order={"DRAM": ("M", "N"), "GLB": ("K",), "PE": ("M",)},
        groups=(FusionGroup(("all",), "none"),))


def evaluate_linear_layers(arch: Any, workload: Any) -> dict[str, Evaluation]:
    """Each linear layer with the activation tile (a power of two that fits) that is fastest within
    0.1%, then cheapest in energy."""
    hw = _hardware(arch)
    out = {}
    for name, (m, k, n) in workload.linear_layers().items():
        view = gemm_view(name, m, k, n)
        base = linear_layer_mapping(arch, m, k, n, 1)
        rm = check_mapping(view, base, hw)
        tiles = np.array([1 << i for i in range(0, max(m, 1).bit_length())], dtype=float)
        res = evaluate_family(rm, {("DRAM", "M"): np.ceil(m / tiles), ("PE", "M"): tiles})
        lat = np.where(res["feasible"], res["latency_cycles"], np.inf)
        # fastest within 0.1% (a larger first tile is exposed longer), then least energy
        near = lat <= lat.min() * 1.001
        i = int(np.argmin(np.where(near, res["energy_pj"], np.inf)))
        mapping = linear_layer_mapping(arch, m, k, n, int(tiles[i]))
        out[name] = evaluate_view(check_mapping(view, mapping, hw), instances=1,
                                  workload_name=getattr(workload, "name", "-"), cascade_name=f"linear-{name}")
    return out
