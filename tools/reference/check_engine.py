#!/usr/bin/python3
"""Acceptance check of the C++ `blockserve` tool against the PyTorch reference.

  /usr/bin/python3 tools/reference/check_engine.py [--bin build/bin/blockserve] [--cases 12]
      [--seed 0] [--keep] [--tol 1e-3] [--extra-args "--threads 1"]

Generates --cases random models of random allowed sizes (block and vanilla; F32 and BF16;
block models without config.json, so the engine must infer every size from the tensor shapes;
vanilla models with a Hugging Face style config.json) into a temporary directory, then for each:
  - `blockserve score --model DIR --tokens "ID ..." --json` on several sequences: the reported
    "logprobs" (null where not scored) must equal the reference within --tol (absolute), with the
    same null positions; "nll" within --tol.
  - `blockserve run --model DIR --tokens "ID ..." --max-new-tokens N --greedy --ignore-eos --json`
    on several prompts: the generated "tokens" must equal the reference exactly. Prompts whose
    reference top1-top2 logit margin falls below 1e-3 at some step are reported as ambiguous
    and do not count as failures.
Exit status: 0 all matched, 1 a mismatch or an engine error, 2 usage error / no binary.

`--bin tools/reference/block_transformer_ref.py` runs the reference against itself (a check
of this checker).
"""

import argparse
import json
import math
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import block_transformer_ref as ref  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
AMBIGUOUS_MARGIN = 1e-3


def random_stack(rng: random.Random, D: int, heads: int, max_layers: int, **kw) -> ref.StackConfig:
    inter = 4 * D if rng.random() < 0.6 else 8 * rng.randint(max(1, D // 8), D)
    return ref.StackConfig(hidden_size=D, num_layers=rng.randint(1, max_layers), num_heads=heads,
                           intermediate_size=inter, **kw)


def rule_stack(rng, D, max_layers):
    return random_stack(rng, D, D // ref.default_head_dim(D), max_layers)


def random_block_config(rng: random.Random, block_lengths) -> ref.BlockConfig:
    LB = rng.choice(block_lengths)
    # Hidden sizes the head-dim rule can split (multiples of 32 up to 256; 320 = 5 x 64).
    sizes = [32, 64, 96, 128, 160, 192, 256, 320]
    P = rng.choice([s for s in sizes if s % LB == 0] or [32 * LB])
    H = rng.choice(sizes)
    return ref.BlockConfig(vocab_size=rng.randint(64, 512), block_length=LB,
                           expansion_ratio=rng.randint(1, 4),
                           block_decoder=rule_stack(rng, P, 3), token_decoder=rule_stack(rng, H, 3))


def random_vanilla_config(rng: random.Random) -> ref.VanillaConfig:
    hd = rng.choice([16, 32, 64])
    heads = rng.randint(1, 6)
    stack = random_stack(rng, hd * heads, heads, 3, rotary_pct=rng.choice([0.25, 0.5, 1.0]),
                         parallel_residual=rng.random() < 0.6,
                         rotary_base=rng.choice([10000.0, 10000.0, 500.0]))
    return ref.VanillaConfig(vocab_size=rng.randint(64, 512), stack=stack)


def describe(cfg) -> str:
    if isinstance(cfg, ref.BlockConfig):
        b, t = cfg.block_decoder, cfg.token_decoder
        return (f"block V={cfg.vocab_size} L_B={cfg.block_length} R={cfg.expansion_ratio} "
                f"P={b.hidden_size}x{b.num_layers}L/{b.num_heads}h/I{b.intermediate_size} "
                f"H={t.hidden_size}x{t.num_layers}L/{t.num_heads}h/I{t.intermediate_size}")
    s = cfg.stack
    return (f"vanilla V={cfg.vocab_size} D={s.hidden_size}x{s.num_layers}L/{s.num_heads}h/"
            f"I{s.intermediate_size} rot={s.rotary_pct} base={s.rotary_base:g} "
            f"parallel={s.parallel_residual}")


def run_engine(cmd, timeout):
    """Runs one engine command; returns (parsed JSON object or None, error text)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s: {shlex.join(cmd)}"
    except OSError as e:
        return None, f"cannot run {cmd[0]}: {e}"
    if proc.returncode != 0:
        return None, (f"exit status {proc.returncode}: {shlex.join(cmd)}\n"
                      f"    stderr: {proc.stderr.strip()[-2000:]}")
    for line in reversed(proc.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line), ""
            except json.JSONDecodeError as e:
                return None, f"bad JSON ({e}) from {shlex.join(cmd)}: {line[:500]}"
    return None, f"no JSON object on stdout of {shlex.join(cmd)}: {proc.stdout[-500:]!r}"


def compare_logprobs(expected, got):
    """Returns (max abs diff, problem text or '')."""
    if not isinstance(got, list) or len(got) != len(expected):
        return math.inf, f"logprobs length {len(got) if isinstance(got, list) else got!r} " \
                         f"!= {len(expected)}"
    worst = 0.0
    for i, (e, g) in enumerate(zip(expected, got)):
        if (e is None) != (g is None):
            return math.inf, f"token {i}: expected {e}, got {g} (null positions differ)"
        if e is not None:
            if not isinstance(g, (int, float)) or not math.isfinite(g):
                return math.inf, f"token {i}: got {g!r}"
            worst = max(worst, abs(e - g))
    return worst, ""


def check_case(index, cfg, dtype, model_dir, bin_cmd, args, rng):
    """Returns (failures, ambiguous, max logprob diff, text lines)."""
    tensors = ref.make_random_model(cfg, rng.randrange(2**31), dtype)
    config_json = cfg.to_json() if isinstance(cfg, ref.VanillaConfig) else None
    ref.save_model(model_dir, tensors, config_json)
    model = ref.load_model(model_dir)
    assert model.cfg == cfg
    LB = cfg.block_length if isinstance(cfg, ref.BlockConfig) else 1
    V = cfg.vocab_size
    lines = [f"case {index}: {describe(cfg)} {dtype}"]
    failures, ambiguous, worst = 0, 0, 0.0
    extra = shlex.split(args.extra_args)

    lengths = [rng.randint(1, 2 * LB + 2), rng.randint(LB + 1, 24), rng.randint(40, 70)]
    for n in lengths:
        tokens = [0 if rng.random() < 0.1 else rng.randrange(V) for _ in range(n)]
        expected = model.score(tokens)
        cmd = bin_cmd + ["score", "--model", model_dir, "--tokens", " ".join(map(str, tokens)),
                         "--json"] + extra
        got, err = run_engine(cmd, args.timeout)
        if got is None:
            failures += 1
            lines.append(f"  FAIL score len {n}: {err}")
            continue
        diff, problem = compare_logprobs(expected, got.get("logprobs"))
        scored = [x for x in expected if x is not None]
        if not problem and diff > args.tol:
            problem = f"max |dlogprob| {diff:.3g} > {args.tol:g}"
        if not problem and scored:
            nll = -sum(scored) / len(scored)
            if not isinstance(got.get("nll"), (int, float)) or abs(got["nll"] - nll) > args.tol:
                problem = f"nll {got.get('nll')} != reference {nll:.6f}"
            elif not isinstance(got.get("ppl"), (int, float)) or \
                    abs(got["ppl"] - math.exp(nll)) > args.tol * math.exp(nll):
                problem = f"ppl {got.get('ppl')} != reference {math.exp(nll):.6f}"
        if problem:
            failures += 1
            lines.append(f"  FAIL score len {n}: {problem}")
        else:
            lines.append(f"  ok   score len {n}: max |dlogprob| {diff:.2e}")
        worst = max(worst, diff if math.isfinite(diff) else worst)

    for prompt_len in (rng.randint(1, 3), rng.choice([LB, 2 * LB, 3 * LB]), rng.randint(4, 20)):
        prompt = [rng.randrange(1, V) for _ in range(prompt_len)]
        max_new = rng.randint(1, 3 * LB + 5)
        expected = model.greedy(prompt, max_new)
        margin = min(expected["margins"])
        cmd = bin_cmd + ["run", "--model", model_dir, "--tokens", " ".join(map(str, prompt)),
                         "--max-new-tokens", str(max_new), "--greedy", "--ignore-eos",
                         "--json"] + extra
        got, err = run_engine(cmd, args.timeout)
        label = f"greedy prompt {prompt_len} new {max_new}"
        if got is None:
            failures += 1
            lines.append(f"  FAIL {label}: {err}")
            continue
        if got.get("tokens") == expected["tokens"]:
            lines.append(f"  ok   {label}: margin {margin:.3g}")
        elif margin < AMBIGUOUS_MARGIN:
            ambiguous += 1
            lines.append(f"  AMBIGUOUS {label}: reference margin {margin:.2e} < "
                         f"{AMBIGUOUS_MARGIN:g}; tokens differ (not counted)")
        else:
            failures += 1
            first = next((i for i, (a, b) in enumerate(zip(expected["tokens"], got.get("tokens")
                                                           or [])) if a != b), None)
            lines.append(f"  FAIL {label}: tokens differ (first at {first}; margin {margin:.3g})"
                         f"\n    expected {expected['tokens']}\n    got      {got.get('tokens')}")
    return failures, ambiguous, worst, lines


def main():
    parser = argparse.ArgumentParser(
        description="Checks `blockserve score/run` against the PyTorch reference.")
    parser.add_argument("--bin", default=os.path.join(REPO_ROOT, "build", "bin", "blockserve"),
                        help="the blockserve binary (or a command line, e.g. the reference script)")
    parser.add_argument("--cases", type=int, default=12, help="number of random models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary model directories")
    parser.add_argument("--tol", type=float, default=1e-3, help="absolute logprob tolerance")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per engine call")
    parser.add_argument("--block-lengths", default="1,2,3,4,8",
                        help="comma-separated block lengths to draw from")
    parser.add_argument("--vanilla-fraction", type=float, default=0.33)
    parser.add_argument("--extra-args", default="",
                        help="extra flags for both engine commands, e.g. \"--threads 1\"")
    parser.add_argument("--verbose", action="store_true", help="print every comparison")
    args = parser.parse_args()
    if args.cases < 1:
        parser.error("--cases must be at least 1")
    bin_cmd = shlex.split(args.bin)
    if not bin_cmd or not (os.path.isfile(bin_cmd[0]) or shutil.which(bin_cmd[0])):
        print(f"check_engine: no such binary: {args.bin}", file=sys.stderr)
        return 2
    bin_cmd[0] = os.path.abspath(bin_cmd[0]) if os.path.isfile(bin_cmd[0]) else bin_cmd[0]
    block_lengths = [int(x) for x in args.block_lengths.split(",")]
    torch.set_num_threads(1)

    tmp = tempfile.mkdtemp(prefix="blockserve_check_")
    start = time.time()
    total_failures = total_ambiguous = 0
    worst = 0.0
    try:
        for i in range(args.cases):
            rng = random.Random(args.seed * 100003 + i)
            vanilla = rng.random() < args.vanilla_fraction
            cfg = random_vanilla_config(rng) if vanilla else random_block_config(rng, block_lengths)
            dtype = rng.choice(["F32", "BF16"])
            model_dir = os.path.join(tmp, f"case{i}")
            failures, ambiguous, case_worst, lines = check_case(i, cfg, dtype, model_dir, bin_cmd,
                                                                args, rng)
            total_failures += failures
            total_ambiguous += ambiguous
            worst = max(worst, case_worst)
            status = "FAIL" if failures else "ok"
            print(f"[{status}] {lines[0]}  (max |dlogprob| {case_worst:.2e})")
            for line in lines[1:]:
                if args.verbose or not line.startswith("  ok"):
                    print(line)
            sys.stdout.flush()
    finally:
        if args.keep:
            print(f"models kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.cases} models, {total_failures} failure(s), {total_ambiguous} ambiguous, "
          f"max |dlogprob| {worst:.2e} (tol {args.tol:g}), {time.time() - start:.1f} s")
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
