"""Small sweep files for the sweep tests (a few points, baseline mappings: fast on 2 cores)."""
from __future__ import annotations

from pathlib import Path

SMALL = """\
name: small
arch: fusemax-cloud
variants: [fusemax-1pass]
workloads:
  - {model: bert, seq_len: 1K}
  - {model: t5, seq_len: 2K}
mapping: auto
parameters:
  - name: array
    paths: [array_2d.rows, array_2d.cols, array_1d.width]
    values: [64, 128, 256]
  - name: buffer
    path: global_buffer.capacity_bytes
    values: [1MiB, 4MiB]
"""


def write_sweep(tmp_path: Path, text: str = SMALL, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
