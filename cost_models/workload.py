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
    kv_lora_rank: 512     # optional, multi-head latent attention: latent width (rank C)
    qk_rope_head_dim: 64  # optional, MLA: decoupled RoPE dimension (rank R)

Sizes obey the limits of :mod:`einloom.base.limits` (sequence lengths up to 2**24, batch up to 2**20).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from einloom.base.errors import Location, WorkloadError
from einloom.base.fields import Field, FieldReader, describe
from einloom.base.limits import MAX_BATCH, MAX_RANK_SIZE, MAX_SEQ_LEN
from einloom.base.yamlio import LineMap, load_json, load_yaml

Phase = Literal["prefill", "decode"]
PHASES: tuple[str, ...] = ("prefill", "decode")

_KEYS_REQUIRED = ("batch", "heads", "model_dim", "ffn_dim")


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
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    extra_ranks: tuple[tuple[str, int], ...] = ()     # ranks a cascade needs beyond the model's (--ranks)

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 for multi-head attention)."""
        return self.heads // self.kv_heads

    def instance_ranks(self) -> dict[str, dict[str, int]]:
        """Independent copies of the attention, as groups of ranks a cascade may iterate itself.

        ``{"B": {"B": batch}, "H": {"J": kv_heads, "G": group_size}}``: the batch, and the query
        heads H = J x G.  A cascade that iterates H (MLA), or J and G (GQA), covers that group; the
        copies it does not iterate are instances (the lowering multiplies by them, never twice).
        """
        return {"B": {"B": self.batch}, "H": {"J": self.kv_heads, "G": self.group_size}}

    def rank_sizes(self) -> dict[str, int]:
        """Rank extents of the attention cascade.

        ``P`` queries, ``M`` keys, ``E`` query/key head dim, ``F`` value head dim, ``B`` batch, ``H``
        query heads, ``J`` key/value heads, ``G`` query heads per KV head (``H = J * G``); for
        multi-head latent attention (when the workload gives them) ``C`` the latent width
        (``kv_lora_rank``) and ``R`` the decoupled RoPE dimension (``qk_rope_head_dim``), the ranks the
        library's ``mla-*`` specs use.
        """
        sizes = {"P": self.seq_len_q, "M": self.seq_len_kv, "E": self.head_dim_e, "F": self.head_dim_f,
                 "B": self.batch, "H": self.heads, "J": self.kv_heads, "G": self.group_size}
        if self.kv_lora_rank is not None:
            sizes["C"] = self.kv_lora_rank
        if self.qk_rope_head_dim is not None:
            sizes["R"] = self.qk_rope_head_dim
        sizes.update(dict(self.extra_ranks))
        return sizes

    def with_ranks(self, ranks: dict[str, int]) -> "Workload":
        """The same workload with more (or overridden) rank sizes, e.g. ``--ranks C=512,R=64``."""
        for rank, n in ranks.items():
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise WorkloadError(f"rank {rank} must be a positive integer, got {n!r}")
        merged = dict(self.extra_ranks)
        merged.update(ranks)
        return dataclasses.replace(self, extra_ranks=tuple(sorted(merged.items())))

    def with_seq_len(self, n: int) -> "Workload":
        """The same model at sequence length ``n`` (prefill: P = M = n; decode: M = n, P unchanged)."""
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise WorkloadError(f"sequence length must be a positive integer, got {n!r}")
        if n > MAX_SEQ_LEN:
            raise WorkloadError(f"sequence length {n} is over the limit of {MAX_SEQ_LEN} (2**24)",
                                hint="see the README's limits")
        if self.phase == "decode":
            return dataclasses.replace(self, seq_len_kv=n)
        return dataclasses.replace(self, seq_len_q=n, seq_len_kv=n)

    def with_batch(self, batch: int) -> "Workload":
        """The same workload at batch size ``batch``."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
            raise WorkloadError(f"batch must be a positive integer, got {batch!r}")
        if batch > MAX_BATCH:
            raise WorkloadError(f"batch {batch} is over the limit of {MAX_BATCH} (2**20)")
        return dataclasses.replace(self, batch=batch)

    def with_phase(self, phase: Phase) -> "Workload":
        """The same model in ``phase``: prefill (P = M) or decode (P = 1 new token, M unchanged)."""
        if phase not in PHASES:
            raise WorkloadError(f"unknown phase {phase!r}", hint="use prefill or decode")
        if phase == "decode":
            return dataclasses.replace(self, phase=phase, seq_len_q=1)
        return dataclasses.replace(self, phase=phase, seq_len_q=self.seq_len_kv)

    def resized(self, *, seq_len: int | None = None, batch: int | None = None,
                phase: Phase | None = None) -> "Workload":
        """Apply the optional overrides (phase first, then sequence length and batch)."""
        workload = self
        if phase is not None:
            workload = workload.with_phase(phase)
        if seq_len is not None:
            workload = workload.with_seq_len(seq_len)
        if batch is not None:
            workload = workload.with_batch(batch)
        return workload

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


_SIZE = dict(kind="int", low=1, high=MAX_RANK_SIZE)
#: The workload YAML fields and their rules (the field reader turns violations into messages).
FIELDS: tuple[Field, ...] = (
    Field("batch", required=True, kind="int", low=1, high=MAX_BATCH),
    Field("heads", required=True, **_SIZE),
    Field("model_dim", required=True, **_SIZE),
    Field("ffn_dim", required=True, **_SIZE),
    Field("name", "str"), Field("description", "text"), Field("source", "text"),
    Field("kv_heads", **_SIZE), Field("head_dim", **_SIZE), Field("head_dim_e", **_SIZE),
    Field("head_dim_f", **_SIZE),
    Field("seq_len", "size", high=MAX_SEQ_LEN), Field("seq_len_q", "size", high=MAX_SEQ_LEN),
    Field("seq_len_kv", "size", high=MAX_SEQ_LEN),
    Field("causal", "bool", default=False), Field("phase", "choice", choices=PHASES, default="prefill"),
    Field("kv_lora_rank", **_SIZE), Field("qk_rope_head_dim", **_SIZE),
)


def _workload_from_mapping(data: Any, linemap: LineMap | None, name: str | None = None,
                           path: tuple[Any, ...] = ()) -> Workload:
    r = FieldReader(linemap, WorkloadError, prefix=path)
    v = r.fields(data, (), FIELDS, what="a mapping of workload fields")
    heads = v["heads"]
    kv_heads = v.get("kv_heads", heads)
    if heads % kv_heads:
        raise r.fail(("kv_heads",), f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})",
                     "grouped-query attention shares each KV head among heads/kv_heads query heads")
    model_dim = v["model_dim"]
    if "head_dim" in v and ("head_dim_e" in v or "head_dim_f" in v):
        raise r.fail(("head_dim",), "give head_dim or head_dim_e/head_dim_f, not both")
    if "head_dim" not in v and "head_dim_e" not in v and model_dim % heads:
        raise r.fail(("heads",), f"model_dim ({model_dim}) is not a multiple of heads ({heads})",
                     "give head_dim: explicitly")
    head_dim_e = v.get("head_dim", v.get("head_dim_e", model_dim // heads))
    head_dim_f = v.get("head_dim", v.get("head_dim_f", head_dim_e))
    phase = v["phase"]
    if "seq_len" in v and ("seq_len_q" in v or "seq_len_kv" in v):
        raise r.fail(("seq_len",), "give seq_len or seq_len_q/seq_len_kv, not both")
    if "seq_len" in v:
        seq_q, seq_kv = (1 if phase == "decode" else v["seq_len"]), v["seq_len"]
    else:
        if "seq_len_kv" not in v:
            raise r.fail((), "missing required field 'seq_len'", "add 'seq_len:' (or seq_len_q: and seq_len_kv:)")
        seq_kv = v["seq_len_kv"]
        seq_q = v.get("seq_len_q", 1 if phase == "decode" else seq_kv)
    wname = v.get("name", name)
    if not wname:
        raise r.fail((), "missing workload name", "add 'name:'")
    return Workload(name=wname, batch=v["batch"], heads=heads, kv_heads=kv_heads, head_dim_e=head_dim_e,
                    head_dim_f=head_dim_f, model_dim=model_dim, ffn_dim=v["ffn_dim"], seq_len_q=seq_q,
                    seq_len_kv=seq_kv, causal=v["causal"], phase=phase, description=v.get("description", ""),
                    source=v.get("source", ""), kv_lora_rank=v.get("kv_lora_rank"),
                    qk_rope_head_dim=v.get("qk_rope_head_dim"))


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


def load_workload(path_or_name: str | Path, *, seq_len: int | None = None, batch: int | None = None,
                  phase: Phase | None = None) -> Workload:
    """Load a workload from a YAML file, a HuggingFace ``config.json``, or a built-in by name.

    ``seq_len``, ``batch`` and ``phase`` override the file's values (a HuggingFace config has none:
    its defaults are batch 1, prefill, and the model's ``max_position_embeddings`` as the sequence
    length).  Built-ins: :func:`workload_presets`.
    """
    text = str(path_or_name)
    path = Path(text)
    if path.suffix == ".json":
        data, linemap = load_json(path, error=WorkloadError)
        if not isinstance(data, dict) or not any(key in data for key in _KEYS_REQUIRED):
            return workload_from_hf_config(path, seq_len=seq_len, batch=batch or 1, phase=phase or "prefill",
                                           _parsed=(data, linemap))
        workload = _workload_from_mapping(data, linemap, name=_name_from_path(path))
    elif path.suffix in (".yaml", ".yml") or path.exists() or "/" in text:
        data, linemap = load_yaml(path, error=WorkloadError)
        workload = _workload_from_mapping(data, linemap, name=path.stem)
    else:
        data, linemap = _presets()
        if text not in data:
            close = difflib.get_close_matches(text, list(data), n=1)
            raise WorkloadError(f"unknown workload '{text}'",
                                hint=(f"did you mean '{close[0]}'? " if close else "")
                                + f"built-in workloads: {', '.join(data)}; or give a path to a .yaml file "
                                  "or a HuggingFace config.json")
        workload = _workload_from_mapping(data[text], linemap, name=text, path=(text,))
    return workload.resized(seq_len=seq_len, batch=batch, phase=phase)


# HuggingFace config.json key names, first match wins.
_HF_KEYS = {
    "hidden_size": ("hidden_size", "d_model", "n_embd"),
    "num_attention_heads": ("num_attention_heads", "num_heads", "n_head"),
    "num_key_value_heads": ("num_key_value_heads", "num_kv_heads", "multi_query_group_num"),
    "head_dim": ("head_dim", "d_kv"),
    "intermediate_size": ("intermediate_size", "d_ff", "n_inner", "ffn_dim"),
    "kv_lora_rank": ("kv_lora_rank",),
    "qk_rope_head_dim": ("qk_rope_head_dim",),
    "qk_nope_head_dim": ("qk_nope_head_dim",),
    "v_head_dim": ("v_head_dim",),
    "max_position_embeddings": ("max_position_embeddings", "n_positions", "seq_length"),
}


def workload_from_hf_config(path: str | Path, *, seq_len: int | None = None, batch: int = 1,
                            phase: Phase = "prefill", causal: bool = True, name: str | None = None,
                            _parsed: tuple[Any, LineMap] | None = None) -> Workload:
    """A :class:`Workload` from a HuggingFace-style ``config.json`` (read as JSON, no ``transformers``).

    Reads ``hidden_size``, ``num_attention_heads``, ``num_key_value_heads`` (default: the number of
    heads), ``head_dim`` (default ``hidden_size / num_attention_heads``) and ``intermediate_size``
    (common aliases such as T5's ``d_model``/``num_heads``/``d_kv``/``d_ff`` and GPT-2's
    ``n_embd``/``n_head``/``n_inner`` are accepted); every other key (``architectures``,
    ``rope_scaling``, ...) is ignored.  DeepSeek-style multi-head latent attention: ``kv_lora_rank``
    (the latent width, rank ``C``), ``qk_rope_head_dim`` (rank ``R``), ``qk_nope_head_dim`` (``E``) and
    ``v_head_dim`` (``F``).  The config does not fix the batch; the sequence length defaults to
    ``max_position_embeddings``.  ``causal`` defaults to True (decoder models).
    """
    file = str(path)
    data, linemap = _parsed if _parsed is not None else load_json(path, error=WorkloadError)
    r = FieldReader(linemap, WorkloadError)
    if not isinstance(data, dict):
        raise r.fail((), f"expected a JSON object of model settings, got {describe(data)}",
                     "a HuggingFace config.json is one {...} object")
    config = data

    def get(field: str, default: int | None = None, high: int = MAX_RANK_SIZE) -> int | None:
        for key in _HF_KEYS[field]:
            if config.get(key) is not None:
                return r.integer(config[key], (key,), low=1, high=high, what="a positive integer")
        if default is None and field in _HF_REQUIRED:
            raise WorkloadError(f"missing '{field}'", location=Location(file, None, field),
                                hint=f"a HuggingFace config names it {' or '.join(_HF_KEYS[field])}")
        return default

    hidden = get("hidden_size")
    heads = get("num_attention_heads")
    kv_heads = get("num_key_value_heads", heads)
    nope, v_dim = get("qk_nope_head_dim"), get("v_head_dim")
    if config.get("head_dim") is None and config.get("d_kv") is None and nope is None and hidden % heads:
        raise r.fail(("num_attention_heads",), f"hidden_size ({hidden}) is not a multiple of num_attention_heads "
                     f"({heads})", "add head_dim to the config")
    head_dim = get("head_dim", hidden // heads)
    ffn = get("intermediate_size", 4 * hidden if "n_embd" in config else None)
    if heads % kv_heads:
        raise r.fail(("num_key_value_heads",), f"num_attention_heads ({heads}) is not a multiple of "
                     f"num_key_value_heads ({kv_heads})")
    if seq_len is None:
        seq_len = get("max_position_embeddings", high=MAX_SEQ_LEN)
        if seq_len is None:
            raise WorkloadError("the config gives no sequence length", location=Location(file),
                                hint="give one with --seq-len N (or seq_len= in the API)")
    data = {"name": name or config.get("_name_or_path") or _name_from_path(Path(path)),
            "source": f"HuggingFace config {file}", "batch": batch, "heads": heads, "kv_heads": kv_heads,
            "model_dim": hidden, "ffn_dim": ffn, "seq_len": seq_len, "causal": causal, "phase": phase}
    if nope is not None or v_dim is not None:
        data["head_dim_e"], data["head_dim_f"] = nope or head_dim, v_dim or nope or head_dim
    else:
        data["head_dim"] = head_dim
    for key in ("kv_lora_rank", "qk_rope_head_dim"):
        if get(key) is not None:
            data[key] = get(key)
    if not isinstance(data["name"], str) or not data["name"].strip():
        data["name"] = _name_from_path(Path(path))
    return _workload_from_mapping(data, None, path=())


_HF_REQUIRED = ("hidden_size", "num_attention_heads", "intermediate_size")


def _name_from_path(path: Path) -> str:
    """``models/llama/config.json`` -> ``llama``; ``llama3-8b-config.json`` -> ``llama3-8b-config``."""
    return path.parent.name if path.stem == "config" and path.parent.name else path.stem
