#!/usr/bin/python3
"""Held-out perplexity and sample generations of trained models, with the reference model.

  /usr/bin/python3 tools/train/evaluate.py --model models/sotu-block-4m \
      --model models/sotu-block-4m-vanilla --corpus /tmp/sotu_corpus --window 256 \
      --samples 3 --json /tmp/eval.json

Every model is loaded through the reference's normal path (tools/reference/
block_transformer_ref.py load_model: model.safetensors + config.json, BF16 upcast to float32)
and scored as the reference's score() does:
  - block models: the paper's scoring; the first block of every scored sequence is unscored;
  - vanilla models: the first token of every scored sequence is unscored.
The reference's score() is unbatched (one token-decoder call per block: about an hour for the
held-out split on two cores), so sequences are scored in batches by the training module
(tools/train/model.py) holding the same loaded weights, which check_training_math.py proves
equal to the reference; here, in addition, the first --check-windows windows (and any
shorter last window) are scored by the reference itself and must agree within 1e-3 or the
script fails.

Held-out text: --corpus DIR (the held-out split of prepare_corpus.py: every address is tokenized
and followed by the end-of-text token, as in training, and the resulting stream is cut into
consecutive windows of --window tokens, a multiple of every block length) and/or --text FILE
(tokenized as one document, no end-of-text token; scored in windows of --window tokens, or as
one sequence with --window 0, or with --lines every non-empty line as its own sequence).

Reported per model and text: scored tokens, mean NLL per scored token (nats), perplexity
exp(NLL), bits per byte (NLL in bits over the UTF-8 bytes of the scored tokens), and the same
on the tokens that every model scores (positions >= the largest block length in each window:
the fairest comparison between a block and a vanilla model, which leave different prefixes
unscored).

Samples: --samples N generations per prompt at --temperature (default 0.8) with plain softmax
sampling (torch.multinomial, seeded), --max-new-tokens each, using the reference's KV-cached
block / token decoders (the same steps as its greedy(), sampling instead of argmax).
"""

import argparse
import json
import math
import os
import sys
import time
from typing import List, Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_tokenizer  # noqa: E402
import model as tm  # noqa: E402

ref = tm.ref

DEFAULT_PROMPTS = [
    "Fellow-Citizens of the Senate and House of Representatives:",
    "The state of the Union is",
    "In the course of the past year",
    "We must",
]


def block_length(model) -> int:
    return model.cfg.block_length if model.kind == "block" else 1


def windows(ids: List[int], window: int) -> List[List[int]]:
    if window <= 0:
        return [ids]
    return [ids[i:i + window] for i in range(0, len(ids), window) if len(ids[i:i + window]) > 1]


def batched_logprobs(trainable, seqs: List[List[int]], block_len: int,
                     batch_size: int = 16) -> List[List[Optional[float]]]:
    """Per-token log-probabilities exactly as the reference's score() defines them (None where
    unscored), in batches: a block model's sequence is left-padded with id 0 to a multiple of
    L_B (its first block is unscored), a vanilla model's first token is unscored; sequences of
    different lengths are right-padded to a common length, which causal attention ignores."""
    out: List[List[Optional[float]]] = []
    for i in range(0, len(seqs), batch_size):
        chunk = seqs[i:i + batch_size]
        pads = [(-len(s)) % block_len for s in chunk]
        length = max(p + len(s) for p, s in zip(pads, chunk))
        rows = [[0] * p + s + [0] * (length - p - len(s)) for p, s in zip(pads, chunk)]
        batch = torch.tensor(rows, dtype=torch.long)
        logits = trainable.target_logits(batch)
        skip = batch.shape[1] - logits.shape[1]  # L_B (block) or 1 (vanilla)
        lp = torch.log_softmax(logits, dim=-1).gather(-1, batch[:, skip:, None])[..., 0].tolist()
        for row, pad, seq in zip(lp, pads, chunk):
            out.append([None if pad + j < skip else row[pad + j - skip] for j in range(len(seq))])
    return out


def score_windows(model, trainable, seqs: List[List[int]], common_from: int,
                  token_bytes: List[int], check_windows: int):
    """Scores every sequence (see the module doc). Returns summary dicts (all, common)."""
    tot = {"nll": 0.0, "tokens": 0, "bytes": 0}
    common = {"nll": 0.0, "tokens": 0, "bytes": 0}
    all_logprobs = batched_logprobs(trainable, seqs, block_length(model))
    for seq, logprobs in list(zip(seqs, all_logprobs))[:check_windows]:
        want = model.score(seq)
        bad = [(a, b) for a, b in zip(logprobs, want)
               if (a is None) != (b is None) or (a is not None and abs(a - b) > 1e-3)]
        if bad or len(want) != len(logprobs):
            raise SystemExit(f"batched scoring disagrees with the reference: {bad[:4]}")
    for seq, logprobs in zip(seqs, all_logprobs):
        for pos, (tok, lp) in enumerate(zip(seq, logprobs)):
            if lp is None:
                continue
            for acc, ok in ((tot, True), (common, pos >= common_from)):
                if ok:
                    acc["nll"] -= lp
                    acc["tokens"] += 1
                    acc["bytes"] += token_bytes[tok]
    return summarize(tot), summarize(common)


def summarize(acc: dict) -> dict:
    n = acc["tokens"]
    if n == 0:
        return {"tokens": 0}
    nll = acc["nll"] / n
    return {"tokens": n, "nll": nll, "ppl": math.exp(nll),
            "bits_per_byte": acc["nll"] / math.log(2) / max(1, acc["bytes"])}


# ---------------------------------------------------------------------------------------------
# Sampling (the reference's cached generation steps, with multinomial sampling)
# ---------------------------------------------------------------------------------------------


def _sample(logits: torch.Tensor, temperature: float, gen: torch.Generator) -> int:
    if temperature <= 0:
        return ref.pick_greedy(logits)[0]
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=gen))


def sample_block(model: ref.BlockModel, prompt: List[int], n: int, temperature: float,
                 gen: torch.Generator) -> List[int]:
    LB = model.cfg.block_length
    padded, _ = model.left_pad(prompt)
    cache = ref.NeoxStack.new_cache()
    context = model._block_final_ln(model.block_stack.forward(model.embed_blocks(padded),
                                                              cache))[-1]
    out: List[int] = []
    while len(out) < n:
        block: List[int] = []
        prefixes = model.prefixes(context)
        token_cache = ref.NeoxStack.new_cache()
        for j in range(min(LB, n - len(out))):
            step_in = prefixes if j == 0 else model.token_embed[block[-1]][None, :]
            h = model.token_stack.forward(step_in, token_cache)
            block.append(_sample(model._token_logits(h[-1]), temperature, gen))
        out.extend(block)
        if len(out) < n:
            h = model.block_stack.forward(model.embed_blocks(block), cache)
            context = model._block_final_ln(h)[-1]
    return out


def sample_vanilla(model: ref.VanillaModel, prompt: List[int], n: int, temperature: float,
                   gen: torch.Generator) -> List[int]:
    cache = ref.NeoxStack.new_cache()
    pending, out = list(prompt), []
    for _ in range(n):
        token = _sample(model.logits(pending, cache)[-1], temperature, gen)
        out.append(token)
        pending = [token]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True,
                        help="model directory (repeatable)")
    parser.add_argument("--corpus", help="prepare_corpus.py output (its heldout.jsonl)")
    parser.add_argument("--text", action="append", default=[], help="plain text file to score")
    parser.add_argument("--window", type=int, default=256,
                        help="tokens per scored window (0: each text as one sequence)")
    parser.add_argument("--lines", action="store_true",
                        help="--text files: score every non-empty line as its own sequence")
    parser.add_argument("--max-windows", type=int, default=0, help="score only the first N")
    parser.add_argument("--check-windows", type=int, default=4,
                        help="windows also scored by the (slow) reference and compared")
    parser.add_argument("--samples", type=int, default=0, help="samples per prompt")
    parser.add_argument("--prompt", action="append", help="prompt text (repeatable)")
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = {path: ref.load_model(path) for path in args.model}
    trainables = {}
    for path, model in models.items():
        tensors, _, _ = ref.load_tensors_and_config(path)
        trainables[path] = tm.from_reference_tensors(model.cfg, tensors).eval()
    tokenizers = {path: bpe_tokenizer.Tokenizer.load(os.path.join(path, "tokenizer.json"))
                  for path in args.model}
    vocab_files = {open(os.path.join(p, "tokenizer.json"), "rb").read() for p in args.model}
    if len(vocab_files) != 1:
        print("note: the models use different tokenizers; compare bits per byte, not ppl",
              file=sys.stderr)
    max_lb = max(block_length(m) for m in models.values())
    if args.window > 0 and args.window % max_lb:
        raise SystemExit(f"--window {args.window} must be a multiple of the block length {max_lb}")

    texts = {}
    if args.corpus:
        texts["heldout_split"] = ("corpus", os.path.join(args.corpus, "heldout.jsonl"))
    for path in args.text:
        texts[os.path.basename(path)] = ("text", path)

    results = {"window": args.window, "perplexity": {}, "samples": {}}
    for path, model in models.items():
        tok = tokenizers[path]
        token_bytes = [len(tok.decode([i]).encode("utf-8")) if i not in tok.added.values() else 0
                       for i in range(tok.vocab_size)]
        results["perplexity"][path] = {}
        for name, (kind, text_path) in texts.items():
            if kind == "corpus":
                with open(text_path, encoding="utf-8") as f:
                    docs = [json.loads(line)["text"] for line in f if line.strip()]
                ids = []
                for doc in docs:
                    ids.extend(tok.encode(doc))
                    ids.append(tok.added[bpe_tokenizer.EOT])
            elif args.lines:
                with open(text_path, encoding="utf-8") as f:
                    seqs = [tok.encode(line) for line in f.read().split("\n") if line.strip()]
                ids = [t for s in seqs for t in s]
            else:
                with open(text_path, encoding="utf-8") as f:
                    ids = tok.encode(f.read())
            if kind == "corpus" or not args.lines:
                seqs = windows(ids, args.window)
            if args.max_windows:
                seqs = seqs[:args.max_windows]
            start = time.time()
            with torch.no_grad():
                everything, common = score_windows(model, trainables[path], seqs, max_lb,
                                                   token_bytes, args.check_windows)
            results["perplexity"][path][name] = {"windows": len(seqs), "text_tokens": len(ids),
                                                 "scored": everything, "common": common}
            what = ("lines" if kind == "text" and args.lines
                    else f"windows of {args.window or 'all'} tokens")
            print(f"{path} [{model.kind}] {name}: {len(seqs)} {what}; scored "
                  f"{everything['tokens']} tokens: NLL {everything['nll']:.4f} "
                  f"ppl {everything['ppl']:.2f} bpb {everything['bits_per_byte']:.4f}; common "
                  f"tokens ({common['tokens']}): ppl {common['ppl']:.2f} "
                  f"({time.time() - start:.0f} s)", flush=True)

    if args.samples:
        prompts = args.prompt or DEFAULT_PROMPTS
        for path, model in models.items():
            tok = tokenizers[path]
            gen = torch.Generator().manual_seed(args.seed)
            out = []
            for prompt in prompts:
                for _ in range(args.samples):
                    ids = tok.encode(prompt)
                    with torch.no_grad():
                        if model.kind == "block":
                            new = sample_block(model, ids, args.max_new_tokens,
                                               args.temperature, gen)
                        else:
                            new = sample_vanilla(model, ids, args.max_new_tokens,
                                                 args.temperature, gen)
                    text = tok.decode(new)
                    out.append({"prompt": prompt, "completion": text})
                    print(f"--- {path} T={args.temperature}\n{prompt}{text}\n", flush=True)
            results["samples"][path] = out
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
