"""Small hand-checkable fixtures: a 4x4 + 4-lane architecture and stand-in cascade views."""
from __future__ import annotations

from einloom.cost_models.arch import arch_from_dict
from einloom.mapper.model import CascadeView, EinsumInfo


def small_arch(glb_bytes: int = 4096, dram_gbps: float = 10.0, exp_2d: bool = False, banks: int = 1):
    """4x4 2D array, 4-lane 1D array, 1 GHz, ``dram_gbps`` GB/s (10 GB/s = 10 bytes per cycle), a buffer
    of ``banks`` banks of 4-value rows (one row per bank per cycle)."""
    units_2d = {"mac": 1, "add": 1, "max": 1}
    if exp_2d:
        units_2d["exp"] = {"as_mac": 6, "add": 1}
    return arch_from_dict({
        "name": "tiny", "clock_mhz": 1000, "technology_nm": 45, "data": {"format": "fp16", "bits": 16},
        "array_2d": {"rows": 4, "cols": 4, "units": units_2d, "register_file": {"entries": 12, "bits": 16}},
        "array_1d": {"width": 4, "units": {"mac": 1, "add": 1, "max": 1, "exp": 1, "div": 1},
                     "register_file": {"entries": 12, "bits": 16}},
        "global_buffer": {"capacity_bytes": glb_bytes, "row_bits": 64, "banks": banks},
        "dram": {"bandwidth_GBps": dram_gbps},
    })


def qk_view(P: int = 8, M: int = 8, E: int = 4, with_max: bool = False, with_exp: bool = False) -> CascadeView:
    """QK[m,p] = Q[e,p] K[e,m]; optionally LM[p] = max[m] QK[m,p] and SN[m,p] = exp(QK[m,p])."""
    einsums = [EinsumInfo("QK", ("M", "P", "E"), ("E",), ("Q", "K"), {"mac": M * P * E})]
    ranks = {"Q": ("E", "P"), "K": ("E", "M"), "QK": ("M", "P")}
    outputs = ["QK"]
    if with_max:
        einsums.append(EinsumInfo("LM", ("P", "M"), ("M",), ("QK",), {"max": M * P}))
        ranks["LM"] = ("P",)
        outputs = ["LM"]
    if with_exp:
        einsums.append(EinsumInfo("SN", ("M", "P"), (), ("QK",), {"exp": M * P}))
        ranks["SN"] = ("M", "P")
        outputs = ["SN"] + (["LM"] if with_max else [])
    return CascadeView.from_parts("qk-test", einsums, {"P": P, "M": M, "E": E}, ranks, ["Q", "K"], outputs)
