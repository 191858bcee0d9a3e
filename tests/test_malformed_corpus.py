"""The malformed-input corpus: every kind of user input, broken the ways a hostile user breaks it.

Each case writes its files into a fresh folder, runs ``einloom ARGV`` in-process under a time and
memory cap (tests/hostile.py) and asserts: exit status 2, exactly one line on stderr, no traceback,
the expected message fragment, the location (file and line, or the flag), and a ``(hint: ...)`` where
the case says so.  Input kinds: specs, architectures, workloads, HuggingFace configs, mappings,
experiments, ``--inputs`` archives, command-line flags, RTL architecture files.  ``CASES`` is
printed per kind by ``python tests/test_malformed_corpus.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from hostile import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
SPEC = (ROOT / "einsum" / "library" / "fusemax-1pass.yaml").read_text()
ARCH = (ROOT / "examples" / "archs" / "fusemax-edge.yaml").read_text()
WORKLOAD = (ROOT / "examples" / "workloads" / "bert-4k.yaml").read_text()
HF = (ROOT / "examples" / "workloads" / "llama3-8b-config.json").read_text()
MAPPING = (ROOT / "examples" / "mappings" / "fusemax-bert.yaml").read_text()
EXPERIMENT = (ROOT / "examples" / "experiments" / "smoke.yaml").read_text()
RTL = (ROOT / "examples" / "archs" / "rtl-4x4-int8.yaml").read_text()


@dataclass
class Case:
    """One malformed input: files to write, the command, what its one-line error must say."""

    kind: str
    name: str
    argv: list[str]
    expect: str                       # regex searched in the error line
    files: dict[str, str | bytes] = field(default_factory=dict)
    line: int | None = None           # the file line the message must name (":LINE:")
    where: str | None = None          # a file name or flag the message must name
    hint: bool = True                 # the message must carry "(hint: ...)"
    status: int = 2
    npz: dict[str, np.ndarray] | None = None


# Commands that read one file of each kind ({f} = the written file, {d} = the case's folder).
COMMANDS = {
    "spec": ["check", "{f}"],
    "arch": ["map", "fusemax-1pass", "--arch", "{f}", "--workload", "bert"],
    "workload": ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "{f}"],
    "hf-config": ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "{f}", "--seq-len", "1K"],
    "mapping": ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert", "--mapping", "{f}"],
    "experiment": ["evaluate", "{f}", "-o", "{d}/out", "--no-progress"],
    "rtl-arch": ["rtl", "--arch", "{f}", "-o", "{d}/build"],
}
BASE = {"spec": SPEC, "arch": ARCH, "workload": WORKLOAD, "hf-config": HF, "mapping": MAPPING,
        "experiment": EXPERIMENT, "rtl-arch": RTL}
SUFFIX = {"hf-config": ".json"}


def file_case(kind: str, name: str, content: str | bytes, expect: str, *, line: int | None = None,
              hint: bool = True, fname: str | None = None) -> Case:
    fname = fname or f"input{SUFFIX.get(kind, '.yaml')}"
    return Case(kind, name, list(COMMANDS[kind]), expect, {fname: content}, line=line, where=fname, hint=hint)


def mutate(kind: str, name: str, old: str, new: str, expect: str, *, line: int | None = None,
           hint: bool = True, count: int = 1) -> Case:
    text = BASE[kind]
    assert old in text, (kind, old)
    return file_case(kind, name, text.replace(old, new, count), expect, line=line, hint=hint)


def line_of(text: str, fragment: str) -> int:
    return text[:text.index(fragment)].count("\n") + 1


# ------------------------------------------------------------------------ hostile YAML, every kind
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
                 for i in range(9))


def yaml_cases(kind: str) -> list[Case]:
    text = BASE[kind]
    first_key = text.splitlines()[[i for i, l in enumerate(text.splitlines()) if l and l[0].isalpha()][0]]
    key = first_key.split(":")[0]
    n = text.count("\n")
    cases = [
        file_case(kind, "duplicate-key", text + f"{key}: again\n", rf"duplicate key '{key}' \(first at line",
                  line=n + 1),
        file_case(kind, "billion-laughs", LAUGHS + text, "expands to more than"),
        file_case(kind, "self-alias", "a: &a [1, *a]\n" + text, "self-referencing anchor", line=1),
        file_case(kind, "python-tag", text + "x: !!python/object/apply:os.system [ls]\n", "unsupported YAML tag",
                  line=n + 1),
        file_case(kind, "include-tag", text + "x: !include other.yaml\n", "unsupported YAML tag '!include'",
                  line=n + 1),
        file_case(kind, "binary-tag", text + "x: !!binary aGVsbG8=\n", "unsupported YAML tag", line=n + 1),
        file_case(kind, "not-utf8", text.encode() + b"x: \xff\xfe\n", "not UTF-8", line=n + 1),
        file_case(kind, "control-char", text + "x: a\x07b\n", "not allowed in YAML", line=n + 1),
        file_case(kind, "deep-nesting", text + "x: " + "[" * 200 + "]" * 200 + "\n", "nesting deeper than"),
        file_case(kind, "oversize", text + "#" * (3 * 1024 * 1024) + "\n", "over the .*-byte limit"),
        file_case(kind, "list-key", text + "[a, b]: 1\n", "a key is a list", line=n + 1),
        file_case(kind, "syntax", text + "x: [1, 2\n", "YAML syntax error"),
        file_case(kind, "huge-int", text + "x: " + "9" * 5000 + "\n", "cannot read the value", line=n + 1),
    ]
    command = COMMANDS[kind]
    for name, path, expect in (("dev-zero", "/dev/zero", "not a regular file"),
                               ("folder", "{d}", "is a folder, not a file"),
                               ("missing", "{d}/nothing-here.yaml", "file not found")):
        cases.append(Case(kind, name, [a.replace("{f}", path) for a in command], expect,
                          where=path.replace("{d}/", "") if path != "{d}" else None))
    return cases


CASES: list[Case] = [c for kind in BASE if kind != "hf-config" for c in yaml_cases(kind)]

# ------------------------------------------------------------------------------------------ specs
S = "spec"
CASES += [
    mutate(S, "param-nan", "  M0: 16", "  M0: .nan", "must be a finite number", line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-inf", "  M0: 16", "  M0: .inf", "must be a finite number", line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-zero-tile", "  M0: 16", "  M0: 0", "tile M0 of rank M must be a positive integer",
           line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-negative-tile", "  M0: 16", "  M0: -4", "tile M0 of rank M must be a positive integer",
           line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-fraction-tile", "  M0: 16", "  M0: 2.5", "must be a positive integer, got 2.5",
           line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-div-zero", "  M0: 16", "  M0: 4 / (E - E)", "division by zero", line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-sqrt-negative", "  M0: 16", "  M0: sqrt(0 - E)", "is not a number",
           line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-overflow", "  M0: 16", "  M0: exp(1000)", "is not finite", line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-bool", "  M0: 16", "  M0: yes", "must be a number or an expression",
           line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-deep", "  M0: 16", "  M0: " + "(" * 60 + "16" + ")" * 60, "nested deeper than",
           line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-long", "  M0: 16", "  M0: " + "+".join(["1"] * 3000), "over the limit",
           line=line_of(SPEC, "  M0: 16")),
    mutate(S, "param-unary-chain", "  M0: 16", "  M0: '" + "- " * 60 + "16'", "unary operators in a row",
           line=line_of(SPEC, "  M0: 16")),
    mutate(S, "rank-nan", "  P: 64", "  P: .nan", "must be a finite number", line=line_of(SPEC, "  P: 64")),
    mutate(S, "rank-zero", "  P: 64", "  P: 0", "must be a whole number", line=line_of(SPEC, "  P: 64")),
    mutate(S, "rank-fraction", "  P: 64", "  P: 6.5", "must be a whole number", line=line_of(SPEC, "  P: 64")),
    mutate(S, "rank-huge", "  P: 64", "  P: 100000000000", "must be a whole number in 1..16777216",
           line=line_of(SPEC, "  P: 64")),
    mutate(S, "einsum-deep", "  - LM[m1, p]       = max[m0] QK[m1, m0, p]",
           "  - LM[m1, p]       = max[m0] " + "(" * 60 + "QK[m1, m0, p]" + ")" * 60, "nested deeper than"),
    mutate(S, "einsum-long", "  - LM[m1, p]       = max[m0] QK[m1, m0, p]",
           "  - LM[m1, p]       = max[m0] " + " + ".join(["QK[m1, m0, p]"] * 400), "over the limit"),
    mutate(S, "second-einsums-block", "reference:", "einsums:\n  - AV[f, p] = Q[f, p]\nreference:",
           "duplicate key 'einsums'", line=line_of(SPEC, "reference:")),
]
CASES[-3].line = CASES[-2].line = line_of(SPEC, "  - LM[m1, p]")
CASES += [Case(S, "ranks-flag-huge", ["check", "fusemax-1pass", "--ranks", "P=99999999999"], "over the limit",
               where="--ranks"),
          Case(S, "ranks-flag-zero", ["run", "fusemax-1pass", "--ranks", "P=0"], "must be a positive size",
               where="--ranks", hint=False),
          Case(S, "ranks-flag-garbage", ["run", "fusemax-1pass", "--ranks", "P=1e3"], "cannot read",
               where="--ranks"),
          Case(S, "ranks-flag-twice", ["run", "fusemax-1pass", "--ranks", "P=8,P=8"], "given twice",
               where="--ranks", hint=False),
          Case(S, "run-too-large", ["run", "fusemax-1pass", "--ranks", "P=65536,M=65536"],
               "over the interpreter's limit", where="--ranks")]

# ---------------------------------------------------------------------------------- architectures
A = "arch"
for field_line, bad, expect in [
    ("clock_mhz: 940", "clock_mhz: .nan", "expected a finite number, got NaN"),
    ("clock_mhz: 940", "clock_mhz: .inf", "expected a finite number, got infinity"),
    ("clock_mhz: 940", "clock_mhz: -940", "must be positive"),
    ("clock_mhz: 940", "clock_mhz: yes", "expected a positive number, got the boolean True"),
    ("clock_mhz: 940", "clock_mhz: 1e400", "expected a finite number, got infinity"),
    ("clock_mhz: 940", "clock_mhz: 1.0e20", "over the limit"),
    ("  rows: 32", "  rows: .nan", "expected a positive integer, got NaN"),
    ("  rows: 32", "  rows: 2.5", "expected a positive integer, got 2.5"),
    ("  rows: 32", "  rows: 0", "expected a positive integer, got 0"),
    ("  rows: 32", "  rows: 100000000", "over the limit"),
    ("  rows: 32", "  rows: true", "got the boolean True"),
    ("  cols: 32", "  cols: '32'", "expected a positive integer, got '32'"),
    ("  width: 32", "  width: -1", "expected a positive integer, got -1"),
    ("dram: {bandwidth_GBps: 53.6870912}", "dram: {bandwidth_GBps: .nan}", "expected a finite number"),
    ("dram: {bandwidth_GBps: 53.6870912}", "dram: {bandwidth_GBps: 0}", "must be positive"),
    ("dram: {bandwidth_GBps: 53.6870912}", "dram: {bandwidth_GBps: fast}", "expected a positive number"),
    ("capacity_bytes: 524288", "capacity_bytes: 512KB", "expected a positive integer, got '512KB'"),
    ("capacity_bytes: 524288", "capacity_bytes: 1.0e300", "over the limit"),
    ("data: {format: fp16, bits: 16}", "data: {format: fp17, bits: 16}", "unknown data format 'fp17'"),
    ("data: {format: fp16, bits: 16}", "data: {format: fp16, bits: .nan}", "expected a positive integer"),
    ("    mac: 1\n", "    mac: .inf\n", "expected a positive integer, got infinity"),
    ("    exp: {as_mac: 6, add: 1}", "    exp: {as_mac: .nan, add: 1}", "expected a positive integer, got NaN"),
    ("    exp: {as_mac: 6, add: 1}", "    exp: {cycles: 2, energy_pj: .nan}", "expected a finite number"),
    ("    exp: {as_mac: 6, add: 1}", "    exp: {cycles: 2, area_um2: -3}", "must be positive"),
    ("technology_nm: 45", "technology_nm: 4.5", "expected a positive integer, got 4.5"),
    ("name: fusemax-edge", "name: [a, b]", "expected a non-empty string, got a list"),
    ("description: FuseMax PEs on a 32x32 array, 512 KB buffer, 50*2**30 B/s", "description: {a: 1}",
     "expected text, got a mapping"),
    ('source: "fusemax-cloud PE design', "source: [1] #", "expected text, got a list"),
]:
    case = mutate(A, bad.strip()[:40], field_line, bad, expect, line=line_of(ARCH, field_line.strip()))
    CASES.append(case)

# -------------------------------------------------------------------------------------- workloads
W = "workload"
for old, new, expect in [
    ("batch: 64", "batch: .nan", "expected an integer, got NaN"),
    ("batch: 64", "batch: -64", "expected a positive integer, got -64"),
    ("batch: 64", "batch: 2.5", "expected an integer, got 2.5"),
    ("batch: 64", "batch: 99999999999", "over the limit"),
    ("batch: 64", "batch: yes", "expected an integer, got the boolean True"),
    ("heads: 12", "heads: .inf", "expected an integer, got infinity"),
    ("heads: 12", "heads: 0", "expected a positive integer, got 0"),
    ("head_dim: 64", "head_dim: '64'", "expected an integer, got '64'"),
    ("model_dim: 768", "model_dim: 768.5", "expected an integer, got 768.5"),
    ("ffn_dim: 3072", "ffn_dim: ~", "missing required field 'ffn_dim'"),
    ("seq_len: 4096", "seq_len: 0", "expected a size, got 0"),
    ("seq_len: 4096", "seq_len: 16X", "expected a size, got '16X'"),
    ("seq_len: 4096", "seq_len: 999999999G", "over the limit"),
    ("seq_len: 4096", "seq_len: 1G", "over the limit of 1.67772e\\+07"),
    ("seq_len: 4096", "seq_len: .nan", "expected a size, got NaN"),
    ("causal: false", "causal: maybe", "expected true or false, got 'maybe'"),
    ("phase: prefill", "phase: decod", "unknown phase 'decod'"),
    ("heads: 12", "heads: 12\nkv_heads: 5", "must be a multiple of kv_heads"),
    ("heads: 12", "heads: 12\nkv_lora_rank: .nan", "expected an integer, got NaN"),
    ("heads: 12", "heads: 12\nhead_dim_e: 32", "give head_dim or head_dim_e/head_dim_f, not both"),
    ("batch: 64", "batchs: 64", "unknown key 'batchs'"),
]:
    case = mutate(W, new.replace("\n", " ")[:40], old, new, expect, line=line_of(WORKLOAD, old))
    if "\n" in new:
        case.line = line_of(WORKLOAD, old) + 1
    if "not both" in expect:
        case.line, case.hint = line_of(WORKLOAD, "head_dim: 64") + 1, False
    if "missing required" in expect:
        case.line = None
    CASES.append(case)
CASES += [Case(W, "unknown-preset", COMMANDS[W][:-1] + ["brt"], "unknown workload 'brt'", where=None),
          Case(W, "seq-len-flag-over", COMMANDS[W][:-1] + ["bert", "--seq-len", "32M"], "over the limit",
               where="--seq-len")]

# ------------------------------------------------------------------------------ HuggingFace configs
H = "hf-config"
for old, new, expect in [
    ('"hidden_size": 4096', '"hidden_size": NaN', "NaN is not a JSON number"),
    ('"hidden_size": 4096', '"hidden_size": Infinity', "Infinity is not a JSON number"),
    ('"hidden_size": 4096', '"hidden_size": -4096', "expected a positive integer, got -4096"),
    ('"hidden_size": 4096', '"hidden_size": 4096.5', "expected a positive integer, got 4096.5"),
    ('"hidden_size": 4096', '"hidden_size": "4096"', "expected a positive integer, got '4096'"),
    ('"hidden_size": 4096', '"hidden_size": true', "got the boolean True"),
    ('"hidden_size": 4096', '"hidden_size": 1e400', "expected a positive integer, got infinity"),
    ('"hidden_size": 4096', '"hidden_size": 99999999999', "over the limit"),
    ('"num_key_value_heads": 8', '"num_key_value_heads": 5', "is not a multiple of num_key_value_heads"),
    ('"num_attention_heads": 32,', '', "missing 'num_attention_heads'"),
    ('"intermediate_size": 14336', '"intermediate_size": 14336, "intermediate_size": 1', "duplicate key"),
    ('"vocab_size": 128256\n}', '"vocab_size": 128256\n', "invalid JSON"),
    ('"hidden_size": 4096', '"hidden_size": ' + "9" * 5000, "cannot read a value"),
    ('"hidden_size": 4096', '"hidden_size": ' + "[" * 5000 + "]" * 5000, "nesting too deep|expected a positive"),
    ('"max_position_embeddings": 8192', '"max_position_embeddings": 8192, "kv_lora_rank": 0',
     "expected a positive integer, got 0"),
    ('"max_position_embeddings": 8192', '"max_position_embeddings": 8192, "qk_rope_head_dim": 2.5',
     "expected a positive integer, got 2.5"),
]:
    CASES.append(mutate(H, new.replace(chr(34), "")[:40], old, new, expect))
for case in CASES[-16:]:
    case.hint = not any(text in case.expect for text in ("not a multiple", "cannot read a value", "nesting"))
CASES += [file_case(H, "top-level-list", "[1, 2]", "expected a JSON object of model settings"),
          file_case(H, "empty", "", "invalid JSON"),
          file_case(H, "no-seq-len", '{"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 256}',
                    "gives no sequence length")]
CASES[-1].argv = [a for a in CASES[-1].argv if a not in ("--seq-len", "1K")]

# -------------------------------------------------------------------------------------- mappings
M = "mapping"
for old, new, expect in [
    ("M0: {spatial: 256}", "M0: {spatial: .nan}", "expected a positive whole factor, got NaN"),
    ("M0: {spatial: 256}", "M0: {spatial: .inf}", "expected a positive whole factor, got infinity"),
    ("M0: {spatial: 256}", "M0: {spatial: true}", "got the boolean True"),
    ("M0: {spatial: 256}", "M0: {spatial: 2.5}", "got 2.5"),
    ("M0: {spatial: 256}", "M0: {spatial: 0}", "expected a positive whole factor, got 0"),
    ("M0: {spatial: 256}", "M0: {spatial: '256'}", "got '256'"),
    ("M0: {spatial: 256}", "M0: {spatial: 1000000000000}", "over the limit"),
    ("M0: {spatial: 256}", "M0: {REG: 256}", "unknown level 'REG'"),
    ("M0: {spatial: 256}", "M0: 256", "expected a mapping of level"),
    ("  2d: [QK, LM, SLN, SLD, SLNV]", "  3d: [QK, LM, SLN, SLD, SLNV]", "unknown array '3d'"),
    ("    rows: [M0]", "    depth: [M0]", "unknown dimension of the 2d array: 'depth'"),
    ("    rows: [M0]", "    rows: [M0, 7]", "expected a name, got 7"),
    ("pipeline: interleave", "pipeline: overlap", "unknown pipeline 'overlap'"),
    ("params: {M0: 256}", "params: {M0: .nan}", "expected a positive integer, got NaN"),
    ("params: {M0: 256}", "params: {M0: 2.5}", "got 2.5"),
    ("loop_order:", "loop_orders:", "unknown field 'loop_orders'"),
    ("  DRAM: [P, M1]", "  REG: [P, M1]", "unknown temporal level 'REG'"),
    ("  GLB: [P]", "  GLB: [P, P]", "'P' is listed twice"),
    ("groups:", "spatial_overrides: [1]\ngroups:", "expected a mapping of Einsum"),
    ("groups:\n- {einsums: all, pipeline: interleave, interleave_rank: M1}", "groups: 7", "groups must be a list"),
    ("  2d: [QK, LM, SLN, SLD, SLNV]", "  2d: [QK, LM, SLN, SLD, SLNV, RM]", "Einsum 'RM' is bound twice"),
]:
    case = mutate(M, new.replace("\n", " ")[:40], old, new, expect,
                  line=line_of(MAPPING, old.splitlines()[0]))
    if "bound twice" in expect or "groups must" in expect or "spatial_overrides" in new or "listed twice" in expect:
        case.line = None
    if "groups must be a list" in expect:
        case.line = line_of(MAPPING, "groups:")
    CASES.append(case)

# ------------------------------------------------------------------------------------ experiments
X = "experiment"
for old, new, expect in [
    ("seq_lens: [1K, 4K]", "seq_lens: [0, 4K]", "expected a sequence length, got 0"),
    ("seq_lens: [1K, 4K]", "seq_lens: [16X]", "expected a sequence length, got '16X'"),
    ("seq_lens: [1K, 4K]", "seq_lens: [.nan]", "expected a sequence length, got NaN"),
    ("seq_lens: [1K, 4K]", "seq_lens: [999999G]", "over the limit"),
    ("seq_lens: [1K, 4K]", "seq_lens: [1.0e30]", "expected a sequence length|over the limit"),
    ("seq_lens: [1K, 4K]", "seq_lens: []", "at least one sequence length"),
    ("scope: both", "scope: everything", "unknown scope 'everything'"),
    ("baseline: FLAT", "baseline: FLT", "no configuration named 'FLT'"),
    ("mapping: fusemax}", "search: {objective: latency, budget: .nan}}", "expected a finite number"),
    ("mapping: fusemax}", "search: {objective: latency, budget: -1}}", "must be positive"),
    ("mapping: fusemax}", "search: {objective: latency, seed: abc}}", "expected an integer seed"),
    ("mapping: fusemax}", "search: {objective: speed}}", "unknown objective 'speed'"),
    ("mapping: fusemax}", "mapping: fusemx}", "unknown baseline mapping 'fusemx'"),
    ("sizes: [64, 128]", "sizes: [64, 0]", "expected a positive integer array size, got 0"),
    ("sizes: [64, 128]", "sizes: [64, 2.5]", "got 2.5"),
    ("sizes: [64, 128]", "sizes: [64, 1000000000]", "over the limit"),
    ("models: [bert]", "models: [brt]", "unknown workload 'brt'"),
    ("arch: flat-cloud, mapping: flat}", "arch: flat-clod, mapping: flat}", "unknown architecture preset"),
    ("cascade: softmax-3pass", "cascade: softmax-3pas", "no spec file and no library variant"),
]:
    CASES.append(mutate(X, new[:40], old, new, expect,
                        line=line_of(EXPERIMENT, old)))

# ----------------------------------------------------------------------------------- RTL archs
R = "rtl-arch"
for old, new, expect in [
    ("  rows: 4 ", "  rows: 0 ", "expected a positive integer, got 0"),
    ("  rows: 4 ", "  rows: 65 ", "over the limit of 64"),
    ("  rows: 4 ", "  rows: .nan ", "expected a positive integer, got NaN"),
    ("  rows: 4 ", "  rows: 2.5 ", "expected a positive integer, got 2.5"),
    ("clock_mhz: 100", "clock_mhz: .nan", "expected a finite number"),
    ("clock_mhz: 100", "clock_mhz: .inf", "expected a finite number"),
    ("clock_mhz: 100", "clock_mhz: -5", "must be positive"),
    ("  head_dim: 16", "  head_dim: 0", "expected a positive integer, got 0"),
    ("  head_dim: 16", "  head_dim: 2000", "over the limit of 1024"),
    ("  scale: true", "  scale: 3", "expected true or false, got 3"),
    ("  max_keys: 256", "  max_keys: .inf", "expected an integer, got infinity"),
    ("  max_keys: 256", "  max_key: 256", "unknown key 'max_key'"),
    ("  width: 4 ", "  width: 3 ", "must equal array_2d.cols"),
    ("    exp: {cycles: 1, latency: 4}", "    exp: {cycles: 1, latency: 5}", "the generated core's has latency 4"),
    ("  capacity_bytes: 9216", "  capacity_bytes: 9000", "write capacity_bytes: 9216"),
    ("data: {format: int8, bits: 8}", "data: {format: int16, bits: 16}", "takes 8-bit inputs"),
    ("  number_format: {kind: fixed, input_bits: 8, frac_bits: 4, acc_bits: 32}", "  number_format: 8",
     "must be a mapping"),
]:
    case = mutate(R, new.strip()[:40], old, new, expect,
                  line=line_of(RTL, old))
    if "unknown key" in expect:
        case.line = None
    CASES.append(case)
CASES.append(file_case(R, "no-rtl-section", RTL.split("\nrtl:")[0], "missing required field 'rtl'"))
CASES.append(Case(R, "verify-shape-over", ["verify", "--arch", str(ROOT / "examples/archs/rtl-4x4-int8.yaml"),
                                             "--shape", "128x32c"], "exceeds the buffers", where="--shape"))
CASES.append(Case(R, "verify-shape-garbage", ["verify", "--arch", str(ROOT / "examples/archs/rtl-4x4-int8.yaml"),
                                                "--shape", "9" * 40 + "x4"], "bad shape", where="--shape"))

# --------------------------------------------------------------------------------- --inputs archives
I = "inputs"
RUN = ["run", "fusemax-1pass", "--ranks", "P=8,M=8,E=4,F=4", "--inputs", "{d}/in.npz"]
GOOD = {"Q": np.ones((4, 8)), "K": np.ones((4, 8)), "V": np.ones((4, 8))}
for name, arrays, expect, where in [
    ("complex", {**GOOD, "Q": GOOD["Q"] + 1j}, "array 'Q' is complex", "--inputs[Q]"),
    ("integer", {**GOOD, "K": np.ones((4, 8), dtype=np.int64)}, "array 'K' has dtype int64", "--inputs[K]"),
    ("boolean", {**GOOD, "V": np.ones((4, 8), dtype=bool)}, "array 'V' has dtype bool", "--inputs[V]"),
    ("strings", {**GOOD, "Q": np.array([["a"] * 8] * 4)}, "array 'Q' has dtype <U1", "--inputs[Q]"),
    ("nan", {**GOOD, "Q": np.full((4, 8), np.nan)}, "32 NaN or infinite", "--inputs[Q]"),
    ("inf", {**GOOD, "K": np.full((4, 8), np.inf)}, "32 NaN or infinite", "--inputs[K]"),
    ("extra", {**GOOD, "Z": np.ones(3)}, "array 'Z' is not an input", "--inputs[Z]"),
    ("missing", {"Q": GOOD["Q"], "K": GOOD["K"]}, "no array for input 'V'", "--inputs"),
    ("wrong-ndim", {**GOOD, "Q": np.ones(8)}, "input Q has 1 dimensions but its ranks are \\[E, P\\]", "--inputs[Q]"),
    ("wrong-shape", {**GOOD, "Q": np.ones((5, 8))}, "input Q has E = 5 but --ranks has E = 4", "--inputs[Q]"),
    ("disagreeing-arrays", {**GOOD, "V": np.ones((4, 9))}, "input V has M = 9 but --ranks has M = 8",
     "--inputs[V]"),
    ("object", {**GOOD, "Q": np.array([None, 1], dtype=object)}, "cannot read array 'Q'", "--inputs[Q]"),
]:
    case = Case(I, name, list(RUN), expect, npz=arrays, where=where)
    CASES.append(case)
for name, content, expect in [("empty", b"", "is empty"), ("truncated", b"PK\x03\x04\x14\x00" + b"\x00" * 40,
                                                           "cannot read .npz"),
                              ("text", b"hello", "cannot read .npz")]:
    CASES.append(Case(I, name, list(RUN), expect, files={"in.npz": content}, where="--inputs"))
def _bomb_npz() -> bytes:
    """An .npz whose Q header declares 10**12 float64 values (8 TB) with no data behind it."""
    import io
    import zipfile
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Q.npy", header.getvalue() + b"\0" * 64)
    return archive.getvalue()


CASES.append(Case(I, "declared-8TB", list(RUN), "declares 1,000,000,000,000 values", files={"in.npz": _bomb_npz()},
                  where="--inputs[Q]"))
CASES.append(Case(I, "npy", RUN[:-1] + ["{d}/in.npy"], "is a .npy file", files={"in.npy": b"\x93NUMPY"},
                  where="--inputs"))
CASES.append(Case(I, "dev-zero", RUN[:-1] + ["/dev/zero"], "not a regular file", where="--inputs"))
CASES.append(Case(I, "folder", RUN[:-1] + ["{d}"], "not a regular file", where="--inputs"))
CASES.append(Case(I, "absent", RUN[:-1] + ["{d}/none.npz"], "file not found", where="--inputs"))

# ----------------------------------------------------------------------------------- CLI flags
F = "flags"
MAP = ["map", "fusemax-1pass", "--arch", "fusemax-cloud", "--workload", "bert"]
for argv, expect, where in [
    (MAP + ["--seq-len", "0"], "expected a sequence length, got '0'", "--seq-len"),
    (MAP + ["--seq-len", "-5"], "expected a sequence length", "--seq-len"),
    (MAP + ["--seq-len", "nan"], "expected a sequence length", "--seq-len"),
    (MAP + ["--seq-len", "1e9"], "expected a sequence length", "--seq-len"),
    (MAP + ["--seq-len", "16X"], "expected a sequence length", "--seq-len"),
    (MAP + ["--seq-len", "99999999999G"], "expected a sequence length|over the limit", "--seq-len"),
    (MAP + ["--batch", "0"], "expected a batch size", "--batch"),
    (MAP + ["--batch", "2M"], "over the limit", "--batch"),
    (MAP + ["--budget", "5"], "applies only to --search", "--budget"),
    (MAP + ["--objective", "edp"], "applies only to --search", "--objective"),
    (MAP + ["--search", "--budget", "nan"], "a finite number > 0", "--budget"),
    (MAP + ["--search", "--budget", "inf"], "a finite number > 0", "--budget"),
    (MAP + ["--search", "--budget", "-1"], "a finite number > 0", "--budget"),
    (MAP + ["--search", "--budget", "0"], "a finite number > 0", "--budget"),
    (MAP + ["--search", "--mapping", "flat"], "exclusive", "--search"),
    (MAP + ["--phase", "train"], "invalid choice", "--phase"),
    (MAP + ["--save-mapping", "/proc/einloom/m.yaml"], "cannot write", "--save-mapping"),
    (MAP + ["--save-mapping", ""], "the path is empty", "--save-mapping"),
    (MAP + ["--mapping", "flatt"], "file not found", None),
    (["run", "fusemax-1pass", "--tolerance", "nan"], "a finite number >= 0", "--tolerance"),
    (["run", "fusemax-1pass", "--tolerance", "-1"], "a finite number >= 0", "--tolerance"),
    (["run", "fusemax-1pass", "--seed", "-1"], "a seed is in", "--seed"),
    (["run", "fusemax-1pass", "--seed", str(2 ** 40)], "a seed is in", "--seed"),
    (["run", "fusemax-1pass", "--seed", "x"], "expected an integer seed", "--seed"),
    (["run", "fusemax-1pass", "--ranks", "P=8,M=8,E=4,F=4", "--out", "/proc/einloom/x.npz"], "cannot write", "--out"),
    (["run", "fusemax-1pass", "--ranks", "P=8,M=8,E=4,F=4", "--out", "{d}/x.txt"], "must end in .npz", "--out"),
    (["run", "fusemax-1pass", "--ranks", "P=8,M=8,E=4,F=4", "--out", "{d}/file/x.npz"], "in the way", "--out"),
    (["check", "fusemax-1pass", "--dot", "/proc/einloom/x.dot"], "cannot write", "--dot"),
    (["check", "fusemax-1pass", "--dot", "{d}/file/x.dot"], "in the way", "--dot"),
    (["check", "fusemax-1pass", "--dot", ""], "the path is empty", "--dot"),
    (["run", "fusemax-1pass", "--ranks", "P=8,M=8,E=4,F=4", "--out", ""], "the path is empty", "--out"),
    (["check", "no-such-variant"], "no spec file and no library variant", None),
    (["evaluate", str(ROOT / "examples/experiments/smoke.yaml"), "-o", "{d}/file"], "it is a file", "--output"),
    (["evaluate", "--report-only", "{d}/file"], "invalid JSON", None),
    (["evaluate", "--report-only", "/dev/zero"], "not a regular file", None),
    (["rtl", "--arch", str(ROOT / "examples/archs/rtl-4x4-int8.yaml"), "-o", "{d}/file"], "it is a file",
     "--output"),
    (["rtl", "--arch", str(ROOT / "examples/archs/fusemax-edge.yaml"), "-o", "{d}/b"], "missing required field 'rtl'",
     None),
    (["synth", "--verilog", "/dev/zero", "--top", "x", "--target", "ecp5"], "not a regular file", "--verilog"),
    (["synth", "--verilog", "{d}/none.v", "--top", "x", "--target", "ecp5"], "cannot read", "--verilog"),
    (["synth", "--verilog", "{d}/file", "--target", "ecp5"], "--verilog needs --top", "--top"),
    (["synth", "--demo", "0x0", "--target", "ecp5"], "bad --demo shape", "--demo"),
    (["synth", "--demo", "100x100", "--target", "ecp5"], "bad --demo shape", "--demo"),
    (["synth", "--demo", "4x4", "--target", "asic"], "invalid choice", "--target"),
]:
    CASES.append(Case(F, f"{argv[0]} {' '.join(argv[len(MAP) if argv[:len(MAP)] == MAP else 2:])}"[:60], argv,
                      expect, files={"file": "not a folder\n"}, where=where))


# ------------------------------------------------------------------------------------- the test
def _materialise(case: Case, folder: Path) -> list[str]:
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if case.npz is not None:
        np.savez(folder / "in.npz", **case.npz)
    target = next(iter(case.files), "")
    return [a.replace("{f}", str(folder / target)).replace("{d}", str(folder)) for a in case.argv]


def _id(case: Case) -> str:
    return f"{case.kind}:{case.name}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_malformed_input_is_one_clear_line(case: Case, tmp_path: Path) -> None:
    argv = _materialise(case, tmp_path)
    status, out, err = run_cli(argv)
    line = assert_one_line_error(status, err, expected_status=case.status)
    assert re.search(case.expect, line), line
    if case.line is not None:
        assert f":{case.line}:" in line, line
    if case.where:
        assert case.where in line, line
    if case.hint:
        assert "(hint: " in line, line
    assert "error: " in line


def test_corpus_covers_every_input_kind() -> None:
    kinds = {case.kind for case in CASES}
    assert kinds == {"spec", "arch", "workload", "hf-config", "mapping", "experiment", "rtl-arch", "inputs", "flags"}
    assert len(CASES) >= 200
    ids = [_id(c) for c in CASES]
    assert len(set(ids)) == len(ids), [i for i in ids if ids.count(i) > 1]


if __name__ == "__main__":  # pragma: no cover - prints the corpus size per input kind
    from collections import Counter
    for kind, count in sorted(Counter(c.kind for c in CASES).items()):
        print(f"{kind:12} {count}")
    print(f"{'total':12} {len(CASES)}")


# ------------------------------------------------------- cascade-aware mapping checks (the lowering)
#: Mappings whose structure is fine but which do not fit the cascade: the lowering rejects them
#: (unknown rank or param, factors over-covering a rank, a rank on a dimension no Einsum there uses).
CASCADE_AWARE = [
    mutate(M, "unknown-rank-MO", "  M0: {spatial: 256}", "  MO: {spatial: 256}", "unknown rank 'MO'",
           line=line_of(MAPPING, "  M0: {spatial: 256}")),
    mutate(M, "unknown-param-MO", "params: {M0: 256}", "params: {MO: 256}", "MO",
           line=line_of(MAPPING, "params: {M0: 256}")),
    mutate(M, "over-covering-factors", "P: {DRAM: 1, GLB: 4, spatial: 256}", "P: {DRAM: 8, GLB: 4, spatial: 256}",
           "cover|exceed", line=line_of(MAPPING, "P: {DRAM: 1, GLB: 4, spatial: 256}")),
    mutate(M, "spatial-rank-no-einsum-uses", "    lanes: [P]", "    lanes: [E]", "E",
           line=line_of(MAPPING, "    lanes: [P]")),
]
for _case in CASCADE_AWARE:
    _case.hint = False


@pytest.mark.parametrize("case", CASCADE_AWARE, ids=_id)
def test_cascade_aware_mapping_errors(case: Case, tmp_path: Path) -> None:
    test_malformed_input_is_one_clear_line(case, tmp_path)
