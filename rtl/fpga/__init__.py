"""FPGA synthesis and place-and-route of einloom's generated Verilog (pip-only yowasp tools).

``synthesize(verilog, top, target, part=None, pnr=True, cache_dir=None) -> SynthResult`` runs Yosys
for ECP5, Xilinx 7-series or iCE40 and reports post-synthesis LUTs, flip-flops, DSPs, block RAMs and
carry cells of the bare core; for ECP5 it also places and routes the core inside an I/O harness with
nextpnr and reports the post-route Fmax.  See :mod:`einloom.rtl.fpga.flow` for what is measured.
"""
from einloom.rtl.fpga.flow import SynthResult, default_cache_dir, synthesize
from einloom.rtl.fpga.harness import Port, generate_harness, parse_ports
from einloom.rtl.fpga.resources import Resources, parse_stat_json
from einloom.rtl.fpga.targets import CATEGORIES, TARGETS

__all__ = ["synthesize", "SynthResult", "default_cache_dir", "Resources", "parse_stat_json",
           "generate_harness", "parse_ports", "Port", "TARGETS", "CATEGORIES"]
