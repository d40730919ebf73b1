#!/usr/bin/python3
"""Trains a Block Transformer (--arch block) or a vanilla GPT-NeoX (--arch vanilla) on the
prepared corpus, with the paper's objective, and exports it in the official checkpoint naming.

  /usr/bin/python3 tools/train/train.py --arch block --config tools/train/configs/sotu-block.json \
      --corpus /tmp/sotu_corpus --tokenizer /tmp/sotu_work/tokenizer.json \
      --out /tmp/sotu_work/block --seed 1

Data: the train split's addresses, each encoded with the tokenizer and followed by the
end-of-text token (id 0), concatenated into one token stream (cached next to --out). Every
training sequence is a window of seq_len tokens at a uniformly random offset of that stream.

Block model (--arch block): the paper's objective. The first block of every sequence is
left-padded with a random number 0..L_B-1 of pad tokens (id 0), as the paper did for its small
models, so the window holds seq_len - pad stream tokens and block boundaries fall at every
offset; the token decoder predicts all L_B tokens of block b (b >= 1) from the context embedding
c_{b-1}; block 0 (which holds all the padding) is never a target.
Vanilla model (--arch vanilla): next-token prediction on the same windows (no padding).
The random windows and pad counts are drawn from the same seeded generator for both
architectures, so with the same --seed, seq_len, batch size and step count both see the same
data (the vanilla model ignores the pad counts and sees up to L_B-1 more tokens per window).

Optimization: AdamW (betas 0.9/0.95, weight decay on matrices only), linear warmup then cosine
decay to min_lr_ratio * lr over the planned steps, gradient clipping. The plan is max_tokens
(training tokens = steps * batch * seq_len); --max-minutes stops early if time runs out (the
export then says so). torch.set_num_threads(--threads, default 2). Reproducible: the same seed,
config and thread count give the same run.

Progress: one line every log_every steps (step, loss, lr, tokens/s, elapsed, ETA), held-out
loss every eval_every steps on fixed windows of the held-out split.

Output directory: model.safetensors (BF16 by default, official names), config.json,
tokenizer.json (copied), train_log.json (settings, parameter counts, curve, wall time).

Config file (JSON): {"model": <config.json of the model, as exported>, "train": {settings}};
command-line options override "train" settings.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time
import hashlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_tokenizer  # noqa: E402
import model as tm  # noqa: E402

ref = tm.ref

TRAIN_DEFAULTS = {
    "seq_len": 512,
    "batch_size": 8,
    "max_tokens": 1_000_000,
    "lr": 2e-3,
    "min_lr_ratio": 0.1,
    "warmup_steps": 30,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "log_every": 10,
    "eval_every": 100,
    "eval_windows": 32,
}


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def stack_from_json(js: dict) -> ref.StackConfig:
    hidden = js["hidden_size"]
    return ref.StackConfig(
        hidden_size=hidden,
        num_layers=js["num_hidden_layers"],
        num_heads=js.get("num_attention_heads", hidden // ref.default_head_dim(hidden)),
        intermediate_size=js.get("intermediate_size", 4 * hidden),
        rotary_pct=js.get("rotary_pct", 0.25),
        rotary_base=js.get("rotary_emb_base", 10000.0),
        layer_norm_eps=js.get("layer_norm_eps", 1e-5),
        parallel_residual=js.get("use_parallel_residual", True))


def model_config(arch: str, js: dict, vocab_size: int):
    """The model section of a config file -> reference config (vocab from the tokenizer)."""
    if js.get("vocab_size", vocab_size) != vocab_size:
        raise SystemExit(f"config vocab_size {js['vocab_size']} != tokenizer's {vocab_size}")
    if arch == "block":
        if js.get("model_type", "block_transformer") != "block_transformer":
            raise SystemExit(f"--arch block needs a block_transformer config, got {js}")
        cfg = ref.BlockConfig(vocab_size=vocab_size, block_length=js["block_length"],
                              expansion_ratio=js["expansion_ratio"],
                              block_decoder=stack_from_json(js["block_decoder"]),
                              token_decoder=stack_from_json(js["token_decoder"]),
                              eos_token_id=js.get("eos_token_id", 0))
    else:
        if js.get("model_type", "gpt_neox") != "gpt_neox":
            raise SystemExit(f"--arch vanilla needs a gpt_neox config, got {js}")
        cfg = ref.VanillaConfig(vocab_size=vocab_size, stack=stack_from_json(js),
                                eos_token_id=js.get("eos_token_id", 0),
                                bos_token_id=js.get("bos_token_id", 0),
                                max_position_embeddings=js.get("max_position_embeddings", 2048))
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def read_jsonl_texts(path: str):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def token_stream(corpus: str, split: str, tokenizer_path: str, cache_dir: str) -> torch.Tensor:
    """The split's documents, each followed by EOT (id 0), as one int64 tensor (cached)."""
    h = hashlib.sha256()
    for path in (os.path.join(corpus, f"{split}.jsonl"), tokenizer_path):
        with open(path, "rb") as f:
            h.update(f.read())
    cache = os.path.join(cache_dir, f"tokens-{split}-{h.hexdigest()[:16]}.pt")
    if os.path.exists(cache):
        return torch.load(cache)
    tok = bpe_tokenizer.Tokenizer.load(tokenizer_path)
    eot = tok.added[bpe_tokenizer.EOT]
    ids = []
    for text in read_jsonl_texts(os.path.join(corpus, f"{split}.jsonl")):
        ids.extend(tok.encode(text))
        ids.append(eot)
    stream = torch.tensor(ids, dtype=torch.long)
    os.makedirs(cache_dir, exist_ok=True)
    torch.save(stream, cache)
    return stream


class WindowSampler:
    """Random windows of a token stream. Both architectures draw (offset, pad) pairs from the
    same generator in the same order, so they see the same data."""

    def __init__(self, stream: torch.Tensor, seq_len: int, block_length: int, seed: int):
        self.stream = stream
        self.seq_len = seq_len
        self.block_length = block_length
        self.gen = torch.Generator().manual_seed(seed)

    def batch(self, batch_size: int, arch: str) -> torch.Tensor:
        T, LB = self.seq_len, self.block_length
        starts = torch.randint(0, len(self.stream) - T + 1, (batch_size,), generator=self.gen)
        pads = torch.randint(0, LB, (batch_size,), generator=self.gen)
        rows = []
        for s, pad in zip(starts.tolist(), pads.tolist()):
            if arch == "block":
                window = self.stream[s:s + T - pad]
                rows.append(torch.cat([torch.zeros(pad, dtype=torch.long), window]))
            else:
                rows.append(self.stream[s:s + T])
        return torch.stack(rows)


def eval_windows(stream: torch.Tensor, seq_len: int, count: int, block_length: int, arch: str):
    """Fixed held-out windows spread evenly over the stream (no padding: block aligned at the
    window start)."""
    step = max(1, (len(stream) - seq_len) // max(1, count - 1))
    rows = [stream[i * step:i * step + seq_len] for i in range(count)
            if i * step + seq_len <= len(stream)]
    return torch.stack(rows)


@torch.no_grad()
def heldout_loss(model, windows: torch.Tensor, batch_size: int) -> float:
    """Mean per-token NLL over the windows' targets."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        batch = windows[i:i + batch_size]
        logits = model.target_logits(batch)
        targets = batch[:, batch.shape[1] - logits.shape[1]:]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                targets.reshape(-1), reduction="sum")
        total += float(nll)
        count += targets.numel()
    model.train()
    return total / count


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def lr_at(step: int, total: int, settings: dict, time_fraction: float = 0.0) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * lr. time_fraction (with
    --time-schedule) pushes the decay ahead when the time budget runs out before the steps."""
    lr, warm, floor = settings["lr"], settings["warmup_steps"], settings["min_lr_ratio"]
    if step < warm:
        return lr * (step + 1) / warm
    progress = min(1.0, max((step - warm) / max(1, total - warm), time_fraction))
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model, settings: dict) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # Weight decay on the matrices of the layers; not on embeddings, LayerNorms, biases.
        if p.dim() >= 2 and not name.endswith(("embed_in.weight", "embeddings.weight")):
            decay.append(p)
        else:
            no_decay.append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": settings["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=settings["lr"], betas=(0.9, 0.95), eps=1e-8)


def fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def parameter_counts(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    return {"total": total, "non_embedding": model.non_embedding_parameters()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=("block", "vanilla"), required=True)
    parser.add_argument("--config", required=True, help="JSON: {model: ..., train: ...}")
    parser.add_argument("--corpus", required=True, help="directory from prepare_corpus.py")
    parser.add_argument("--tokenizer", required=True, help="tokenizer.json")
    parser.add_argument("--out", required=True, help="output model directory")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, default=30.0,
                        help="stop (and export) when training has run this long")
    parser.add_argument("--time-schedule", action="store_true",
                        help="let the time budget drive the schedule too: the cosine decay "
                             "follows max(step fraction, time fraction) and training ends, "
                             "fully decayed, at whichever budget (tokens or minutes) runs out "
                             "first (not step-reproducible; train_log.json records the tokens)")
    parser.add_argument("--dtype", choices=("bf16", "f16"), default="bf16",
                        help="storage dtype of model.safetensors")
    for key, value in TRAIN_DEFAULTS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=None,
                            help=f"overrides the config's train.{key} (default {value})")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config) as f:
        config_file = json.load(f)
    settings = dict(TRAIN_DEFAULTS)
    settings.update(config_file.get("train", {}))
    for key in TRAIN_DEFAULTS:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)

    tok = bpe_tokenizer.Tokenizer.load(args.tokenizer)
    if tok.added.get(bpe_tokenizer.EOT) != 0:
        raise SystemExit(f"{args.tokenizer}: {bpe_tokenizer.EOT} must have id 0")
    cfg = model_config(args.arch, config_file["model"], tok.vocab_size)
    LB = cfg.block_length if args.arch == "block" else 1
    T, B = settings["seq_len"], settings["batch_size"]
    if args.arch == "block" and T % cfg.block_length:
        raise SystemExit(f"seq_len {T} must be a multiple of block_length {cfg.block_length}")
    # Both architectures draw pads in 0..L_B-1 of the block config (4 unless set), so their
    # random streams stay in step; only the block model uses them.
    sampler_lb = cfg.block_length if args.arch == "block" else config_file.get(
        "train", {}).get("sampler_block_length", 4)

    os.makedirs(args.out, exist_ok=True)
    cache_dir = os.path.join(os.path.dirname(os.path.abspath(args.out)), "token_cache")
    t0 = time.time()
    train_stream = token_stream(args.corpus, "train", args.tokenizer, cache_dir)
    heldout_stream = token_stream(args.corpus, "heldout", args.tokenizer, cache_dir)
    print(f"data: train {len(train_stream)} tokens, held-out {len(heldout_stream)} tokens "
          f"({time.time() - t0:.1f} s)", flush=True)

    model = tm.build(cfg)
    counts = parameter_counts(model)
    total_steps = max(1, settings["max_tokens"] // (B * T))
    print(f"{args.arch}: {counts['total']} parameters ({counts['non_embedding']} non-embedding); "
          f"{total_steps} steps x {B} x {T} = {total_steps * B * T} tokens "
          f"({total_steps * B * T / len(train_stream):.2f} epochs); settings {settings}",
          flush=True)

    sampler = WindowSampler(train_stream, T, sampler_lb, args.seed)
    eval_set = eval_windows(heldout_stream, T, settings["eval_windows"], LB, args.arch)
    optimizer = make_optimizer(model, settings)
    curve, start = [], time.time()
    interval_loss, interval_steps, interval_start, tokens_seen = 0.0, 0, time.time(), 0
    stopped_early = False
    warmup_end_s = None
    step = 0
    budget_s = args.max_minutes * 60
    for step in range(total_steps):
        used = time.time() - start
        if used > budget_s:
            stopped_early = True
            print(f"time budget of {args.max_minutes} min reached at step {step}", flush=True)
            break
        time_fraction = 0.0
        if args.time_schedule and step >= settings["warmup_steps"]:
            # Fraction of the post-warmup time, with one step's duration of margin.
            warm_s = warmup_end_s if warmup_end_s is not None else used
            step_s = used / max(1, step)
            time_fraction = (used - warm_s + step_s) / max(1e-9, budget_s - warm_s)
            if time_fraction >= 1.0:
                stopped_early = True
                print(f"time budget of {args.max_minutes} min reached at step {step} "
                      f"(schedule completed by time)", flush=True)
                break
        if step == settings["warmup_steps"] and warmup_end_s is None:
            warmup_end_s = used
        lr = lr_at(step, total_steps, settings, time_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = sampler.batch(B, args.arch)
        loss = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                         settings["grad_clip"]))
        optimizer.step()
        tokens_seen += B * T
        interval_loss += float(loss)
        interval_steps += 1
        done = step + 1
        if done % settings["log_every"] == 0 or done == total_steps:
            now = time.time()
            tok_s = interval_steps * B * T / (now - interval_start)
            elapsed = now - start
            eta = elapsed / done * (total_steps - done)
            if args.time_schedule:
                eta = min(eta, max(0.0, budget_s - elapsed))
            print(f"step {done}/{total_steps}  loss {interval_loss / interval_steps:.4f}  "
                  f"lr {lr:.2e}  gnorm {grad_norm:.2f}  {tok_s:.0f} tok/s  "
                  f"elapsed {fmt_time(elapsed)}  ETA {fmt_time(eta)}", flush=True)
            curve.append({"step": done, "tokens": tokens_seen,
                          "loss": interval_loss / interval_steps, "elapsed_s": round(elapsed, 1)})
            interval_loss, interval_steps, interval_start = 0.0, 0, now
        if done % settings["eval_every"] == 0 or done == total_steps:
            hl = heldout_loss(model, eval_set, B)
            print(f"  held-out loss {hl:.4f} (ppl {math.exp(hl):.2f}) at step {done}", flush=True)
            curve.append({"step": done, "tokens": tokens_seen, "heldout_loss": hl})
    train_seconds = time.time() - start
    final_heldout = heldout_loss(model, eval_set, B)

    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    tensors = tm.export_tensors(model, dtype)
    ref.save_model(args.out, tensors, cfg.to_json())
    shutil.copyfile(args.tokenizer, os.path.join(args.out, "tokenizer.json"))
    log = {"arch": args.arch, "seed": args.seed, "threads": args.threads,
           "config": config_file.get("model"), "settings": settings,
           "parameters": counts, "planned_steps": total_steps, "steps": step + 1
           if not stopped_early else step, "tokens_trained": tokens_seen,
           "stopped_early_by_time": stopped_early, "time_schedule": args.time_schedule,
           "train_seconds": round(train_seconds, 1),
           "train_stream_tokens": len(train_stream), "heldout_stream_tokens": len(heldout_stream),
           "final_heldout_window_loss": final_heldout, "curve": curve,
           "command": " ".join(sys.argv)}
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
        f.write("\n")
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    print(f"done: {tokens_seen} tokens in {fmt_time(train_seconds)}, held-out window loss "
          f"{final_heldout:.4f} (ppl {math.exp(final_heldout):.2f}); wrote {args.out} "
          f"(model.safetensors {size / 1e6:.2f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
