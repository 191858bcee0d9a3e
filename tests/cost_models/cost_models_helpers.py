"""Shared test data for tests/cost_models (a uniquely named module: the test folders have no __init__.py)."""
from __future__ import annotations

import textwrap

import pytest

from einloom.cost_models.arch import arch_from_dict
from einloom.einsum.errors import ArchError
from einloom.einsum.yamlio import load_yaml

MAC, ADD, MAX, DIV, EXP = 17.16, 8.34, 0.028, 36.25, 94.65

BASE = textwrap.dedent("""\
    name: tiny
    clock_mhz: 100
    technology_nm: 45
    data: {format: fp16, bits: 16}
    array_2d:
      rows: 2
      cols: 3
      units: {mac: 1, add: 1, max: 1, exp: {as_mac: 6, add: 1}}
      register_file: {entries: 12, bits: 16}
    array_1d:
      width: 3
      units: {mac: 1, add: 1, div: 4}
      register_file: {entries: 4, bits: 16}
    global_buffer: {capacity_bytes: 16777216, row_bits: 4096, banks: 32}
    dram: {bandwidth_GBps: 1.0}
    """)


def from_text(text: str):
    data, linemap = load_yaml("arch.yaml", text=text, error=ArchError)
    return arch_from_dict(data, linemap)


def error_of(text: str) -> str:
    with pytest.raises(ArchError) as info:
        from_text(text)
    return str(info.value)
