"""Trainable (batched, torch.nn) Block Transformer and vanilla GPT-NeoX for tools/train/.

The math is the project's model spec, the same as tools/reference/block_transformer_ref.py
(the unbatched ground truth); check_training_math.py proves that these modules give the same
log-probabilities as the reference on random weights and batches. Configurations are the
reference's own BlockConfig / VanillaConfig / StackConfig, and rotary tables come from the
reference's rotary_cos_sin, so there is one definition of the sizes and constants.

Module attribute names are chosen so that state_dict() keys ARE the official checkpoint names
(spec section 4): block models `embedder.embeddings.weight`, `block_decoder.gpt_neox.*`
(including the unused `embed_in`), `token_decoder.gpt_neox.*`, `token_decoder.embed_out.weight`,
`token_decoder.expansion_layer.*` (a Conv1d with kernel size 1); vanilla models Pythia's
`gpt_neox.*` and `embed_out.weight`.

Training objective (the paper's): for a batch of block-aligned sequences [B, N * L_B] (the first
block may hold left padding), the token decoder predicts every token of block b (b >= 1) from
the context embedding c_{b-1}; the first block is never a target. Vanilla: next-token
prediction on every position after the first.
"""

import math
import os
import sys
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import block_transformer_ref as ref  # noqa: E402

BlockConfig = ref.BlockConfig
VanillaConfig = ref.VanillaConfig
StackConfig = ref.StackConfig


class Attention(nn.Module):
    def __init__(self, cfg: StackConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.hidden_size
        self.query_key_value = nn.Linear(D, 3 * D)
        self.dense = nn.Linear(D, D)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask_bias: torch.Tensor) -> torch.Tensor:
        """x [B, T, D]; cos/sin [T, rot]; mask_bias [T, T] (0 or -inf above the diagonal)."""
        B, T, D = x.shape
        nh, hd, rot = self.cfg.num_heads, self.cfg.head_dim, self.cfg.rotary_dims
        # Per head the 3*hd outputs are [q | k | v]; one copy to [3, B, nh, T, hd], then
        # unbind/split (not slicing), so that the backward pass never zero-fills full-size
        # gradients.
        qkv = self.query_key_value(x).view(B, T, nh, 3, hd).permute(3, 0, 2, 1, 4).contiguous()
        q, k, v = qkv.unbind(0)  # [B, nh, T, hd]
        if rot:
            q = _rotary(q, cos, sin, rot)
            k = _rotary(k, cos, sin, rot)
        # The reference divides q k^T by sqrt(hd); scaling q first is the same up to rounding
        # (check_training_math.py) and cheaper.
        scores = torch.matmul(q * (1.0 / math.sqrt(hd)), k.transpose(-1, -2)) + mask_bias
        out = torch.matmul(torch.softmax(scores, dim=-1), v)  # [B, nh, T, hd]
        return self.dense(out.transpose(1, 2).reshape(B, T, D))


def _rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rot: int) -> torch.Tensor:
    """x [B, nh, T, hd]: NeoX rotate-half on the first `rot` dims (cos/sin [T, rot])."""
    x_rot, x_pass = x.split([rot, x.shape[-1] - rot], dim=-1)
    x1, x2 = x_rot.chunk(2, dim=-1)
    return torch.cat([x_rot * cos + torch.cat([-x2, x1], dim=-1) * sin, x_pass], dim=-1)


class MLP(nn.Module):
    def __init__(self, cfg: StackConfig):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.dense_4h_to_h = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x):
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))  # exact (erf) GELU


class Layer(nn.Module):
    def __init__(self, cfg: StackConfig):
        super().__init__()
        self.cfg = cfg
        D, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.input_layernorm = nn.LayerNorm(D, eps=eps)
        self.post_attention_layernorm = nn.LayerNorm(D, eps=eps)
        self.attention = Attention(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask):
        attn = self.attention(self.input_layernorm(x), cos, sin, mask)
        if self.cfg.parallel_residual:
            return x + attn + self.mlp(self.post_attention_layernorm(x))
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x))


class GPTNeoX(nn.Module):
    """embed_in, layers, final_layer_norm (state-dict names as Hugging Face GPTNeoXModel)."""

    def __init__(self, cfg: StackConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.embed_in = nn.Embedding(vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_layers))
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self._tables: Dict[Tuple[int, torch.dtype], Tuple[torch.Tensor, ...]] = {}

    def _rotary_and_mask(self, T: int, dtype: torch.dtype):
        key = (T, dtype)
        if key not in self._tables:
            cos, sin = ref.rotary_cos_sin(torch.arange(T), self.cfg.rotary_dims,
                                          self.cfg.rotary_base, dtype)
            mask_bias = torch.zeros(T, T, dtype=dtype).masked_fill(
                torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
            self._tables[key] = (cos, sin, mask_bias)
        return self._tables[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] input vectors at positions 0..T-1 -> final-LayerNorm'd [B, T, D]."""
        cos, sin, mask = self._rotary_and_mask(x.shape[1], x.dtype)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.final_layer_norm(x)


def _init_weights(module: nn.Module, num_layers: int, std: float = 0.02) -> None:
    """GPT-NeoX style: N(0, std) weights, zero biases, LayerNorm 1/0, output projections of
    residual branches scaled by 1/sqrt(2 * num_layers)."""
    for name, p in module.named_parameters():
        if name.endswith("layernorm.weight") or name.endswith("layer_norm.weight"):
            nn.init.ones_(p)
        elif name.endswith(".bias"):
            nn.init.zeros_(p)
        elif name.endswith("attention.dense.weight") or name.endswith("dense_4h_to_h.weight"):
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * num_layers))
        else:
            nn.init.normal_(p, 0.0, std)


class TokenDecoder(nn.Module):
    def __init__(self, cfg: BlockConfig):
        super().__init__()
        self.cfg = cfg
        P, H, R, V = (cfg.block_decoder.hidden_size, cfg.token_decoder.hidden_size,
                      cfg.expansion_ratio, cfg.vocab_size)
        self.gpt_neox = GPTNeoX(cfg.token_decoder, V)
        self.embed_out = nn.Linear(H, V, bias=False)
        self.expansion_layer = nn.Conv1d(P, R * H, kernel_size=1)

    def forward(self, context: torch.Tensor, block_tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: context [M, P] (c_{b-1}), block_tokens [M, L_B] (block b) ->
        logits [M, L_B, V] for x_0..x_{L_B-1}."""
        R, LB, H = self.cfg.expansion_ratio, self.cfg.block_length, self.cfg.token_decoder.hidden_size
        M = context.shape[0]
        prefixes = F.linear(context, self.expansion_layer.weight[:, :, 0],
                            self.expansion_layer.bias).view(M, R, H)
        inputs = torch.cat([prefixes, self.gpt_neox.embed_in(block_tokens[:, :LB - 1])], dim=1)
        h = self.gpt_neox(inputs)  # positions 0..R+L_B-2
        return self.embed_out(h[:, R - 1:R - 1 + LB])


class Embedder(nn.Module):
    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, dim)


class BlockDecoder(nn.Module):
    def __init__(self, cfg: BlockConfig):
        super().__init__()
        self.gpt_neox = GPTNeoX(cfg.block_decoder, cfg.vocab_size)  # embed_in is never used


class BlockLM(nn.Module):
    kind = "block"

    def __init__(self, cfg: BlockConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.embedder = Embedder(cfg.vocab_size, cfg.embedder_dim)
        self.block_decoder = BlockDecoder(cfg)
        self.token_decoder = TokenDecoder(cfg)
        _init_weights(self.embedder, 1)
        _init_weights(self.block_decoder, cfg.block_decoder.num_layers)
        _init_weights(self.token_decoder, cfg.token_decoder.num_layers)

    def context_embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, N * L_B] -> c [B, N, P]."""
        B, T = tokens.shape
        LB = self.cfg.block_length
        blocks = self.embedder.embeddings(tokens).reshape(B, T // LB, -1)  # concat per block
        return self.block_decoder.gpt_neox(blocks)

    def target_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, N * L_B] -> logits [B, (N-1) * L_B, V] for tokens[:, L_B:]."""
        B, T = tokens.shape
        LB = self.cfg.block_length
        if T % LB or T < 2 * LB:
            raise ValueError(f"sequence length {T} must be a multiple of L_B={LB}, >= 2 blocks")
        N = T // LB
        ctx = self.context_embeddings(tokens)[:, :-1].reshape(B * (N - 1), -1)
        blocks = tokens[:, LB:].reshape(B * (N - 1), LB)
        return self.token_decoder(ctx, blocks).reshape(B, (N - 1) * LB, -1)

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over every token of blocks 1..N-1 (left padding lives only in
        block 0, which is never a target)."""
        logits = self.target_logits(tokens)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               tokens[:, self.cfg.block_length:].reshape(-1))

    def non_embedding_parameters(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters()
                   if not n.endswith(("embed_in.weight", "embeddings.weight", "embed_out.weight")))

    def config_json(self) -> dict:
        return self.cfg.to_json()


class VanillaLM(nn.Module):
    kind = "vanilla"

    def __init__(self, cfg: VanillaConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.gpt_neox = GPTNeoX(cfg.stack, cfg.vocab_size)
        self.embed_out = nn.Linear(cfg.stack.hidden_size, cfg.vocab_size, bias=False)
        _init_weights(self, cfg.stack.num_layers)

    def target_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, T] -> logits [B, T-1, V] for tokens[:, 1:]."""
        return self.embed_out(self.gpt_neox(self.gpt_neox.embed_in(tokens[:, :-1])))

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.target_logits(tokens)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))

    def non_embedding_parameters(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters()
                   if not n.endswith(("embed_in.weight", "embed_out.weight")))

    def config_json(self) -> dict:
        return self.cfg.to_json()


def build(cfg) -> nn.Module:
    if isinstance(cfg, BlockConfig):
        return BlockLM(cfg)
    if isinstance(cfg, VanillaConfig):
        return VanillaLM(cfg)
    raise TypeError(f"unknown config {type(cfg)}")


def export_tensors(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> Dict[str, torch.Tensor]:
    """state_dict with the official names, cast to the storage dtype."""
    return {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}


def from_reference_tensors(cfg, tensors: Dict[str, torch.Tensor],
                           dtype: torch.dtype = torch.float32) -> nn.Module:
    """Builds a trainable module holding the given official-name tensors."""
    model = build(cfg).to(dtype)
    state = {k: v.to(dtype) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    return model
