"""Malformed specs (tests/einsum/malformed/*.yaml) are reported as ONE clear line through the CLI.

Every corpus file starts with header comments that state what ``einloom check`` (or the command in
``# command:``) must print::

    # expect: line 22: unknown tensor 'QKK'      (or "no line:" for command-line/input problems)
    # hint: did you mean 'QK'                     (optional: a fragment of the hint)
    # einsum: SN[m, p] = exp(QKK[m, p] - GM[p])   (optional: the Einsum text the message quotes)
    # command: run --ranks M1=5                   (optional: subcommand and extra arguments)
    # npz: Q=2x4 K=2x7 V=2x8                      (optional: write these zero arrays as --inputs)

Each file is run through ``einloom.cli.main`` with stderr captured, and we assert exit status 2,
exactly one stderr line, no traceback, the file name, the line number, the quoted Einsum, the
expected message fragment and a ``(hint: ...)``.  One file is also run in a subprocess.
"""
from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from einloom.cli import main

CORPUS = Path(__file__).resolve().parent / "malformed"
FILES = sorted(CORPUS.glob("*.yaml"))


def _header(path: Path) -> dict[str, str]:
    header: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        header[key] = value
    return header


def _argv(path: Path, header: dict[str, str], tmp_path: Path) -> list[str]:
    argv = ["check", str(path)]
    if "command" in header:
        command, *extra = header["command"].split()
        argv = [command, str(path)] + extra
    if "npz" in header:
        arrays = {}
        for item in header["npz"].split():
            name, shape = item.split("=")
            arrays[name] = np.zeros(tuple(int(n) for n in shape.split("x")))
        np.savez(tmp_path / "inputs.npz", **arrays)
        argv = [a.replace("{npz}", str(tmp_path / "inputs.npz")) for a in argv]
    return argv


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_corpus_is_large_enough():
    assert len(FILES) >= 35
    for path in FILES:
        header = _header(path)
        assert "expect" in header, f"{path.name} has no '# expect:' header"
        assert re.match(r"(line \d+|no line): .+", header["expect"]), path.name


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_malformed_spec_is_one_clear_line(path: Path, tmp_path: Path):
    header = _header(path)
    where, _, fragment = header["expect"].partition(": ")
    code, out, err = _run_cli(_argv(path, header, tmp_path))
    assert code == 2, f"exit {code}; stdout={out!r} stderr={err!r}"
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    message = lines[0]
    assert message.startswith("einloom "), message
    assert path.name in message, message
    if where == "no line":
        # a command-line value or an input array is wrong: the file is named without a line
        assert not re.search(re.escape(path.name) + r":\d+", message), message
    else:
        line = int(where.split()[1])
        assert f"{path.name}:{line}:" in message, f"expected line {line}: {message}"
    assert fragment in message, f"expected {fragment!r} in {message}"
    if "einsum" in header:
        assert f"'{header['einsum']}'" in message, f"expected the Einsum text in {message}"
    hint = re.search(r"\(hint: (.+)\)$", message)
    assert hint and hint.group(1).strip(), f"no hint in {message}"
    if "hint" in header:
        assert header["hint"] in hint.group(1), f"expected hint fragment {header['hint']!r} in {message}"


def test_corpus_covers_the_required_cases():
    """The kinds of mistakes the corpus must keep covering (by message fragment; --inputs shape errors are
    in tests/test_malformed_corpus.py, which names the archive and the array)."""
    fragments = " ".join(_header(p)["expect"] for p in FILES)
    for needed in ["YAML syntax error", "unknown key", "missing required key", "an Einsum needs '='",
                   "expected ')'", "missing operand", "has no operand", "unexpected character",
                   "unknown tensor", "unknown operator", "unknown rank variable", "but is indexed with",
                   "is indexed with m", "which does not exist", "which its operand does not use",
                   "also an output rank", "never produced", "already produced", "is an input",
                   "dependency cycle", "has no initial value", "not an iterative tensor", "must be 0",
                   "rank variable of", "unknown name", "YAML 1.1", "neither an input nor an output",
                   "declared with ranks", "inconsistent rank sizes: M1",
                   "has no size", "unknown reference function"]:
        assert needed in fragments, f"no corpus file expects {needed!r}"


def test_corpus_files_differ_from_a_valid_spec_only_by_the_mistake():
    """Sanity: the untouched base of the corpus is valid, so each error comes from its planted mistake."""
    from einloom.einsum import parse_cascade_text
    text = (CORPUS / "unknown-tensor.yaml").read_text().replace("QKK[m, p]", "QK[m, p]")
    assert parse_cascade_text(text).name == "bad-spec"
    text = (CORPUS / "init-bad-index.yaml").read_text().replace("RD[1, p]", "RD[0, p]")
    assert parse_cascade_text(text).name == "bad-iter"


def test_malformed_spec_in_a_subprocess():
    path = CORPUS / "unknown-tensor.yaml"
    proc = subprocess.run([sys.executable, "-m", "einloom.cli", "check", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "unknown-tensor.yaml:22:" in lines[0] and "unknown tensor 'QKK'" in lines[0]
    assert "(hint: did you mean 'QK'?)" in lines[0]
    assert proc.stdout == ""


def test_missing_file_and_unknown_variant():
    code, _, err = _run_cli(["check", str(CORPUS / "does-not-exist.yaml")])
    assert code == 2 and len(err.splitlines()) == 1 and "file not found" in err and "hint" in err
    code, _, err = _run_cli(["check", "fusemax-1pas"])
    assert code == 2 and "did you mean 'fusemax-1pass'" in err
