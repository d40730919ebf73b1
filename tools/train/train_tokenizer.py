#!/usr/bin/python3
"""Trains a byte-level BPE tokenizer.json on the prepared corpus (train split only).

Vocabulary: id 0 = "<|endoftext|>" (special), ids 1..256 = the 256 bytes (id = 1 + byte),
then the merges, up to --vocab-size entries. The file is in the Hugging Face `tokenizers`
format (NFC normalizer, ByteLevel pre-tokenizer with the GPT-2 split pattern and
add_prefix_space false, ByteLevel decoder, BPE model); see bpe_tokenizer.py.

Usage:
  /usr/bin/python3 tools/train/train_tokenizer.py --corpus /tmp/sotu_corpus \
      --vocab-size 4096 --out /tmp/sotu_work/tokenizer.json

Optional self-checks after training: encode/decode round trip of the held-out split, and
(--check-cli build/bin/blockserve) the project's C++ tokenizer must give the same ids on the
held-out split (`blockserve tokenize --tokenizer FILE` reading stdin).
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_tokenizer  # noqa: E402


def read_jsonl_texts(path: str):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def check_cli(binary: str, tokenizer_path: str, text: str, ids) -> bool:
    """Runs `binary tokenize --tokenizer FILE` on `text` (stdin) and compares its ids."""
    proc = subprocess.run([binary, "tokenize", "--tokenizer", tokenizer_path],
                          input=text.encode("utf-8"), capture_output=True, timeout=600)
    if proc.returncode != 0:
        print(f"C++ tokenizer failed (exit {proc.returncode}): "
              f"{proc.stderr.decode(errors='replace')[:500]}", file=sys.stderr)
        return False
    got = [int(x) for x in proc.stdout.decode().replace(",", " ").split()]
    if got == ids:
        print(f"C++ tokenizer agrees: {len(ids)} ids identical", file=sys.stderr)
        return True
    first = next((i for i, (a, b) in enumerate(zip(got, ids)) if a != b), min(len(got), len(ids)))
    print(f"C++ tokenizer DISAGREES: {len(got)} vs {len(ids)} ids, first difference at "
          f"{first}: C++ {got[first:first + 8]} vs Python {ids[first:first + 8]}",
          file=sys.stderr)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="directory written by prepare_corpus.py")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--out", required=True, help="tokenizer.json to write")
    parser.add_argument("--check-cli", help="blockserve binary to compare ids with")
    args = parser.parse_args()

    start = time.time()
    texts = read_jsonl_texts(os.path.join(args.corpus, "train.jsonl"))
    counts = bpe_tokenizer.count_words(texts)
    print(f"{len(texts)} documents, {sum(counts.values())} pre-tokens, {len(counts)} distinct "
          f"({time.time() - start:.1f} s)", file=sys.stderr)
    vocab, merges = bpe_tokenizer.train(counts, args.vocab_size, args.min_frequency,
                                        progress=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    bpe_tokenizer.save(args.out, vocab, merges)
    print(f"wrote {args.out}: {len(vocab)} tokens, {len(merges)} merges "
          f"({time.time() - start:.1f} s)", file=sys.stderr)

    tok = bpe_tokenizer.Tokenizer.load(args.out)
    heldout = "\n".join(read_jsonl_texts(os.path.join(args.corpus, "heldout.jsonl")))
    ids = tok.encode(heldout)
    if tok.decode(ids) != bpe_tokenizer.normalize(heldout):
        print("round trip FAILED on the held-out split", file=sys.stderr)
        return 1
    print(f"held-out split: {len(heldout.encode('utf-8'))} bytes -> {len(ids)} tokens "
          f"({len(heldout.encode('utf-8')) / len(ids):.2f} bytes/token), round trip ok",
          file=sys.stderr)
    if args.check_cli and not check_cli(args.check_cli, args.out, heldout, ids):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
