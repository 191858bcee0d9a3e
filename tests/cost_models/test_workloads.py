"""Workloads: presets, YAML validation, HuggingFace config.json parsing, derived sizes."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from einloom.cost_models.workload import (Workload, load_workload, workload_from_dict, workload_from_hf_config,
                                          workload_presets)
from einloom.einsum.errors import WorkloadError
from einloom.einsum.yamlio import load_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"


@pytest.mark.parametrize("name, d, e, h, s", [("bert", 768, 64, 12, 3072), ("trxl", 1024, 64, 16, 4096),
                                              ("t5", 512, 64, 8, 2048), ("xlm", 2048, 128, 16, 8192)])
def test_fusemax_presets(name, d, e, h, s):
    w = load_workload(name)
    assert (w.model_dim, w.head_dim_e, w.head_dim_f, w.heads, w.kv_heads, w.ffn_dim, w.batch) == (d, e, e, h, h, s, 64)
    assert w.seq_len_q == w.seq_len_kv and not w.causal and w.phase == "prefill"
    assert w.source


def test_llama_gqa_rank_sizes():
    w = load_workload("llama3-8b")
    assert w.rank_sizes() == {"P": 8192, "M": 8192, "E": 128, "F": 128, "B": 1, "H": 32, "J": 8, "G": 4}
    assert w.causal
    k = w.linear_layers()["K"]
    assert k == (8192, 4096, 8 * 128)
    decode = load_workload("llama3-8b-decode")
    assert (decode.seq_len_q, decode.seq_len_kv, decode.phase) == (1, 8192, "decode")
    assert set(workload_presets()) >= {"bert", "trxl", "t5", "xlm", "llama3-8b", "llama3-8b-decode"}


def test_with_seq_len_and_batch():
    bert = load_workload("bert")
    long = bert.with_seq_len(65536)
    assert (long.seq_len_q, long.seq_len_kv, long.batch) == (65536, 65536, 64)
    assert bert.seq_len_q == 1024                      # frozen: the original is unchanged
    decode = load_workload("llama3-8b-decode").with_seq_len(32768)
    assert (decode.seq_len_q, decode.seq_len_kv) == (1, 32768)
    assert bert.with_batch(1).batch == 1
    with pytest.raises(WorkloadError, match="sequence length must be a positive integer"):
        bert.with_seq_len(0)


def test_linear_layer_macs_match_fusemax_check():
    # fusemax.md 4.2: BERT 1K linear layers = 64*1024*(4*768^2 + 2*768*3072) MACs
    w = load_workload("bert")
    macs = sum(m * k * n for m, k, n in w.linear_layers().values())
    assert macs == 64 * 1024 * (4 * 768**2 + 2 * 768 * 3072)
    assert w.attention_macs() == 64 * 12 * 1024 * 1024 * 128


def test_example_files_load():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert isinstance(load_workload(path), Workload)
    assert load_workload(EXAMPLES / "llama3-8b-prefill-32k.yaml").rank_sizes()["G"] == 4


def test_hf_config_llama():
    w = workload_from_hf_config(EXAMPLES / "llama3-8b-config.json", seq_len=4096, batch=2)
    assert (w.model_dim, w.heads, w.kv_heads, w.head_dim_e, w.ffn_dim) == (4096, 32, 8, 128, 14336)
    assert (w.seq_len_q, w.seq_len_kv, w.batch, w.causal) == (4096, 4096, 2, True)
    assert w.name == "llama3-8b-config"


def test_hf_config_defaults_and_aliases(tmp_path):
    bert_dir = tmp_path / "bert-base"
    bert_dir.mkdir()
    (bert_dir / "config.json").write_text(json.dumps(
        {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072}))
    w = workload_from_hf_config(bert_dir / "config.json", seq_len=512, causal=False)
    assert (w.head_dim_e, w.kv_heads, w.name, w.causal) == (64, 12, "bert-base", False)
    t5 = tmp_path / "t5.json"
    t5.write_text(json.dumps({"d_model": 512, "num_heads": 8, "d_kv": 64, "d_ff": 2048}))
    w = workload_from_hf_config(t5, seq_len=128)
    assert (w.model_dim, w.heads, w.head_dim_e, w.ffn_dim) == (512, 8, 64, 2048)


def test_hf_config_errors(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "hidden_size": 4096,\n  "num_attention_heads": 32,\n  "num_key_value_heads": 5,\n'
                    '  "intermediate_size": 14336\n}\n')
    with pytest.raises(WorkloadError) as info:
        workload_from_hf_config(path, seq_len=8)
    assert str(info.value) == (f"{path}:4: num_key_value_heads: num_attention_heads (32) is not a multiple of "
                               "num_key_value_heads (5)")
    path.write_text('{"hidden_size": 4096}')
    with pytest.raises(WorkloadError, match="missing 'num_attention_heads'"):
        workload_from_hf_config(path, seq_len=8)
    path.write_text('{"hidden_size": 4096,')
    with pytest.raises(WorkloadError, match="invalid JSON"):
        workload_from_hf_config(path, seq_len=8)


WORKLOAD = textwrap.dedent("""\
    name: small
    batch: 2
    heads: 4
    head_dim: 16
    model_dim: 64
    ffn_dim: 256
    seq_len: 128
    """)


def error_of(text: str) -> str:
    data, linemap = load_yaml("w.yaml", text=text, error=WorkloadError)
    with pytest.raises(WorkloadError) as info:
        workload_from_dict(data, linemap)
    return str(info.value)


def test_workload_yaml_defaults():
    data, linemap = load_yaml("w.yaml", text=WORKLOAD, error=WorkloadError)
    w = workload_from_dict(data, linemap)
    assert w.rank_sizes() == {"P": 128, "M": 128, "E": 16, "F": 16, "B": 2, "H": 4, "J": 4, "G": 1}
    data["head_dim_e"], data["head_dim_f"] = data.pop("head_dim"), 32
    assert workload_from_dict(data).head_dim_f == 32


@pytest.mark.parametrize("old, new, message", [
    ("heads: 4", "heads: -4", "w.yaml:3: heads: expected a positive integer, got -4 (hint: sizes are whole numbers >= 1)"),
    ("seq_len: 128", "seq_lenn: 128", "w.yaml:7: seq_lenn: unknown key 'seq_lenn' (hint: did you mean 'seq_len'? "
     "allowed keys: batch, heads, model_dim, ffn_dim, name, description, source, kv_heads, head_dim, head_dim_e, "
     "head_dim_f, seq_len, seq_len_q, seq_len_kv, causal, phase, kv_lora_rank, qk_rope_head_dim)"),
    ("ffn_dim: 256\n", "", "w.yaml:1: missing required field 'ffn_dim' (hint: add 'ffn_dim:' under the top level)"),
    ("heads: 4", "heads: 4\nkv_heads: 3", "w.yaml:4: kv_heads: heads (4) must be a multiple of kv_heads (3) "
     "(hint: grouped-query attention shares each KV head among heads/kv_heads query heads)"),
    ("seq_len: 128", "seq_len: 128\nphase: decod", "w.yaml:8: phase: unknown phase 'decod' "
     "(hint: did you mean 'decode'? use one of prefill, decode)"),
])
def test_workload_validation_errors(old, new, message):
    assert error_of(WORKLOAD.replace(old, new)) == message


def test_unknown_workload_name():
    with pytest.raises(WorkloadError) as info:
        load_workload("brt")
    assert str(info.value).startswith("unknown workload 'brt' (hint: did you mean 'bert'? built-in workloads: bert,")
