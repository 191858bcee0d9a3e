"""Systolic GEMMs: the simulator's 2D-array cycles against the literature's count.

Per fold, an R x C array streaming T operands takes ``2R + C + T - 2`` cycles (SCALE-Sim, Samajdar et
al., ISPASS 2020; derived in docs/sim.md), output-stationary (M on rows, N on columns, T = K) and
weight-stationary (K on rows, N on columns, T = M) alike, and a GEMM takes ``ceil(Sr/R) ceil(Sc/C)``
folds.  With ``systolic_overlap`` (a real array streams the next fold's operands while this one drains)
the folds cost T each and one fill/drain ``2R + C - 2`` is exposed at the end.
"""
from math import ceil

import pytest

from einloom.cost_models.arch import arch_from_dict
from einloom.einsum import load_cascade
from einloom.mapper.lower import lower
from einloom.mapper.mapping import FusionGroup, Mapping
from einloom.sim.simulator import SimOptions, simulate, systolic_fill

R = C = 4
# a 4x4 array whose buffer ports and DRAM never stretch an op (the count under test is the array's)
ARCH = arch_from_dict({
    "name": "systolic-4x4", "clock_mhz": 1000, "technology_nm": 45, "data": {"format": "fp16", "bits": 16},
    "array_2d": {"rows": R, "cols": C, "units": {"mac": 1, "add": 1, "max": 1},
                 "register_file": {"entries": 12, "bits": 16}},
    "array_1d": {"width": 4, "units": {"mac": 1, "add": 1, "max": 1, "exp": 1, "div": 1},
                 "register_file": {"entries": 12, "bits": 16}},
    "global_buffer": {"capacity_bytes": 1 << 20, "row_bits": 1024, "banks": 64},
    "dram": {"bandwidth_GBps": 1e9}})

GEMM = """name: gemm
description: Z = A^T B
ranks: {{M: {M}, N: {N}, K: {K}}}
tensors:
  A: [K, M]
  B: [K, N]
  Z: [M, N]
inputs: [A, B]
outputs: [Z]
einsums:
  - Z[m, n] = A[k, m] * B[k, n]
"""


def _run(tmp_path, M, N, K, dataflow, options, dram_split=None):
    spec = tmp_path / f"gemm_{M}_{N}_{K}.yaml"
    spec.write_text(GEMM.format(M=M, N=N, K=K))
    rows, cols = (("M",), ("N",)) if dataflow == "os" else (("K",), ("N",))
    tiling = {rows[0]: {"spatial": R}, cols[0]: {"spatial": C}}
    order = {}
    if dram_split:
        rank, n = dram_split
        tiling.setdefault(rank, {})["DRAM"] = n
        order = {"DRAM": (rank,)}
    mapping = Mapping(name=dataflow, params={}, binding={"Z": "2d"}, spatial={"2d": {"rows": rows, "cols": cols}},
                      tiling=tiling, loop_order=order, groups=(FusionGroup(("all",), "sequential", None),))
    sim = simulate(lower(load_cascade(str(spec)), mapping, ARCH, None), options)
    assert sim.stalls["2d"]["ports"] == 0
    ops = [t for t in sim.trace if t[0] == "2d"]
    return ops, sim


def literature(M, N, K, dataflow):
    """SCALE-Sim: folds x (2R + C + T - 2)."""
    sr, sc, t = (M, N, K) if dataflow == "os" else (K, N, M)
    return ceil(sr / R) * ceil(sc / C) * (2 * R + C + t - 2)


SHAPES = [(10, 7, 5), (4, 4, 4), (1, 1, 1), (9, 13, 3), (16, 5, 11), (3, 17, 8)]


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_serial_folds_follow_scale_sim(tmp_path, M, N, K, dataflow):
    ops, sim = _run(tmp_path, M, N, K, dataflow, SimOptions(systolic_skew=True, systolic_overlap=False))
    busy = sum(end - start for *_x, start, end, _b in ops)
    assert busy == pytest.approx(literature(M, N, K, dataflow), abs=1e-6)
    assert sim.latency_cycles == pytest.approx(literature(M, N, K, dataflow), abs=1e-3)


@pytest.mark.parametrize("dataflow", ["os", "ws"])
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_overlapped_folds_expose_one_fill(tmp_path, M, N, K, dataflow):
    sr, sc, t = (M, N, K) if dataflow == "os" else (K, N, M)
    folds = ceil(sr / R) * ceil(sc / C)
    _ops, sim = _run(tmp_path, M, N, K, dataflow, SimOptions(systolic_skew=True))
    assert sim.latency_cycles == pytest.approx(folds * t + 2 * R + C - 2, abs=1e-3)
    # without the skew the array is an ideal T-per-fold pipe
    _ops, ideal = _run(tmp_path, M, N, K, dataflow, SimOptions(systolic_skew=False))
    assert ideal.latency_cycles == pytest.approx(folds * t, abs=1e-3)


@pytest.mark.parametrize("dataflow,split", [("os", ("M", 2)), ("ws", ("K", 2)), ("os", ("K", 4))])
def test_tiled_gemm_counts_each_tiles_folds(tmp_path, dataflow, split):
    """A DRAM loop splits the GEMM into tiles (epochs); the folds and fills add up over the tiles."""
    M, N, K = 16, 8, 8
    ops, sim = _run(tmp_path, M, N, K, dataflow, SimOptions(systolic_skew=True, systolic_overlap=False),
                    dram_split=split)
    assert len(ops) == split[1]
    busy = sum(end - start for *_x, start, end, _b in ops)
    sr, sc, t = (M, N, K) if dataflow == "os" else (K, N, M)
    if split[0] in (("M", "N") if dataflow == "os" else ("K", "N")):      # a spatial rank: fewer folds per tile
        want = ceil(sr / R) * ceil(sc / C) * (2 * R + C + t - 2)
    else:                                                                # the temporal rank: shorter folds
        want = split[1] * ceil(sr / R) * ceil(sc / C) * (2 * R + C + t // split[1] - 2)
    assert busy == pytest.approx(want, abs=1e-6)


def test_fill_formula():
    assert systolic_fill(4, 4) == 10 and systolic_fill(256, 256) == 766 and systolic_fill(1, 1) == 1
