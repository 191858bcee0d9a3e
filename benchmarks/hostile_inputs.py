"""How fast einloom refuses hostile input, and what the safe reader costs on ordinary files.

Prints, for each hostile document class, the time from the call to the one-line error (the limits
make each refusal bounded: no hang, no huge allocation), and the time to read every shipped example
file with the safe reader.  Figures vary with the machine; nothing is asserted.

    python benchmarks/hostile_inputs.py
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from einloom.base.errors import EinloomError
from einloom.base.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[1]
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
                 for i in range(9))
HOSTILE = {
    "billion laughs (9**9 values)": LAUGHS,
    "self-referencing anchor": "a: &a [1, *a]\n",
    "nesting 5000 deep": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "duplicate key after 10k keys": "".join(f"k{i}: {i}\n" for i in range(10_000)) + "k0: again\n",
    "unknown tag": "a: !!python/object/apply:os.system [ls]\n",
}


def timed(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def refuse(text: str) -> None:
    try:
        load_yaml("hostile.yaml", text=text)
    except EinloomError:
        return
    raise AssertionError("accepted")


def main() -> None:
    print("refusing hostile documents (median of 5):")
    for name, text in HOSTILE.items():
        print(f"  {name:32} {timed(lambda: refuse(text)) * 1e3:8.2f} ms")
    print(f"  {'/dev/zero':32} {timed(lambda: refuse_path('/dev/zero')) * 1e3:8.2f} ms")
    files = sorted(ROOT.glob("examples/**/*.yaml")) + sorted(ROOT.glob("einsum/library/*.yaml")) + \
        sorted(ROOT.glob("cost_models/presets/*.yaml"))
    total = timed(lambda: [load_yaml(f) for f in files])
    size = sum(f.stat().st_size for f in files)
    print(f"reading {len(files)} shipped YAML files ({size / 1024:.0f} KiB): {total * 1e3:.1f} ms "
          f"({size / 1024 / total:.0f} KiB/s)")


def refuse_path(path: str) -> None:
    try:
        load_yaml(path)
    except EinloomError:
        return
    raise AssertionError("accepted")


if __name__ == "__main__":
    main()
