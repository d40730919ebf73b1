#!/usr/bin/python3
"""Writes the golden model fixtures under tests/data/models/ (see docs/reference.md).

  /usr/bin/python3 tools/reference/make_fixtures.py [--out tests/data/models]

For every case: tests/data/models/<case>/model.safetensors (+ config.json where the case has
one) and expected.json, computed by the PyTorch reference (block_transformer_ref.py) from the
model as loaded back from disk. Fully deterministic (fixed seeds): rerunning rewrites identical
files. The C++ tests read these files and need no PyTorch.
"""

import argparse
import json
import os
import random
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import block_transformer_ref as ref  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Every greedy step of a fixture has a top1 - top2 logit margin at least this large (the brief
# asks for 1e-3; we keep 10x headroom so that summation-order differences can never flip a
# token). Prompts whose generation violates it are redrawn.
MIN_MARGIN = 1e-2


def stack(D, layers, heads=None, inter=None, **kw):
    return ref.StackConfig(hidden_size=D, num_layers=layers,
                           num_heads=heads or D // ref.default_head_dim(D),
                           intermediate_size=inter or 4 * D, **kw)


# name -> (config, dtype, seed, config.json contents or None, description)
CASES = {
    "block_l4_r2": dict(
        config=ref.BlockConfig(vocab_size=128, block_length=4, expansion_ratio=2,
                               block_decoder=stack(32, 2), token_decoder=stack(32, 2)),
        dtype="F32", seed=1001, config_json=None,
        description="paper-shaped block model (L_B=4, R=2, P=H), 2+2 layers, 1 head each"),
    "block_l2_r1_inter": dict(
        config=ref.BlockConfig(vocab_size=128, block_length=2, expansion_ratio=1,
                               block_decoder=stack(64, 1, inter=96), token_decoder=stack(32, 1)),
        dtype="F32", seed=1002, config_json=None,
        description="L_B=2, R=1, P=64 (2 heads) != H=32; 1+1 layers; block decoder "
                    "intermediate size 96 (1.5x, not 4x)"),
    "block_l8_r4": dict(
        config=ref.BlockConfig(vocab_size=128, block_length=8, expansion_ratio=4,
                               block_decoder=stack(64, 1, inter=128), token_decoder=stack(32, 1)),
        dtype="F32", seed=1003, config_json=None,
        description="L_B=8, R=4 (token decoder sequence of 11), P=64 != H=32, 1+1 layers, "
                    "block decoder intermediate 128 (2x)"),
    "block_l2_r2_odd_f16": dict(
        config=ref.BlockConfig(vocab_size=128, block_length=2, expansion_ratio=2,
                               block_decoder=stack(96, 1), token_decoder=stack(32, 1)),
        dtype="F16", seed=1004, config_json=None,
        description="F16 weights; P=96 -> 3 heads by the head-dim rule, H=32, L_B=2, R=2"),
    "block_l8_r1_odd_bf16": dict(
        config=ref.BlockConfig(vocab_size=256, block_length=8, expansion_ratio=1,
                               block_decoder=stack(32, 2), token_decoder=stack(96, 1, inter=192)),
        dtype="BF16", seed=1005, config_json=None,
        description="BF16 weights (like the paper's checkpoints); H=96 -> 3 heads, token "
                    "intermediate 192 (2x), L_B=8, R=1, V=256"),
    "block_config_rotary": dict(
        config=ref.BlockConfig(
            vocab_size=128, block_length=4, expansion_ratio=1,
            block_decoder=stack(64, 1, heads=4, inter=128, rotary_pct=0.5, rotary_base=500.0),
            token_decoder=stack(48, 1, heads=3, layer_norm_eps=1e-6)),
        dtype="F32", seed=1006,
        config_json={"model_type": "block_transformer",
                     "block_decoder": {"num_attention_heads": 4, "rotary_pct": 0.5,
                                       "rotary_emb_base": 500},
                     "token_decoder": {"num_attention_heads": 3, "layer_norm_eps": 1e-6}},
        description="config.json overrides: block decoder 4 heads (rule: 2), rotary_pct 0.5, "
                    "rotary base 500; token decoder H=48 with 3 heads (hd 16; the rule cannot "
                    "apply) and layer_norm_eps 1e-6"),
    "block_config_sequential": dict(
        config=ref.BlockConfig(
            vocab_size=128, block_length=2, expansion_ratio=4,
            block_decoder=stack(32, 2, parallel_residual=False, layer_norm_eps=1e-6),
            token_decoder=stack(32, 2, parallel_residual=False)),
        dtype="F32", seed=1007,
        config_json={"model_type": "block_transformer", "vocab_size": 128, "eos_token_id": 0,
                     "block_length": 2, "expansion_ratio": 4,
                     "block_decoder": {"use_parallel_residual": False, "layer_norm_eps": 1e-6},
                     "token_decoder": {"use_parallel_residual": False}},
        description="config.json: sequential residual (use_parallel_residual false) in both "
                    "stacks, block decoder layer_norm_eps 1e-6; L_B=2, R=4, 2+2 layers"),
    "vanilla_parallel_rot025": dict(
        config=ref.VanillaConfig(vocab_size=128, stack=stack(48, 2, heads=3)),
        dtype="F32", seed=2001, config_json="hf",
        description="Pythia-style GPT-NeoX: parallel residual, rotary_pct 0.25, 3 heads of 16"),
    "vanilla_sequential_rot1_bf16": dict(
        config=ref.VanillaConfig(vocab_size=128, stack=stack(64, 2, heads=4, rotary_pct=1.0,
                                                             parallel_residual=False)),
        dtype="BF16", seed=2002, config_json="hf",
        description="GPT-NeoX, BF16 weights, sequential residual, rotary_pct 1.0, 4 heads"),
    "vanilla_v512_base500": dict(
        config=ref.VanillaConfig(vocab_size=512, stack=stack(32, 1, heads=2, rotary_base=500.0,
                                                             layer_norm_eps=1e-6,
                                                             parallel_residual=False)),
        dtype="F32", seed=2003, config_json="hf",
        description="GPT-NeoX, V=512, 1 layer, 2 heads, rotary base 500, layer_norm_eps 1e-6, "
                    "sequential residual"),
}


def informational_config(cfg) -> dict:
    js = cfg.to_json()
    if isinstance(cfg, ref.BlockConfig):
        js["embedder_dim"] = cfg.embedder_dim
        js["block_decoder"]["head_dim"] = cfg.block_decoder.head_dim
        js["block_decoder"]["rotary_dims"] = cfg.block_decoder.rotary_dims
        js["token_decoder"]["head_dim"] = cfg.token_decoder.head_dim
        js["token_decoder"]["rotary_dims"] = cfg.token_decoder.rotary_dims
    else:
        js["head_dim"] = cfg.stack.head_dim
        js["rotary_dims"] = cfg.stack.rotary_dims
    return js


def score_sequences(rng: random.Random, kind: str, V: int, LB: int):
    draw = lambda n: [rng.randrange(V) for _ in range(n)]
    if kind == "block":
        seqs = [draw(1), draw(LB), draw(LB + 1), draw(2 * LB),
                [0, 0] + draw(3 * LB - 5) + [0] + [V - 1],  # ids 0 (= pad/EOS) and V-1
                [0] * (2 * LB + 1),
                draw(57), draw(64)]
    else:
        seqs = [draw(1), draw(2), draw(5), [0, 0] + draw(10) + [0, V - 1, 0], [0] * 6, draw(50)]
    return seqs


def greedy_requests(kind: str, LB: int):
    """(prompt length, max_new_tokens, leading zeros in the prompt)."""
    if kind == "block":
        return [(1, 2 * LB + 1, 0), (LB, 3 * LB, 0), (2 * LB - 1, 1, 0), (3 * LB, 13, 1),
                (5, 4 * LB + 3, 2)]
    return [(1, 10, 0), (4, 7, 1), (9, 1, 0), (16, 20, 0)]


def greedy_fixture(model, rng, V, prompt_len, max_new, zeros):
    for attempt in range(200):
        n_zeros = min(zeros, prompt_len)
        prompt = [0] * n_zeros + [rng.randrange(1, V) for _ in range(prompt_len - n_zeros)]
        result = model.greedy(prompt, max_new)
        margin = min(result["margins"])
        if margin >= MIN_MARGIN:
            check = model.greedy(prompt, max_new, use_cache=not (model.kind == "block"))
            assert check["tokens"] == result["tokens"], "cached and recomputed greedy differ"
            assert len(result["tokens"]) == max_new
            return {"prompt": prompt, "max_new_tokens": max_new, "tokens": result["tokens"],
                    "min_margin": margin}
    raise RuntimeError(f"no prompt of length {prompt_len} with margin >= {MIN_MARGIN}")


def make_case(name: str, case: dict, out_root: str) -> dict:
    cfg = case["config"]
    kind = "block" if isinstance(cfg, ref.BlockConfig) else "vanilla"
    case_dir = os.path.join(out_root, name)
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    tensors = ref.make_random_model(cfg, case["seed"], case["dtype"])
    config_json = cfg.to_json() if case["config_json"] == "hf" else case["config_json"]
    ref.save_model(case_dir, tensors, config_json)

    model = ref.load_model(case_dir)  # the expected values come from the files on disk
    assert model.cfg == cfg, f"{name}: loaded config {model.cfg} != intended {cfg}"
    V = cfg.vocab_size
    LB = cfg.block_length if kind == "block" else 1
    rng = random.Random(case["seed"])

    expected = {"kind": kind, "description": case["description"], "dtype": case["dtype"],
                "config": informational_config(cfg)}
    expected["config"]["has_config_json"] = config_json is not None
    expected["score"] = [{"tokens": seq, "logprobs": model.score(seq)}
                         for seq in score_sequences(rng, kind, V, LB)]
    expected["greedy"] = [greedy_fixture(model, rng, V, *req) for req in greedy_requests(kind, LB)]
    if kind == "block":
        toks = [rng.randrange(V) for _ in range(3 * LB)]
        values = model.context_embeddings(toks)
        expected["context_embeddings"] = [{"tokens": toks,
                                           "values": [[float(v) for v in row] for row in values]}]
    check_against_float64(case_dir, expected)
    with open(os.path.join(case_dir, "expected.json"), "w") as f:
        f.write(format_expected(expected))
    return expected


def check_against_float64(case_dir: str, expected: dict) -> None:
    """The float32 expectations agree with a float64 evaluation of the same weights: logprobs
    within 1e-4 (50x inside the engine tolerance), identical greedy tokens."""
    model64 = ref.load_model(case_dir, torch.float64)
    for entry in expected["score"]:
        for a, b in zip(entry["logprobs"], model64.score(entry["tokens"])):
            assert (a is None) == (b is None) and (a is None or abs(a - b) < 1e-4), (a, b)
    for entry in expected["greedy"]:
        tokens = model64.greedy(entry["prompt"], entry["max_new_tokens"])["tokens"]
        assert tokens == entry["tokens"], f"{case_dir}: float64 greedy differs"


def format_expected(expected: dict) -> str:
    """JSON with one line per score / greedy / context-embedding entry (diff-friendly)."""
    lines = ["{"]
    keys = list(expected)
    for i, key in enumerate(keys):
        comma = "," if i + 1 < len(keys) else ""
        value = expected[key]
        if isinstance(value, list):
            lines.append(f" {json.dumps(key)}: [")
            lines.extend("  " + json.dumps(entry) + ("," if j + 1 < len(value) else "")
                         for j, entry in enumerate(value))
            lines.append(" ]" + comma)
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == expected
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "data", "models"))
    parser.add_argument("--only", nargs="*", help="case names to (re)write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for name, case in CASES.items():
        if args.only and name not in args.only:
            continue
        t0 = time.time()
        expected = make_case(name, case, args.out)
        case_dir = os.path.join(args.out, name)
        size = sum(os.path.getsize(os.path.join(case_dir, f)) for f in os.listdir(case_dir))
        total += size
        margin = min(g["min_margin"] for g in expected["greedy"])
        print(f"{name:32s} {case['dtype']:5s} {size / 1024:8.1f} KiB  min_margin {margin:.4f}  "
              f"{time.time() - t0:.2f} s")
    print(f"total {total / 1024:.1f} KiB in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
