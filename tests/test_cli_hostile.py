"""Every subcommand, driven with hostile paths and flags: one line, exit status 2, never a traceback.

Each subcommand's file argument gets each hostile path (missing, a folder, /dev/zero, an empty name,
a name too long for the file system, undecodable bytes, a billion-laughs YAML, a binary file); each
numeric flag gets NaN, infinity, negatives, garbage and huge values.  A few cases also run the real
``python -m einloom.cli`` in a child process under setrlimit (memory and CPU), end to end.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from einloom.cli import COMMANDS, build_parser
from hostile import assert_one_line_error, run_cli, run_cli_subprocess

ROOT = Path(__file__).resolve().parents[1]
RTL_ARCH = str(ROOT / "examples" / "archs" / "rtl-4x4-int8.yaml")
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
                 for i in range(9))

#: For each subcommand: the argv with {path} where its input file goes.
FILE_ARGS = {
    "check": ["check", "{path}"],
    "run": ["run", "{path}"],
    "map": ["map", "{path}", "--arch", "fusemax-cloud", "--workload", "bert"],
    "map-arch": ["map", "fusemax-1pass", "--arch", "{path}", "--workload", "bert"],
    "map-workload": ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "{path}"],
    "map-mapping": ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--mapping", "{path}"],
    "evaluate": ["evaluate", "{path}", "--no-progress"],
    "evaluate-report": ["evaluate", "--report-only", "{path}"],
    "rtl": ["rtl", "--arch", "{path}"],
    "rtl-spec": ["rtl", "{path}", "--arch", RTL_ARCH],
    "rtl-workload": ["rtl", "--arch", RTL_ARCH, "--workload", "{path}"],
    "rtl-mapping": ["rtl", "--arch", RTL_ARCH, "--mapping", "{path}"],
    "verify": ["verify", "--arch", "{path}"],
    "synth": ["synth", "--arch", "{path}", "--target", "ecp5"],
    "lanes": ["lanes", "{path}", "--arch", RTL_ARCH],
    "lanes-arch": ["lanes", "fusemax-1pass", "--arch", "{path}"],
    "run-inputs": ["run", "fusemax-1pass", "--inputs", "{path}"],
    "sim": ["sim", "{path}", "--arch", "fusemax-cloud", "--workload", "bert"],
    "sim-arch": ["sim", "fusemax-1pass", "--arch", "{path}", "--workload", "bert"],
    "sim-workload": ["sim", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "{path}"],
    "gpu-bench": ["gpu-bench", "--show", "{path}"],
    "sweep": ["sweep", "{path}", "--out", "/tmp/einloom-hostile-sweep"],
    "report-sweep": ["report", "sweep", "{path}"],
    "report": ["report", "crossval", "--workloads", "{path}", "--seqs", "1024", "--variants-at", "0",
               "--out", "/tmp/einloom-hostile-report"],
}

HOSTILE_PATHS = {
    "missing": lambda d: str(d / "missing.yaml"),
    "folder": lambda d: str(d),
    "dev-zero": lambda d: "/dev/zero",
    "too-long": lambda d: str(d / ("x" * 5000 + ".yaml")),
    "laughs": lambda d: _write(d / "laughs.yaml", LAUGHS),
    "binary": lambda d: _write(d / "binary.yaml", b"\x00\xff\xfe" * 100),
    "latin1": lambda d: _write(d / "latin1.yaml", "name: caf\xe9\n".encode("latin-1")),
    "empty-file": lambda d: _write(d / "empty.yaml", ""),
}


def _write(path: Path, content) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


@pytest.mark.parametrize("path_kind", sorted(HOSTILE_PATHS))
@pytest.mark.parametrize("command", sorted(FILE_ARGS))
def test_hostile_paths(command: str, path_kind: str, tmp_path: Path) -> None:
    path = HOSTILE_PATHS[path_kind](tmp_path)
    argv = [a.replace("{path}", path) for a in FILE_ARGS[command]]
    if command.startswith("rtl"):
        argv += ["-o", str(tmp_path / "out")]
    status, out, err = run_cli(argv)
    line = assert_one_line_error(status, err)
    assert f"einloom {argv[0]}: error: " in line


NUMERIC_FLAGS = [
    ["check", "fusemax-1pass", "--ranks", "{v}"],
    ["run", "fusemax-1pass", "--ranks", "P={v}"],
    ["run", "fusemax-1pass", "--seed", "{v}"],
    ["run", "fusemax-1pass", "--tolerance", "{v}"],
    ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--seq-len", "{v}"],
    ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--batch", "{v}"],
    ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--search", "--budget", "{v}"],
    ["verify", "--arch", RTL_ARCH, "--shape", "{v}"],
    ["rtl", "--arch", RTL_ARCH, "--workload", "bert", "--seq-len", "{v}"],
    ["sim", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--seq-len", "{v}"],
    ["sim", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--instances", "{v}"],
    ["sim", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--dram-latency", "{v}"],
    ["gpu-bench", "--max-seq-len", "{v}"],
    ["report", "crossval", "--out", "/tmp/einloom-hostile-report", "--seqs", "{v}"],
    ["gpu-bench", "--budget-s", "{v}"],
    ["synth", "--demo", "{v}", "--target", "ecp5"],
    ["lanes", "fusemax-1pass", "--arch", RTL_ARCH, "--ranks", "{v}"],
]
HOSTILE_VALUES = ["nan", "inf", "-inf", "-1", "abc", "1e999", "9" * 400, "", "0x10"]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda v: v[:8] or "empty")
@pytest.mark.parametrize("argv", NUMERIC_FLAGS, ids=lambda a: f"{a[0]}{a[-2]}")
def test_hostile_flag_values(argv: list[str], value: str) -> None:
    if value == "" and argv[0] in ("check", "lanes"):
        pytest.skip("an empty --ranks means the spec's own sizes")
    status, out, err = run_cli([a.replace("{v}", value) for a in argv])
    line = assert_one_line_error(status, err)
    flag = argv[-2]
    assert flag in line or "error:" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help_with_example(command: str) -> None:
    status, out, err = run_cli([command, "--help"])
    assert status == 0 and "example" in out


def test_version() -> None:
    status, out, err = run_cli(["--version"])
    assert status == 0 and out.startswith("einloom ")


def test_file_args_cover_every_subcommand() -> None:
    assert {argv[0] for argv in FILE_ARGS.values()} == set(COMMANDS)
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(COMMANDS)


@pytest.mark.parametrize("argv", [
    ["check", "{laughs}"],
    ["run", "fusemax-1pass", "--inputs", "/dev/zero"],
    ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--seq-len", "32M"],
    ["run", "fusemax-1pass", "--ranks", "P=65536,M=65536"],
])
def test_hostile_cases_end_to_end_under_rlimit(argv: list[str], tmp_path: Path) -> None:
    laughs = _write(tmp_path / "laughs.yaml", LAUGHS)
    proc = run_cli_subprocess([a.replace("{laughs}", laughs) for a in argv], seconds=60)
    assert_one_line_error(proc.returncode, proc.stderr)
