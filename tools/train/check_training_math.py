#!/usr/bin/python3
"""Checks that the training modules (tools/train/model.py) compute the reference's math.

  /usr/bin/python3 tools/train/check_training_math.py

On random, non-degenerate weights (the reference's make_random_model) of several shapes:
  1. Block model: for a batch of sequences whose first block is left-padded by a random number
     (0..L_B-1) of pad tokens, exactly as train.py builds them, the batched training forward's
     log-probabilities of every target token equal the reference's score() of the unpadded
     tokens (which pads the same way), position by position; the training loss equals the mean
     of -logprob over the scored tokens. In float64 (tolerance 1e-9) and float32 (1e-4).
  2. Vanilla model: the same against the reference VanillaModel.
  3. A freshly initialized training model exports (export_tensors) exactly the official
     tensor names and shapes, which the reference loads through the normal path (BF16 file,
     config.json), and the loaded model scores like the training module.
Exits 1 on the first mismatch.
"""

import json
import os
import random
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as tm  # noqa: E402

ref = tm.ref


def stack(D, layers, heads=None, inter=None, **kw):
    return ref.StackConfig(hidden_size=D, num_layers=layers,
                           num_heads=heads or D // ref.default_head_dim(D),
                           intermediate_size=inter or 4 * D, **kw)


BLOCK_CONFIGS = [
    ref.BlockConfig(vocab_size=97, block_length=4, expansion_ratio=2,
                    block_decoder=stack(64, 2), token_decoder=stack(64, 2)),
    ref.BlockConfig(vocab_size=61, block_length=2, expansion_ratio=3,
                    block_decoder=stack(48, 2, heads=3, inter=80, rotary_pct=0.5),
                    token_decoder=stack(32, 1, rotary_base=500.0, layer_norm_eps=1e-6)),
    ref.BlockConfig(vocab_size=40, block_length=8, expansion_ratio=1,
                    block_decoder=stack(64, 1, parallel_residual=False),
                    token_decoder=stack(96, 2, heads=3, rotary_pct=1.0)),
]
VANILLA_CONFIGS = [
    ref.VanillaConfig(vocab_size=97, stack=stack(64, 3, inter=200)),
    ref.VanillaConfig(vocab_size=50, stack=stack(48, 2, heads=3, rotary_pct=1.0,
                                                  parallel_residual=False)),
]

FAILURES = []


def check(cond: bool, message: str) -> None:
    status = "ok  " if cond else "FAIL"
    print(f"{status} {message}")
    if not cond:
        FAILURES.append(message)


def block_batch(rng: random.Random, cfg, batch: int, n_blocks: int):
    """Like train.py: each row = pad (random 0..L_B-1) zeros + real tokens; also returns the
    real tokens and the pad counts."""
    LB, V = cfg.block_length, cfg.vocab_size
    rows, reals, pads = [], [], []
    for _ in range(batch):
        pad = rng.randrange(LB)
        real = [rng.randrange(V) for _ in range(n_blocks * LB - pad)]
        rows.append([0] * pad + real)
        reals.append(real)
        pads.append(pad)
    return torch.tensor(rows), reals, pads


def compare_block(cfg, seed: int, dtype: torch.dtype, tol: float) -> None:
    tensors = ref.make_random_model(cfg, seed, "F32")
    reference = ref.BlockModel(tensors, cfg, dtype)
    trainable = tm.from_reference_tensors(cfg, tensors, dtype)
    rng = random.Random(seed)
    LB = cfg.block_length
    tokens, reals, pads = block_batch(rng, cfg, batch=3, n_blocks=6)
    with torch.no_grad():
        logits = trainable.target_logits(tokens)
        lp = torch.log_softmax(logits, dim=-1).gather(-1, tokens[:, LB:, None])[..., 0]
        loss = float(trainable.loss(tokens))
    worst, all_ref = 0.0, []
    for b, (real, pad) in enumerate(zip(reals, pads)):
        ref_lp = reference.score(real)  # the reference pads `pad` zeros itself
        n_unscored = LB - pad
        same_nones = all(x is None for x in ref_lp[:n_unscored]) and all(
            x is not None for x in ref_lp[n_unscored:])
        check(same_nones, f"block cfg seed {seed}: reference leaves exactly the first block "
                          f"unscored (pad {pad})")
        got = lp[b].tolist()
        want = ref_lp[n_unscored:]
        all_ref.extend(want)
        worst = max(worst, max(abs(g - w) for g, w in zip(got, want)))
    check(worst < tol, f"block V={cfg.vocab_size} L_B={LB} R={cfg.expansion_ratio} "
                       f"P={cfg.block_decoder.hidden_size} H={cfg.token_decoder.hidden_size} "
                       f"{dtype}: training logprobs == reference (max diff {worst:.2e})")
    mean_nll = -sum(all_ref) / len(all_ref)
    check(abs(loss - mean_nll) < tol, f"  loss {loss:.6f} == mean reference NLL {mean_nll:.6f}")


def compare_vanilla(cfg, seed: int, dtype: torch.dtype, tol: float) -> None:
    tensors = ref.make_random_model(cfg, seed, "F32")
    reference = ref.VanillaModel(tensors, cfg, dtype)
    trainable = tm.from_reference_tensors(cfg, tensors, dtype)
    rng = random.Random(seed)
    tokens = torch.tensor([[rng.randrange(cfg.vocab_size) for _ in range(23)] for _ in range(3)])
    with torch.no_grad():
        lp = torch.log_softmax(trainable.target_logits(tokens), -1).gather(
            -1, tokens[:, 1:, None])[..., 0]
        loss = float(trainable.loss(tokens))
    worst, all_ref = 0.0, []
    for b in range(tokens.shape[0]):
        want = reference.score(tokens[b].tolist())[1:]
        all_ref.extend(want)
        worst = max(worst, max(abs(g - w) for g, w in zip(lp[b].tolist(), want)))
    check(worst < tol, f"vanilla V={cfg.vocab_size} D={cfg.stack.hidden_size} "
                       f"{'parallel' if cfg.stack.parallel_residual else 'sequential'} {dtype}: "
                       f"training logprobs == reference (max diff {worst:.2e})")
    mean_nll = -sum(all_ref) / len(all_ref)
    check(abs(loss - mean_nll) < tol, f"  loss {loss:.6f} == mean reference NLL {mean_nll:.6f}")


def check_export(cfg, seed: int) -> None:
    torch.manual_seed(seed)
    trainable = tm.build(cfg)
    with torch.no_grad():  # make LayerNorms non-trivial so a mix-up would show
        for name, p in trainable.named_parameters():
            if "layernorm" in name or "layer_norm" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    exported = tm.export_tensors(trainable, torch.bfloat16)
    expected = ref.make_random_model(cfg, 0, "F32")
    same_names = sorted(exported) == sorted(expected)
    check(same_names, f"{type(cfg).__name__}: exported names == official names "
                      f"({len(exported)} tensors)")
    check(all(list(exported[k].shape) == list(expected[k].shape) for k in expected
              if k in exported), "  exported shapes == official shapes")
    with tempfile.TemporaryDirectory() as tmp:
        ref.save_model(tmp, exported, cfg.to_json())
        loaded = ref.load_model(tmp)
    tokens = [random.Random(seed).randrange(cfg.vocab_size) for _ in range(17)]
    trainable_bf16 = tm.from_reference_tensors(cfg, {k: v.float() for k, v in exported.items()})
    LB = cfg.block_length if isinstance(cfg, ref.BlockConfig) else 1
    pad = (-len(tokens)) % LB
    with torch.no_grad():
        batch = torch.tensor([[0] * pad + tokens])
        lp = torch.log_softmax(trainable_bf16.target_logits(batch), -1).gather(
            -1, batch[:, LB:, None])[0, :, 0].tolist()
    want = [x for x in loaded.score(tokens) if x is not None]
    diff = max(abs(a - b) for a, b in zip(lp, want))
    check(len(lp) == len(want) and diff < 1e-4,
          f"  reference load_model() of the exported BF16 directory scores like the training "
          f"module (max diff {diff:.2e})")


def main() -> int:
    torch.set_num_threads(1)
    for i, cfg in enumerate(BLOCK_CONFIGS):
        compare_block(cfg, 10 + i, torch.float64, 1e-9)
        compare_block(cfg, 20 + i, torch.float32, 1e-4)
    for i, cfg in enumerate(VANILLA_CONFIGS):
        compare_vanilla(cfg, 30 + i, torch.float64, 1e-9)
        compare_vanilla(cfg, 40 + i, torch.float32, 1e-4)
    check_export(BLOCK_CONFIGS[0], 1)
    check_export(VANILLA_CONFIGS[0], 2)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) FAILED", file=sys.stderr)
        return 1
    print("all training-math checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
