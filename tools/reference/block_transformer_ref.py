#!/usr/bin/python3
"""Independent PyTorch reference of the Block Transformer model spec.

Written straight from the project's model spec (Block Transformer, arXiv 2406.02657, as
described in the spec's sections 1-4), without Hugging Face transformers. It is the ground
truth that the C++ engine is tested against (through the golden fixtures that
make_fixtures.py writes, and through check_engine.py).

Everything is plain, unoptimized PyTorch on the CPU, in float32 by default (BF16/F16 weights
are upcast on load); `dtype=torch.float64` is accepted for numerical self-checks.

Contents:
  - read_safetensors / write_safetensors: a tiny safetensors reader/writer (json + struct +
    torch; F32, F16, BF16, F64).
  - StackConfig, BlockConfig, VanillaConfig: sizes and constants; inference from tensor shapes
    plus optional config.json overrides.
  - NeoxStack: a stack of GPT-NeoX layers (parallel or sequential residual, per-head qkv layout,
    NeoX rotate-half rotary on the first rotary_dims of q and k, exact GELU) with an optional
    KV cache.
  - BlockModel: embedder (concat) -> block decoder -> context embeddings; token decoder with
    the expansion prefixes. score() and greedy().
  - VanillaModel: a GPT-NeoX (Pythia) language model. score() and greedy().
  - make_random_model / save_model: random test models with the official tensor names.
  - load_model(dir): loads model.safetensors (+ config.json) from a directory.

Usage as a script (small debugging aid; same flags and JSON output as `blockserve score/run
--json`, so check_engine.py --bin tools/reference/block_transformer_ref.py checks the checker):
  /usr/bin/python3 tools/reference/block_transformer_ref.py score --model DIR --tokens "1 2 3"
  /usr/bin/python3 tools/reference/block_transformer_ref.py run --model DIR --tokens "1 2" \
      --max-new-tokens 8
"""

import argparse
import dataclasses
import json
import math
import os
import re
import struct
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------

_ST_TO_TORCH = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
}
_TORCH_TO_ST = {v: k for k, v in _ST_TO_TORCH.items()}
_ST_ITEM_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


def _bf16_bits_to_float32(bits16: torch.Tensor) -> torch.Tensor:
    """BF16 bit patterns (as int16) -> float32 values: the bits become the high half."""
    as_u32 = (bits16.to(torch.int64) & 0xFFFF) << 16  # in [0, 2^32)
    as_i32 = torch.where(as_u32 >= 2**31, as_u32 - 2**32, as_u32).to(torch.int32)
    return as_i32.view(torch.float32)


def read_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str], Dict[str, str]]:
    """Reads a safetensors file.

    Returns (tensors upcast to float32 [F64 stays float64], stored dtype per name, metadata).
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise ValueError(f"{path}: header length {header_len} exceeds the file size")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    base = 8 + header_len
    metadata = header.pop("__metadata__", {}) or {}
    tensors, dtypes = {}, {}
    for name, info in header.items():
        st_dtype = info["dtype"]
        shape = list(info["shape"])
        begin, end = info["data_offsets"]
        if st_dtype not in _ST_TO_TORCH:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {st_dtype}")
        count = math.prod(shape)
        if end - begin != count * _ST_ITEM_SIZE[st_dtype] or base + end > len(data):
            raise ValueError(f"{path}: tensor {name} has inconsistent data_offsets")
        raw = bytearray(data[base + begin:base + end])
        if count == 0:
            t = torch.zeros(shape, dtype=torch.float32)
        elif st_dtype == "BF16":
            t = _bf16_bits_to_float32(torch.frombuffer(raw, dtype=torch.int16)).reshape(shape)
        elif st_dtype == "F16":
            t = torch.frombuffer(raw, dtype=torch.float16).to(torch.float32).reshape(shape)
        elif st_dtype == "F64":
            t = torch.frombuffer(raw, dtype=torch.float64).reshape(shape).clone()
        else:
            t = torch.frombuffer(raw, dtype=torch.float32).reshape(shape).clone()
        tensors[name] = t
        dtypes[name] = st_dtype
    return tensors, dtypes, metadata


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.float32:
        return struct.pack(f"<{t.numel()}f", *t.tolist())
    if t.dtype == torch.float64:
        return struct.pack(f"<{t.numel()}d", *t.tolist())
    if t.dtype in (torch.float16, torch.bfloat16):
        return struct.pack(f"<{t.numel()}h", *t.view(torch.int16).tolist())
    raise ValueError(f"unsupported dtype {t.dtype}")


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor],
                      metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes tensors (float32/float16/bfloat16/float64, stored as they are) in name order."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        blob = _tensor_bytes(t)
        header[name] = {"dtype": _TORCH_TO_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        chunks.append(blob)
        offset += len(blob)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)  # 8-byte aligned data
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in chunks:
            f.write(blob)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def default_head_dim(hidden_size: int) -> int:
    """The paper's rule (spec section 2): 32 if D <= 256, 64 if D <= 1536, else 128."""
    if hidden_size <= 256:
        return 32
    if hidden_size <= 1536:
        return 64
    return 128


@dataclasses.dataclass
class StackConfig:
    """One stack of GPT-NeoX layers."""
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    rotary_pct: float = 0.25
    rotary_base: float = 10000.0
    layer_norm_eps: float = 1e-5
    parallel_residual: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def rotary_dims(self) -> int:
        return int(self.head_dim * self.rotary_pct)  # as Hugging Face GPT-NeoX computes it

    def validate(self, what: str) -> None:
        if self.hidden_size <= 0 or self.num_layers <= 0 or self.intermediate_size <= 0:
            raise ValueError(f"{what}: sizes must be positive: {self}")
        if self.num_heads <= 0 or self.hidden_size % self.num_heads:
            raise ValueError(f"{what}: {self.num_heads} heads do not divide hidden size "
                             f"{self.hidden_size}")
        if self.rotary_dims % 2 or not 0 <= self.rotary_dims <= self.head_dim:
            raise ValueError(f"{what}: rotary dims {self.rotary_dims} must be even and at most "
                             f"head_dim {self.head_dim}")

    def to_json(self) -> dict:
        """Hugging Face GPT-NeoX key names."""
        return {
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "rotary_pct": self.rotary_pct,
            "rotary_emb_base": self.rotary_base,
            "layer_norm_eps": self.layer_norm_eps,
            "use_parallel_residual": self.parallel_residual,
        }


# config.json key -> StackConfig field
_STACK_KEYS = {
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "intermediate_size",
    "rotary_pct": "rotary_pct",
    "rotary_emb_base": "rotary_base",
    "layer_norm_eps": "layer_norm_eps",
    "use_parallel_residual": "parallel_residual",
}


def _apply_stack_json(stack: StackConfig, js: Optional[dict]) -> StackConfig:
    if not js:
        return stack
    updates = {field: js[key] for key, field in _STACK_KEYS.items() if key in js}
    return dataclasses.replace(stack, **updates)


@dataclasses.dataclass
class BlockConfig:
    vocab_size: int
    block_length: int  # L_B
    expansion_ratio: int  # R
    block_decoder: StackConfig  # hidden P
    token_decoder: StackConfig  # hidden H
    eos_token_id: int = 0

    @property
    def embedder_dim(self) -> int:
        return self.block_decoder.hidden_size // self.block_length

    def validate(self) -> None:
        self.block_decoder.validate("block_decoder")
        self.token_decoder.validate("token_decoder")
        if self.block_length <= 0 or self.block_decoder.hidden_size % self.block_length:
            raise ValueError(f"block length {self.block_length} must divide P "
                             f"{self.block_decoder.hidden_size}")
        if self.expansion_ratio <= 0:
            raise ValueError("expansion ratio must be positive")

    def to_json(self) -> dict:
        """The project's config.json form for block models (every key optional when loading)."""
        return {
            "model_type": "block_transformer",
            "vocab_size": self.vocab_size,
            "eos_token_id": self.eos_token_id,
            "block_length": self.block_length,
            "expansion_ratio": self.expansion_ratio,
            "block_decoder": self.block_decoder.to_json(),
            "token_decoder": self.token_decoder.to_json(),
        }


@dataclasses.dataclass
class VanillaConfig:
    vocab_size: int
    stack: StackConfig
    eos_token_id: int = 0
    bos_token_id: int = 0
    max_position_embeddings: int = 2048

    def validate(self) -> None:
        self.stack.validate("gpt_neox")

    def to_json(self) -> dict:
        """A Hugging Face style GPT-NeoX config.json."""
        js = {"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"]}
        js.update(self.stack.to_json())
        js.update({
            "vocab_size": self.vocab_size,
            "eos_token_id": self.eos_token_id,
            "bos_token_id": self.bos_token_id,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_act": "gelu",
            "tie_word_embeddings": False,
        })
        return js


def _layer_count(tensors: Dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for name in tensors for m in [pattern.match(name)] if m}
    if not indices:
        raise ValueError(f"no layers under {prefix}")
    if indices != set(range(len(indices))):
        raise ValueError(f"layer indices under {prefix} are not 0..N-1: {sorted(indices)}")
    return len(indices)


def _infer_stack(tensors: Dict[str, torch.Tensor], prefix: str) -> StackConfig:
    """Sizes of the stack `prefix`gpt_neox.* from shapes; heads by the head-dim rule."""
    hidden = tensors[prefix + "gpt_neox.final_layer_norm.weight"].shape[0]
    layers = _layer_count(tensors, prefix + "gpt_neox.layers.")
    inter = tensors[prefix + "gpt_neox.layers.0.mlp.dense_h_to_4h.weight"].shape[0]
    hd = default_head_dim(hidden)
    heads = hidden // hd if hidden % hd == 0 else 0  # 0: must come from config.json
    return StackConfig(hidden_size=hidden, num_layers=layers, num_heads=heads,
                       intermediate_size=inter)


def _check_shape(tensors, name, shape):
    if name not in tensors:
        raise ValueError(f"missing tensor {name}")
    if list(tensors[name].shape) != list(shape):
        raise ValueError(f"tensor {name} has shape {list(tensors[name].shape)}, "
                         f"expected {list(shape)}")


def _check_stack_shapes(tensors, prefix: str, cfg: StackConfig) -> None:
    D, I = cfg.hidden_size, cfg.intermediate_size
    for n in range(cfg.num_layers):
        p = f"{prefix}gpt_neox.layers.{n}."
        for ln in ("input_layernorm", "post_attention_layernorm"):
            _check_shape(tensors, p + ln + ".weight", [D])
            _check_shape(tensors, p + ln + ".bias", [D])
        _check_shape(tensors, p + "attention.query_key_value.weight", [3 * D, D])
        _check_shape(tensors, p + "attention.query_key_value.bias", [3 * D])
        _check_shape(tensors, p + "attention.dense.weight", [D, D])
        _check_shape(tensors, p + "attention.dense.bias", [D])
        _check_shape(tensors, p + "mlp.dense_h_to_4h.weight", [I, D])
        _check_shape(tensors, p + "mlp.dense_h_to_4h.bias", [I])
        _check_shape(tensors, p + "mlp.dense_4h_to_h.weight", [D, I])
        _check_shape(tensors, p + "mlp.dense_4h_to_h.bias", [D])
    _check_shape(tensors, prefix + "gpt_neox.final_layer_norm.weight", [D])
    _check_shape(tensors, prefix + "gpt_neox.final_layer_norm.bias", [D])


def infer_block_config(tensors: Dict[str, torch.Tensor],
                       config_json: Optional[dict] = None) -> BlockConfig:
    """Sizes from the tensor shapes (spec section 4), then config.json overrides."""
    V, emb_dim = tensors["embedder.embeddings.weight"].shape
    bd = _infer_stack(tensors, "block_decoder.")
    td = _infer_stack(tensors, "token_decoder.")
    P, H = bd.hidden_size, td.hidden_size
    if P % emb_dim:
        raise ValueError(f"embedder dim {emb_dim} does not divide block decoder hidden size {P}")
    rh = tensors["token_decoder.expansion_layer.weight"].shape[0]
    if rh % H:
        raise ValueError(f"expansion output {rh} is not a multiple of H {H}")
    cfg = BlockConfig(vocab_size=V, block_length=P // emb_dim, expansion_ratio=rh // H,
                      block_decoder=bd, token_decoder=td)
    js = config_json or {}
    for key in ("vocab_size", "block_length", "expansion_ratio", "eos_token_id"):
        if key in js:
            setattr(cfg, key, js[key])
    cfg.block_decoder = _apply_stack_json(cfg.block_decoder, js.get("block_decoder"))
    cfg.token_decoder = _apply_stack_json(cfg.token_decoder, js.get("token_decoder"))
    cfg.validate()
    V, P, H = cfg.vocab_size, cfg.block_decoder.hidden_size, cfg.token_decoder.hidden_size
    R, LB = cfg.expansion_ratio, cfg.block_length
    _check_shape(tensors, "embedder.embeddings.weight", [V, P // LB])
    _check_stack_shapes(tensors, "block_decoder.", cfg.block_decoder)
    _check_stack_shapes(tensors, "token_decoder.", cfg.token_decoder)
    _check_shape(tensors, "token_decoder.gpt_neox.embed_in.weight", [V, H])
    _check_shape(tensors, "token_decoder.embed_out.weight", [V, H])
    _check_shape(tensors, "token_decoder.expansion_layer.weight", [R * H, P, 1])
    _check_shape(tensors, "token_decoder.expansion_layer.bias", [R * H])
    return cfg


def infer_vanilla_config(tensors: Dict[str, torch.Tensor],
                         config_json: Optional[dict] = None) -> VanillaConfig:
    V = tensors["gpt_neox.embed_in.weight"].shape[0]
    cfg = VanillaConfig(vocab_size=V, stack=_infer_stack(tensors, ""))
    js = config_json or {}
    for key in ("vocab_size", "eos_token_id", "bos_token_id", "max_position_embeddings"):
        if js.get(key) is not None:
            setattr(cfg, key, js[key])
    cfg.stack = _apply_stack_json(cfg.stack, js)
    cfg.validate()
    _check_stack_shapes(tensors, "", cfg.stack)
    _check_shape(tensors, "gpt_neox.embed_in.weight", [cfg.vocab_size, cfg.stack.hidden_size])
    _check_shape(tensors, "embed_out.weight", [cfg.vocab_size, cfg.stack.hidden_size])
    return cfg


# ---------------------------------------------------------------------------------------------
# GPT-NeoX stack
# ---------------------------------------------------------------------------------------------


def rotary_cos_sin(positions: torch.Tensor, rot: int, base: float,
                   dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [T, rot] of the NeoX rotary embedding, computed in float32 like Hugging Face
    (float64 when dtype is float64)."""
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    inv_freq = 1.0 / (base ** (torch.arange(0, rot, 2, dtype=ct) / rot))
    angle = positions.to(ct)[:, None] * inv_freq[None, :]
    emb = torch.cat([angle, angle], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rot: int) -> torch.Tensor:
    """x [T, heads, hd]; rotate-half on the first `rot` dims, the rest passes through."""
    if rot == 0:
        return x
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    x1, x2 = x_rot[..., :rot // 2], x_rot[..., rot // 2:]
    rotated = torch.cat([-x2, x1], dim=-1)
    c, s = cos[:, None, :], sin[:, None, :]  # broadcast over heads
    return torch.cat([x_rot * c + rotated * s, x_pass], dim=-1)


class NeoxStack:
    """A stack of GPT-NeoX layers; weights under `prefix`gpt_neox.layers.N.* (no final LN)."""

    def __init__(self, tensors: Dict[str, torch.Tensor], prefix: str, cfg: StackConfig,
                 dtype: torch.dtype):
        self.cfg = cfg
        self.layers = []
        for n in range(cfg.num_layers):
            p = f"{prefix}gpt_neox.layers.{n}."
            self.layers.append({k: tensors[p + k].to(dtype) for k in (
                "input_layernorm.weight", "input_layernorm.bias",
                "post_attention_layernorm.weight", "post_attention_layernorm.bias",
                "attention.query_key_value.weight", "attention.query_key_value.bias",
                "attention.dense.weight", "attention.dense.bias",
                "mlp.dense_h_to_4h.weight", "mlp.dense_h_to_4h.bias",
                "mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.bias")})
        self.dtype = dtype

    @staticmethod
    def new_cache() -> dict:
        return {"k": {}, "v": {}, "length": 0}

    def _layer_norm(self, x, w, b):
        return F.layer_norm(x, (x.shape[-1],), w, b, self.cfg.layer_norm_eps)

    def _attention(self, h, lp, n, cos, sin, cache):
        cfg = self.cfg
        T = h.shape[0]
        nh, hd = cfg.num_heads, cfg.head_dim
        qkv = F.linear(h, lp["attention.query_key_value.weight"],
                       lp["attention.query_key_value.bias"])
        qkv = qkv.view(T, nh, 3 * hd)  # per head: [q | k | v]
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q = apply_rotary(q, cos, sin, cfg.rotary_dims)
        k = apply_rotary(k, cos, sin, cfg.rotary_dims)
        past = 0
        if cache is not None:
            if n in cache["k"]:
                past = cache["k"][n].shape[0]
                k = torch.cat([cache["k"][n], k], dim=0)
                v = torch.cat([cache["v"][n], v], dim=0)
            cache["k"][n], cache["v"][n] = k, v
        S = k.shape[0]
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd)  # [heads, T, S]
        q_index = torch.arange(past, past + T)[:, None]
        k_index = torch.arange(S)[None, :]
        scores = scores.masked_fill(k_index > q_index, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out = torch.einsum("hts,shd->thd", probs, v).reshape(T, nh * hd)  # heads concatenated
        return F.linear(out, lp["attention.dense.weight"], lp["attention.dense.bias"])

    def _mlp(self, h, lp):
        a = F.linear(h, lp["mlp.dense_h_to_4h.weight"], lp["mlp.dense_h_to_4h.bias"])
        return F.linear(F.gelu(a), lp["mlp.dense_4h_to_h.weight"], lp["mlp.dense_4h_to_h.bias"])

    def forward(self, x: torch.Tensor, cache: Optional[dict] = None) -> torch.Tensor:
        """x [T, D] at positions cache_length .. cache_length+T-1 (0.. without a cache)."""
        cfg = self.cfg
        past = cache["length"] if cache is not None else 0
        positions = torch.arange(past, past + x.shape[0])
        cos, sin = rotary_cos_sin(positions, cfg.rotary_dims, cfg.rotary_base, self.dtype)
        for n, lp in enumerate(self.layers):
            attn = self._attention(
                self._layer_norm(x, lp["input_layernorm.weight"], lp["input_layernorm.bias"]),
                lp, n, cos, sin, cache)
            if cfg.parallel_residual:
                mlp = self._mlp(self._layer_norm(x, lp["post_attention_layernorm.weight"],
                                                 lp["post_attention_layernorm.bias"]), lp)
                x = x + attn + mlp
            else:
                x = x + attn
                x = x + self._mlp(self._layer_norm(x, lp["post_attention_layernorm.weight"],
                                                   lp["post_attention_layernorm.bias"]), lp)
        if cache is not None:
            cache["length"] = past + x.shape[0]
        return x


def pick_greedy(logits: torch.Tensor) -> Tuple[int, float]:
    """argmax (lowest id on ties) and the top1 - top2 logit margin."""
    top = torch.topk(logits, 2).values
    best = float(top[0])
    token = int((logits == top[0]).nonzero()[0, 0])
    return token, best - float(top[1])


# ---------------------------------------------------------------------------------------------
# Block Transformer
# ---------------------------------------------------------------------------------------------


class BlockModel:
    kind = "block"

    def __init__(self, tensors: Dict[str, torch.Tensor], cfg: BlockConfig,
                 dtype: torch.dtype = torch.float32):
        self.cfg = cfg
        self.dtype = dtype
        t = lambda name: tensors[name].to(dtype)
        self.embedder = t("embedder.embeddings.weight")  # [V, P/L_B]
        self.block_stack = NeoxStack(tensors, "block_decoder.", cfg.block_decoder, dtype)
        self.block_ln = (t("block_decoder.gpt_neox.final_layer_norm.weight"),
                         t("block_decoder.gpt_neox.final_layer_norm.bias"))
        self.token_stack = NeoxStack(tensors, "token_decoder.", cfg.token_decoder, dtype)
        self.token_ln = (t("token_decoder.gpt_neox.final_layer_norm.weight"),
                         t("token_decoder.gpt_neox.final_layer_norm.bias"))
        self.token_embed = t("token_decoder.gpt_neox.embed_in.weight")  # [V, H]
        self.embed_out = t("token_decoder.embed_out.weight")  # [V, H]
        self.expansion_w = t("token_decoder.expansion_layer.weight")[:, :, 0]  # [R*H, P]
        self.expansion_b = t("token_decoder.expansion_layer.bias")  # [R*H]

    # --- pieces -------------------------------------------------------------------------------

    def left_pad(self, tokens: List[int]) -> Tuple[List[int], int]:
        """Left-pads with id 0 to a multiple of L_B; returns (padded, number of pad tokens)."""
        pad = (-len(tokens)) % self.cfg.block_length
        return [0] * pad + list(tokens), pad

    def embed_blocks(self, tokens: List[int]) -> torch.Tensor:
        """tokens (a multiple of L_B) -> [n_blocks, P]: concatenated embedder rows."""
        LB = self.cfg.block_length
        assert len(tokens) % LB == 0
        rows = self.embedder[torch.tensor(tokens, dtype=torch.long)]
        return rows.reshape(len(tokens) // LB, LB * rows.shape[1])

    def _block_final_ln(self, h):
        return F.layer_norm(h, (h.shape[-1],), *self.block_ln,
                            self.cfg.block_decoder.layer_norm_eps)

    def context_embeddings(self, tokens: List[int]) -> torch.Tensor:
        """Block-aligned tokens -> context embeddings c_b [n_blocks, P] (full forward)."""
        return self._block_final_ln(self.block_stack.forward(self.embed_blocks(tokens)))

    def prefixes(self, context: torch.Tensor) -> torch.Tensor:
        """c_b [P] -> the R prefix vectors [R, H] (prefix r = channels [r*H, (r+1)*H))."""
        out = F.linear(context, self.expansion_w, self.expansion_b)
        return out.reshape(self.cfg.expansion_ratio, self.cfg.token_decoder.hidden_size)

    def _token_logits(self, h):
        h = F.layer_norm(h, (h.shape[-1],), *self.token_ln, self.cfg.token_decoder.layer_norm_eps)
        return F.linear(h, self.embed_out)

    def token_decoder_logits(self, context: torch.Tensor, block_tokens: List[int]) -> torch.Tensor:
        """Teacher-forced token decoder for one block: logits [L_B, V] for x_0..x_{L_B-1}
        (input [pre_0..pre_{R-1}, E[x_0]..E[x_{L_B-2}]] at positions 0..R+L_B-2)."""
        R, LB = self.cfg.expansion_ratio, self.cfg.block_length
        assert len(block_tokens) == LB
        ids = torch.tensor(block_tokens[:LB - 1], dtype=torch.long)
        inputs = torch.cat([self.prefixes(context), self.token_embed[ids]])
        logits = self._token_logits(self.token_stack.forward(inputs))
        return logits[R - 1:R - 1 + LB]

    # --- public API ---------------------------------------------------------------------------

    def score(self, tokens: List[int]) -> List[Optional[float]]:
        """Per-token log-probabilities; None for tokens in the first (padded) block."""
        LB = self.cfg.block_length
        padded, pad = self.left_pad(tokens)
        if not padded:
            return []
        contexts = self.context_embeddings(padded)
        logprobs: List[Optional[float]] = [None] * len(padded)
        for b in range(1, len(padded) // LB):
            block = padded[b * LB:(b + 1) * LB]
            lp = torch.log_softmax(self.token_decoder_logits(contexts[b - 1], block), dim=-1)
            for j, x in enumerate(block):
                logprobs[b * LB + j] = float(lp[j, x])
        return logprobs[pad:]

    def greedy(self, prompt: List[int], max_new_tokens: int, use_cache: bool = True) -> dict:
        """Greedy generation (spec section 3, no EOS stop). Returns tokens, per-step logprobs,
        per-step top1-top2 margins. use_cache=False recomputes everything at every step."""
        if not prompt:
            raise ValueError("empty prompt")
        LB, R = self.cfg.block_length, self.cfg.expansion_ratio
        padded, _ = self.left_pad(prompt)
        block_cache = NeoxStack.new_cache() if use_cache else None
        if use_cache:
            context = self._block_final_ln(
                self.block_stack.forward(self.embed_blocks(padded), block_cache))[-1]
        else:
            context = self.context_embeddings(padded)[-1]
        out, logprobs, margins = [], [], []
        while len(out) < max_new_tokens:
            need = min(LB, max_new_tokens - len(out))
            block: List[int] = []
            prefixes = self.prefixes(context)
            token_cache = NeoxStack.new_cache() if use_cache else None
            for j in range(need):
                if use_cache:
                    step_in = prefixes if j == 0 else self.token_embed[block[-1]][None, :]
                    h = self.token_stack.forward(step_in, token_cache)
                else:
                    ids = torch.tensor(block, dtype=torch.long)
                    h = self.token_stack.forward(torch.cat([prefixes, self.token_embed[ids]]))
                    assert h.shape[0] == R + j
                logits = self._token_logits(h[-1])
                token, margin = pick_greedy(logits)
                logprobs.append(float(torch.log_softmax(logits, dim=-1)[token]))
                margins.append(margin)
                block.append(token)
            out.extend(block)
            padded.extend(block)
            if len(out) < max_new_tokens:  # full block: append it to the block decoder
                if use_cache:
                    h = self.block_stack.forward(self.embed_blocks(block), block_cache)
                    context = self._block_final_ln(h)[-1]
                else:
                    context = self.context_embeddings(padded)[-1]
        return {"tokens": out, "logprobs": logprobs, "margins": margins}


# ---------------------------------------------------------------------------------------------
# Vanilla GPT-NeoX
# ---------------------------------------------------------------------------------------------


class VanillaModel:
    kind = "vanilla"

    def __init__(self, tensors: Dict[str, torch.Tensor], cfg: VanillaConfig,
                 dtype: torch.dtype = torch.float32):
        self.cfg = cfg
        self.dtype = dtype
        self.embed_in = tensors["gpt_neox.embed_in.weight"].to(dtype)
        self.stack = NeoxStack(tensors, "", cfg.stack, dtype)
        self.final_ln = (tensors["gpt_neox.final_layer_norm.weight"].to(dtype),
                         tensors["gpt_neox.final_layer_norm.bias"].to(dtype))
        self.embed_out = tensors["embed_out.weight"].to(dtype)

    def logits(self, tokens: List[int], cache: Optional[dict] = None) -> torch.Tensor:
        h = self.stack.forward(self.embed_in[torch.tensor(tokens, dtype=torch.long)], cache)
        h = F.layer_norm(h, (h.shape[-1],), *self.final_ln, self.cfg.stack.layer_norm_eps)
        return F.linear(h, self.embed_out)

    def score(self, tokens: List[int]) -> List[Optional[float]]:
        """Per-token log-probabilities; the first token is not scored (None)."""
        if not tokens:
            return []
        lp = torch.log_softmax(self.logits(tokens), dim=-1)
        return [None] + [float(lp[i - 1, tokens[i]]) for i in range(1, len(tokens))]

    def greedy(self, prompt: List[int], max_new_tokens: int, use_cache: bool = False) -> dict:
        if not prompt:
            raise ValueError("empty prompt")
        seq = list(prompt)
        out, logprobs, margins = [], [], []
        cache = NeoxStack.new_cache() if use_cache else None
        pending = list(prompt)
        for _ in range(max_new_tokens):
            logits = self.logits(pending, cache)[-1] if use_cache else self.logits(seq)[-1]
            token, margin = pick_greedy(logits)
            logprobs.append(float(torch.log_softmax(logits, dim=-1)[token]))
            margins.append(margin)
            out.append(token)
            seq.append(token)
            pending = [token]
        return {"tokens": out, "logprobs": logprobs, "margins": margins}


# ---------------------------------------------------------------------------------------------
# Loading, random models, saving
# ---------------------------------------------------------------------------------------------


def load_tensors_and_config(model_dir: str):
    tensors, dtypes, _ = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    config_path = os.path.join(model_dir, "config.json")
    config_json = None
    if os.path.exists(config_path):
        with open(config_path) as f:
            config_json = json.load(f)
    return tensors, dtypes, config_json


def load_model(model_dir: str, dtype: torch.dtype = torch.float32):
    """Loads a block or vanilla model directory (model.safetensors [+ config.json])."""
    tensors, _, config_json = load_tensors_and_config(model_dir)
    if "embedder.embeddings.weight" in tensors:
        return BlockModel(tensors, infer_block_config(tensors, config_json), dtype)
    if "gpt_neox.embed_in.weight" in tensors:
        return VanillaModel(tensors, infer_vanilla_config(tensors, config_json), dtype)
    raise ValueError(f"{model_dir}: neither a block transformer nor a GPT-NeoX checkpoint")


# Scale of embed_out so that logits have a standard deviation of a few nats.
LOGIT_GAIN = 2.5
# Scale of query_key_value so that attention is clearly position/content dependent.
QKV_GAIN = 1.3


def _random_stack(g: torch.Generator, prefix: str, cfg: StackConfig) -> Dict[str, torch.Tensor]:
    D, I = cfg.hidden_size, cfg.intermediate_size
    normal = lambda *shape: torch.randn(*shape, generator=g)
    linear = lambda out_f, in_f, gain=1.0: normal(out_f, in_f) * (gain / math.sqrt(in_f))
    out = {}
    for n in range(cfg.num_layers):
        p = f"{prefix}gpt_neox.layers.{n}."
        for ln in ("input_layernorm", "post_attention_layernorm"):
            out[p + ln + ".weight"] = 1.0 + 0.1 * normal(D)
            out[p + ln + ".bias"] = 0.1 * normal(D)
        out[p + "attention.query_key_value.weight"] = linear(3 * D, D, QKV_GAIN)
        out[p + "attention.query_key_value.bias"] = 0.1 * normal(3 * D)
        out[p + "attention.dense.weight"] = linear(D, D)
        out[p + "attention.dense.bias"] = 0.1 * normal(D)
        out[p + "mlp.dense_h_to_4h.weight"] = linear(I, D)
        out[p + "mlp.dense_h_to_4h.bias"] = 0.1 * normal(I)
        out[p + "mlp.dense_4h_to_h.weight"] = linear(D, I)
        out[p + "mlp.dense_4h_to_h.bias"] = 0.1 * normal(D)
    out[prefix + "gpt_neox.final_layer_norm.weight"] = 1.0 + 0.1 * normal(D)
    out[prefix + "gpt_neox.final_layer_norm.bias"] = 0.1 * normal(D)
    return out


def make_random_model(config, seed: int, dtype: str = "F32") -> Dict[str, torch.Tensor]:
    """Random, non-degenerate weights with the official tensor names, in the storage dtype
    ("F32", "BF16" or "F16"). config: BlockConfig or VanillaConfig."""
    config.validate()
    g = torch.Generator().manual_seed(seed)
    normal = lambda *shape: torch.randn(*shape, generator=g)
    V = config.vocab_size
    if isinstance(config, BlockConfig):
        P, H = config.block_decoder.hidden_size, config.token_decoder.hidden_size
        R = config.expansion_ratio
        t = {"embedder.embeddings.weight": normal(V, config.embedder_dim),
             "block_decoder.gpt_neox.embed_in.weight": normal(V, P)}
        t.update(_random_stack(g, "block_decoder.", config.block_decoder))
        t.update(_random_stack(g, "token_decoder.", config.token_decoder))
        t["token_decoder.gpt_neox.embed_in.weight"] = normal(V, H)
        t["token_decoder.embed_out.weight"] = normal(V, H) * (LOGIT_GAIN / math.sqrt(H))
        t["token_decoder.expansion_layer.weight"] = (normal(R * H, P, 1) / math.sqrt(P))
        t["token_decoder.expansion_layer.bias"] = 0.1 * normal(R * H)
    elif isinstance(config, VanillaConfig):
        D = config.stack.hidden_size
        t = {"gpt_neox.embed_in.weight": normal(V, D)}
        t.update(_random_stack(g, "", config.stack))
        t["embed_out.weight"] = normal(V, D) * (LOGIT_GAIN / math.sqrt(D))
    else:
        raise TypeError(f"unknown config type {type(config)}")
    return {k: v.to(_ST_TO_TORCH[dtype]).contiguous() for k, v in t.items()}


def save_model(model_dir: str, tensors: Dict[str, torch.Tensor],
               config_json: Optional[dict] = None) -> None:
    os.makedirs(model_dir, exist_ok=True)
    write_safetensors(os.path.join(model_dir, "model.safetensors"), tensors)
    config_path = os.path.join(model_dir, "config.json")
    if config_json is not None:
        with open(config_path, "w") as f:
            json.dump(config_json, f, indent=2)
            f.write("\n")
    elif os.path.exists(config_path):
        os.remove(config_path)


# ---------------------------------------------------------------------------------------------
# Command line (debugging aid)
# ---------------------------------------------------------------------------------------------


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("score", "run"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--tokens", required=True, help='token ids, e.g. "1 2 3"')
        p.add_argument("--max-new-tokens", type=int, default=16)
        p.add_argument("--float64", action="store_true", help="compute in float64")
        # Accepted (and ignored) so that this script can stand in for `blockserve` in
        # check_engine.py: output is always JSON, decoding always greedy, EOS never stops.
        for flag in ("--json", "--greedy", "--ignore-eos"):
            p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, torch.float64 if args.float64 else torch.float32)
    tokens = [int(x) for x in args.tokens.replace(",", " ").split()]
    if args.command == "score":
        logprobs = model.score(tokens)
        scored = [x for x in logprobs if x is not None]
        nll = -sum(scored) / len(scored) if scored else None
        print(json.dumps({"logprobs": logprobs, "nll": nll,
                          "ppl": math.exp(nll) if nll is not None else None}))
    else:
        result = model.greedy(tokens, args.max_new_tokens)
        print(json.dumps({"tokens": result["tokens"], "logprobs": result["logprobs"],
                          "min_margin": min(result["margins"], default=None)}))


if __name__ == "__main__":
    _main()
