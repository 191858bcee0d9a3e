"""Transformer workloads: the sizes an attention cascade and its linear layers run at.

A :class:`Workload` gives the attention rank sizes (:meth:`Workload.rank_sizes`) and the GEMM shapes
of the surrounding linear layers (:meth:`Workload.linear_layers`).  Load one from YAML or by name
(:func:`load_workload`; built-ins in ``data/workloads.yaml``: ``bert``, ``trxl``, ``t5``, ``xlm`` as in
FuseMax's evaluation, and ``llama3-8b``/``llama3-8b-decode`` with grouped-query attention), or from a
HuggingFace ``config.json`` (:func:`workload_from_hf_config`, no ``transformers`` needed).

Workload YAML::

    name: bert
    source: where the sizes come from
    batch: 64
    heads: 12
    kv_heads: 12          # optional, default = heads (multi-head); fewer for GQA/MQA
    head_dim: 64          # or head_dim_e (Q/K) and head_dim_f (V)
    model_dim: 768
    ffn_dim: 3072
    seq_len: 1024         # or seq_len_q (P) and seq_len_kv (M)
    causal: false
    phase: prefill        # prefill: P = M = seq_len; decode: P = 1, M = seq_len
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from einloom.einsum.errors import Location, WorkloadError
from einloom.einsum.yamlio import LineMap, load_yaml

Phase = Literal["prefill", "decode"]

_KEYS_REQUIRED = ("batch", "heads", "model_dim", "ffn_dim")
_KEYS_OPTIONAL = ("name", "description", "source", "kv_heads", "head_dim", "head_dim_e", "head_dim_f", "seq_len",
                  "seq_len_q", "seq_len_kv", "causal", "phase")


@dataclass(frozen=True)
class Workload:
    """Sizes of one transformer layer's attention and linear layers.

    Members
    -------
    batch, heads, kv_heads:
        B, query heads H, key/value heads (``heads`` for multi-head attention; fewer for GQA).
    head_dim_e, head_dim_f:
        E (query/key head dimension) and F (value head dimension).
    model_dim, ffn_dim:
        D and the feed-forward width S.
    seq_len_q, seq_len_kv:
        P (queries) and M (keys/values).
    causal, phase:
        Causal masking; ``prefill`` (P = M) or ``decode`` (P = 1 new token per sequence).
    """

    name: str
    batch: int
    heads: int
    kv_heads: int
    head_dim_e: int
    head_dim_f: int
    model_dim: int
    ffn_dim: int
    seq_len_q: int
    seq_len_kv: int
    causal: bool = False
    phase: Phase = "prefill"
    description: str = ""
    source: str = ""

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 for multi-head attention)."""
        return self.heads // self.kv_heads

    def rank_sizes(self) -> dict[str, int]:
        """Rank extents of the attention cascade.

        ``P`` queries, ``M`` keys, ``E`` query/key head dim, ``F`` value head dim, ``B`` batch, ``H``
        query heads, ``J`` key/value heads, ``G`` query heads per KV head (``H = J * G``).
        """
        return {"P": self.seq_len_q, "M": self.seq_len_kv, "E": self.head_dim_e, "F": self.head_dim_f,
                "B": self.batch, "H": self.heads, "J": self.kv_heads, "G": self.group_size}

    def with_seq_len(self, n: int) -> "Workload":
        """The same model at sequence length ``n`` (prefill: P = M = n; decode: M = n, P unchanged)."""
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise WorkloadError(f"sequence length must be a positive integer, got {n!r}")
        if self.phase == "decode":
            return dataclasses.replace(self, seq_len_kv=n)
        return dataclasses.replace(self, seq_len_q=n, seq_len_kv=n)

    def with_batch(self, batch: int) -> "Workload":
        """The same workload at batch size ``batch``."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
            raise WorkloadError(f"batch must be a positive integer, got {batch!r}")
        return dataclasses.replace(self, batch=batch)

    def attention_macs(self) -> int:
        """MACs of QK^T and AV over all batches and heads.  Causal counts only the visible (query, key)
        pairs of the bottom-right aligned mask (FlashAttention >= 2.1; query p sees key m iff
        m <= p + M - P): with n = min(P, M), n(n+1)/2 + n(M - n); P = M gives the lower triangle,
        decode (P = 1) all M keys."""
        pairs = self.seq_len_q * self.seq_len_kv
        if self.causal:
            n = min(self.seq_len_q, self.seq_len_kv)
            pairs = n * (n + 1) // 2 + n * (self.seq_len_kv - n)
        return self.batch * self.heads * pairs * (self.head_dim_e + self.head_dim_f)

    def linear_layers(self) -> dict[str, tuple[int, int, int]]:
        """GEMM shapes ``(M, K, N)`` of one layer's linear layers, with M = batch x new tokens.

        Q (D -> H*E), K (D -> J*E), V (D -> J*F), Z (H*F -> D), FFN1 (D -> S), FFN2 (S -> D), as in
        the FuseMax artifact's end-to-end model (``matmul.py``), with GQA's smaller K and V.  Gated
        FFNs (Llama's SwiGLU has a third S-wide projection) are not modelled.
        """
        m = self.batch * self.seq_len_q
        d, s = self.model_dim, self.ffn_dim
        return {"Q": (m, d, self.heads * self.head_dim_e), "K": (m, d, self.kv_heads * self.head_dim_e),
                "V": (m, d, self.kv_heads * self.head_dim_f), "Z": (m, self.heads * self.head_dim_f, d),
                "FFN1": (m, d, s), "FFN2": (m, s, d)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _workload_from_mapping(data: Any, linemap: LineMap | None, name: str | None = None,
                           path: tuple[Any, ...] = ()) -> Workload:
    def at(*key: Any) -> Location:
        if linemap is not None:
            return linemap.at(*(path + key))
        return Location(None, None, ".".join(map(str, path + key)) or None)

    if not isinstance(data, dict):
        raise WorkloadError("expected a mapping of workload fields", location=at(),
                            hint="write batch:, heads:, head_dim:, model_dim:, ffn_dim:, seq_len:")
    allowed = _KEYS_REQUIRED + _KEYS_OPTIONAL
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            raise WorkloadError(f"unknown key '{key}'", location=at(key),
                                hint=(f"did you mean '{close[0]}'? " if close else "") + f"allowed keys: {', '.join(allowed)}")
    for key in _KEYS_REQUIRED:
        if key not in data:
            raise WorkloadError(f"missing required field '{key}'", location=at(), hint=f"add '{key}:'")

    def pos_int(key: str, default: int | None = None) -> int:
        if key not in data:
            if default is None:
                raise WorkloadError(f"missing required field '{key}'", location=at(), hint=f"add '{key}:'")
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise WorkloadError(f"expected a positive integer, got {value!r}", location=at(key),
                                hint="sizes are whole numbers >= 1")
        return value

    heads = pos_int("heads")
    kv_heads = pos_int("kv_heads", heads)
    if heads % kv_heads:
        raise WorkloadError(f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})", location=at("kv_heads"),
                            hint="grouped-query attention shares each KV head among heads/kv_heads query heads")
    model_dim = pos_int("model_dim")
    if "head_dim" in data and ("head_dim_e" in data or "head_dim_f" in data):
        raise WorkloadError("give head_dim or head_dim_e/head_dim_f, not both", location=at("head_dim"))
    if "head_dim" not in data and "head_dim_e" not in data and model_dim % heads:
        raise WorkloadError(f"model_dim ({model_dim}) is not a multiple of heads ({heads})", location=at("heads"),
                            hint="give head_dim: explicitly")
    head_dim = pos_int("head_dim", model_dim // heads) if "head_dim" in data or "head_dim_e" not in data else None
    head_dim_e = pos_int("head_dim_e", head_dim)
    head_dim_f = pos_int("head_dim_f", head_dim if head_dim is not None else head_dim_e)
    phase = data.get("phase", "prefill")
    if phase not in ("prefill", "decode"):
        close = difflib.get_close_matches(str(phase), ["prefill", "decode"], n=1)
        raise WorkloadError(f"unknown phase '{phase}'", location=at("phase"),
                            hint=(f"did you mean '{close[0]}'? " if close else "") + "use prefill or decode")
    if "seq_len" in data and ("seq_len_q" in data or "seq_len_kv" in data):
        raise WorkloadError("give seq_len or seq_len_q/seq_len_kv, not both", location=at("seq_len"))
    if "seq_len" in data:
        seq = pos_int("seq_len")
        seq_q, seq_kv = (1 if phase == "decode" else seq), seq
    else:
        if "seq_len_kv" not in data:
            raise WorkloadError("missing required field 'seq_len'", location=at(),
                                hint="add 'seq_len:' (or seq_len_q: and seq_len_kv:)")
        seq_kv = pos_int("seq_len_kv")
        seq_q = pos_int("seq_len_q", 1 if phase == "decode" else seq_kv)
    causal = data.get("causal", False)
    if not isinstance(causal, bool):
        raise WorkloadError(f"expected true or false, got {causal!r}", location=at("causal"))
    wname = data.get("name", name)
    if not isinstance(wname, str) or not wname:
        raise WorkloadError("missing workload name", location=at(), hint="add 'name:'")
    return Workload(name=wname, batch=pos_int("batch"), heads=heads, kv_heads=kv_heads, head_dim_e=head_dim_e,
                    head_dim_f=head_dim_f, model_dim=model_dim, ffn_dim=pos_int("ffn_dim"), seq_len_q=seq_q,
                    seq_len_kv=seq_kv, causal=causal, phase=phase, description=str(data.get("description", "")),
                    source=str(data.get("source", "")))


def workload_from_dict(data: Any, linemap: LineMap | None = None) -> Workload:
    """Validate a parsed workload YAML (see the module docstring) and build a :class:`Workload`."""
    return _workload_from_mapping(data, linemap)


def _presets() -> tuple[dict[str, Any], LineMap]:
    path = resources.files("einloom.cost_models").joinpath("data", "workloads.yaml")
    data, linemap = load_yaml(str(path), text=path.read_text(), error=WorkloadError)
    return data, linemap


def workload_presets() -> list[str]:
    """Names of the built-in workloads."""
    return list(_presets()[0])


def load_workload(path_or_name: str | Path) -> Workload:
    """Load a workload from a YAML file, or a built-in one by name (see :func:`workload_presets`)."""
    text = str(path_or_name)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in text:
        data, linemap = load_yaml(path, error=WorkloadError)
        if isinstance(data, dict) and "name" not in data:
            return _workload_from_mapping(data, linemap, name=path.stem)
        return _workload_from_mapping(data, linemap)
    data, linemap = _presets()
    if text not in data:
        close = difflib.get_close_matches(text, list(data), n=1)
        raise WorkloadError(f"unknown workload '{text}'",
                            hint=(f"did you mean '{close[0]}'? " if close else "")
                            + f"built-in workloads: {', '.join(data)}; or give a path to a .yaml file")
    return _workload_from_mapping(data[text], linemap, name=text, path=(text,))


# HuggingFace config.json key names, first match wins.
_HF_KEYS = {
    "hidden_size": ("hidden_size", "d_model", "n_embd"),
    "num_attention_heads": ("num_attention_heads", "num_heads", "n_head"),
    "num_key_value_heads": ("num_key_value_heads", "num_kv_heads", "multi_query_group_num"),
    "head_dim": ("head_dim", "d_kv"),
    "intermediate_size": ("intermediate_size", "d_ff", "n_inner", "ffn_dim"),
}


def workload_from_hf_config(path: str | Path, *, seq_len: int, batch: int = 1, phase: Phase = "prefill",
                            causal: bool = True, name: str | None = None) -> Workload:
    """A :class:`Workload` from a HuggingFace-style ``config.json`` (read as JSON, no ``transformers``).

    Reads ``hidden_size``, ``num_attention_heads``, ``num_key_value_heads`` (default: the number of
    heads), ``head_dim`` (default ``hidden_size / num_attention_heads``) and ``intermediate_size``
    (common aliases such as T5's ``d_model``/``num_heads``/``d_kv``/``d_ff`` and GPT-2's
    ``n_embd``/``n_head``/``n_inner`` are accepted).  The config does not fix the sequence length or
    batch; the caller gives them.  ``causal`` defaults to True (decoder models).
    """
    file = str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise WorkloadError("file not found", location=Location(file), hint="check the path") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"invalid JSON: {exc.msg}", location=Location(file, exc.lineno)) from None
    if not isinstance(config, dict):
        raise WorkloadError("expected a JSON object", location=Location(file, 1))

    def line_of(key: str) -> int | None:
        match = re.search(r'"' + re.escape(key) + r'"\s*:', text)
        return text.count("\n", 0, match.start()) + 1 if match else None

    def get(field: str, default: int | None = None) -> int:
        for key in _HF_KEYS[field]:
            if key in config and config[key] is not None:
                value = config[key]
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise WorkloadError(f"expected a positive integer, got {value!r}",
                                        location=Location(file, line_of(key), key))
                return value
        if default is None:
            raise WorkloadError(f"missing '{field}'", location=Location(file, None, field),
                                hint=f"a HuggingFace config names it {' or '.join(_HF_KEYS[field])}")
        return default

    hidden = get("hidden_size")
    heads = get("num_attention_heads")
    kv_heads = get("num_key_value_heads", heads)
    if "head_dim" not in config and "d_kv" not in config and hidden % heads:
        raise WorkloadError(f"hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads})",
                            location=Location(file, line_of("num_attention_heads"), "num_attention_heads"),
                            hint="add head_dim to the config")
    head_dim = get("head_dim", hidden // heads)
    ffn = get("intermediate_size", 4 * hidden if "n_embd" in config else None)
    if heads % kv_heads:
        raise WorkloadError(f"num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})",
                            location=Location(file, line_of("num_key_value_heads"), "num_key_value_heads"))
    data = {"name": name or config.get("_name_or_path") or _name_from_path(Path(path)),
            "source": f"HuggingFace config {file}", "batch": batch, "heads": heads, "kv_heads": kv_heads,
            "head_dim": head_dim, "model_dim": hidden, "ffn_dim": ffn, "seq_len": seq_len, "causal": causal,
            "phase": phase}
    return _workload_from_mapping(data, None)


def _name_from_path(path: Path) -> str:
    """``models/llama/config.json`` -> ``llama``; ``llama3-8b-config.json`` -> ``llama3-8b-config``."""
    return path.parent.name if path.stem == "config" and path.parent.name else path.stem
