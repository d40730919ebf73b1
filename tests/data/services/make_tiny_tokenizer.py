#!/usr/bin/python3
"""Writes tiny_bpe512/tokenizer.json: a 512-token byte-level BPE tokenizer
for the service tests, whose vocabulary matches the `block_tiny` test model
(V = 512), so text prompts and streamed text can be tested end to end.

Derived from tests/data/tokenizers/gpt2/tokenizer.json (GPT-2's tokenizer):
id 0 is <|endoftext|> (a special added token, like Block Transformer's
EOS/BOS id 0), ids 1..256 are GPT-2's 256 byte-level tokens in GPT-2's
order, and ids 257..511 are the first 255 GPT-2 merges whose parts are
already in the vocabulary, in GPT-2's rank order. Deterministic; run from
the repository root:  /usr/bin/python3 tests/data/services/make_tiny_tokenizer.py
"""
import json
import os

SIZE = 512
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "tokenizers", "gpt2", "tokenizer.json"), encoding="utf-8") as f:
    gpt2 = json.load(f)

by_id = {i: t for t, i in gpt2["model"]["vocab"].items()}
vocab = {"<|endoftext|>": 0}
for i in range(256):
    vocab[by_id[i]] = i + 1
merges = []
for merge in gpt2["model"]["merges"]:
    if len(vocab) >= SIZE:
        break
    left, right = merge.split(" ") if isinstance(merge, str) else merge
    if left in vocab and right in vocab and left + right not in vocab:
        vocab[left + right] = len(vocab)
        merges.append(f"{left} {right}")
assert len(vocab) == SIZE, len(vocab)

out = dict(gpt2)
out["added_tokens"] = [{"id": 0, "content": "<|endoftext|>", "single_word": False,
                        "lstrip": False, "rstrip": False, "normalized": True, "special": True}]
out["model"] = dict(gpt2["model"])
out["model"]["vocab"] = vocab
out["model"]["merges"] = merges
os.makedirs(os.path.join(here, "tiny_bpe512"), exist_ok=True)
with open(os.path.join(here, "tiny_bpe512", "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=None, separators=(",", ":"))
    f.write("\n")
