"""Byte-level BPE in plain Python: GPT-2 pre-tokenization, training, encoding, tokenizer.json.

Written for the training tools (no Hugging Face `tokenizers` here). It follows what Hugging
Face's byte-level BPE does, so that a tokenizer.json written here behaves the same in
`tokenizers`, in the project's C++ tokenizer (shared/tokenizer/) and in this module:

  1. added tokens ("<|endoftext|>") are matched in the raw text first and never split;
  2. the rest is NFC-normalized;
  3. pre-tokenized with the GPT-2 split pattern
       's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
     (Python's `re` has no \\p{..}: the classes are built here from unicodedata categories,
     L = Lu Ll Lt Lm Lo, N = Nd Nl No, and \\s = the Unicode White_Space property, which is
     what the Rust/Oniguruma regex of `tokenizers` uses; Python's own \\s differs on U+001C-1F);
  4. each piece's UTF-8 bytes are mapped to printable characters with GPT-2's bytes_to_unicode;
  5. BPE: the adjacent pair with the lowest merge rank is merged, repeatedly (leftmost first
     among equal ranks), until no pair has a rank.

Vocabulary layout written by train(): id 0 = "<|endoftext|>" (a special added token, also in the
model vocab, as in GPT-NeoX's tokenizer), ids 1..256 = the 256 single bytes (id = 1 + byte
value), then one id per merge in merge order.
"""

import collections
import heapq
import json
import re
import sys
import unicodedata
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

EOT = "<|endoftext|>"


# ---------------------------------------------------------------------------------------------
# Pre-tokenization
# ---------------------------------------------------------------------------------------------

# Unicode White_Space (PropList.txt); this is \s of the Rust regex crate and of Oniguruma's
# Unicode mode, which `tokenizers` uses.
_WHITE_SPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000")


def _category_class(prefixes: Tuple[str, ...]) -> str:
    """A regex character-class body with every code point whose category starts with one of
    `prefixes`, as ranges."""
    ranges, start, prev = [], None, None
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if unicodedata.category(chr(cp)).startswith(prefixes):
            if start is None:
                start = cp
            elif cp != prev + 1:
                ranges.append((start, prev))
                start = cp
            prev = cp
    if start is not None:
        ranges.append((start, prev))
    esc = lambda cp: "\\U%08x" % cp
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


def _gpt2_pattern() -> "re.Pattern":
    letters = _category_class(("L",))
    numbers = _category_class(("N",))
    ws = _WHITE_SPACE
    return re.compile(
        "'s|'t|'re|'ve|'m|'ll|'d"
        f"| ?[{letters}]+"
        f"| ?[{numbers}]+"
        f"| ?[^{ws}{letters}{numbers}]+"
        f"|[{ws}]+(?![^{ws}])"
        f"|[{ws}]+")


_PATTERN: Optional["re.Pattern"] = None


def pre_tokenize(text: str) -> List[str]:
    """Splits (already normalized) text with the GPT-2 pattern; pieces cover the text."""
    global _PATTERN
    if _PATTERN is None:
        _PATTERN = _gpt2_pattern()
    return _PATTERN.findall(text)


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
                 + list(range(ord("\xae"), ord("\xff") + 1)))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, (chr(c) for c in chars)))


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def byte_level(piece: str) -> str:
    return "".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8"))


def normalize(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def count_words(texts: Iterable[str]) -> collections.Counter:
    """Byte-level pre-tokenized word frequencies of the texts."""
    counts: collections.Counter = collections.Counter()
    for text in texts:
        counts.update(pre_tokenize(normalize(text)))
    return collections.Counter({byte_level(w): c for w, c in counts.items()})


def train(word_counts: Dict[str, int], vocab_size: int, min_frequency: int = 2,
          progress: bool = False) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    """Learns merges until the vocabulary (EOT + 256 bytes + merges) has vocab_size entries.

    Incremental: pair counts and pair -> words indices are kept up to date; a merge only
    touches the words that contain its pair. The most frequent pair wins; ties go to the
    lexicographically smallest (left, right) strings, so the result is deterministic.
    Returns (vocab token -> id, merges)."""
    vocab: Dict[str, int] = {EOT: 0}
    for b in range(256):
        vocab[BYTE_TO_CHAR[b]] = 1 + b
    n_merges = vocab_size - len(vocab)
    if n_merges < 0:
        raise ValueError(f"vocab_size {vocab_size} < {len(vocab)} (EOT + 256 bytes)")

    words: List[List[str]] = [list(w) for w in word_counts]
    freqs: List[int] = [word_counts[w] for w in word_counts]
    pair_count: Dict[Tuple[str, str], int] = collections.defaultdict(int)
    pair_words: Dict[Tuple[str, str], set] = collections.defaultdict(set)
    for i, (w, f) in enumerate(zip(words, freqs)):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += f
            pair_words[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)

    merges: List[Tuple[str, str]] = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        current = pair_count.get(pair, 0)
        if current != -neg:  # stale entry
            if current > 0:
                heapq.heappush(heap, (-current, pair))
            continue
        if current < min_frequency:
            break
        a, b = pair
        merged = a + b
        merges.append(pair)
        vocab[merged] = len(vocab)
        changed = set()
        for i in list(pair_words[pair]):
            w, f = words[i], freqs[i]
            for x, y in zip(w, w[1:]):  # remove the word's old pairs
                pair_count[(x, y)] -= f
                changed.add((x, y))
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            old_pairs = set(zip(w, w[1:]))
            words[i] = out
            new_pairs = set(zip(out, out[1:]))
            for x, y in zip(out, out[1:]):
                pair_count[(x, y)] += f
                changed.add((x, y))
            for p in old_pairs - new_pairs:
                pair_words[p].discard(i)
            for p in new_pairs:
                pair_words[p].add(i)
        del pair_count[pair]
        pair_words.pop(pair, None)
        for p in changed:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            elif p in pair_count:
                del pair_count[p]
        if progress and len(merges) % 500 == 0:
            print(f"  {len(merges)}/{n_merges} merges, last {a!r}+{b!r} (count {current})",
                  file=sys.stderr)
    return vocab, merges


# ---------------------------------------------------------------------------------------------
# tokenizer.json
# ---------------------------------------------------------------------------------------------


def tokenizer_json(vocab: Dict[str, int], merges: Sequence[Tuple[str, str]]) -> dict:
    """The Hugging Face tokenizers format, laid out like GPT-NeoX-20B's tokenizer.json."""
    byte_level_cfg = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                      "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": vocab[EOT], "content": EOT, "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": True}],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": dict(byte_level_cfg),
        "post_processor": dict(byte_level_cfg),
        "decoder": dict(byte_level_cfg),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": dict(sorted(vocab.items(), key=lambda kv: kv[1])),
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }


def save(path: str, vocab: Dict[str, int], merges: Sequence[Tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, merges), f, ensure_ascii=False, indent=1)
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# Encoding / decoding
# ---------------------------------------------------------------------------------------------


class Tokenizer:
    """Encoder/decoder for the tokenizer.json files this module writes (byte-level BPE, NFC,
    GPT-2 split, special added tokens)."""

    def __init__(self, vocab: Dict[str, int], merges: Sequence[Tuple[str, str]],
                 added: Dict[str, int], nfc: bool = True):
        self.nfc = nfc
        self.vocab = dict(vocab)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.added = dict(added)
        for t, i in self.added.items():
            self.id_to_token[i] = t
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self._cache: Dict[str, List[int]] = {}
        if self.added:
            self._added_re = re.compile("|".join(
                re.escape(t) for t in sorted(self.added, key=len, reverse=True)))
        else:
            self._added_re = None

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        with open(path, encoding="utf-8") as f:
            js = json.load(f)
        model = js["model"]
        if model.get("type", "BPE") != "BPE":
            raise ValueError(f"{path}: not a BPE model")
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                  for m in model["merges"]]
        added = {t["content"]: t["id"] for t in js.get("added_tokens", [])}
        normalizer = js.get("normalizer")
        if normalizer is not None and normalizer.get("type") != "NFC":
            raise ValueError(f"{path}: unsupported normalizer {normalizer}")
        return cls(model["vocab"], merges, added, nfc=normalizer is not None)

    @property
    def vocab_size(self) -> int:
        return max(self.id_to_token) + 1

    def _bpe(self, word: str) -> List[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols = list(word)
        while len(symbols) > 1:
            best, best_rank = None, None
            for i in range(len(symbols) - 1):
                r = self.ranks.get((symbols[i], symbols[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            a, b = symbols[best], symbols[best + 1]
            out, j = [], 0
            while j < len(symbols):  # merge every (a, b), left to right
                if j + 1 < len(symbols) and symbols[j] == a and symbols[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(symbols[j])
                    j += 1
            symbols = out
        ids = [self.vocab[s] for s in symbols]
        self._cache[word] = ids
        return ids

    def _encode_plain(self, text: str) -> List[int]:
        ids: List[int] = []
        for piece in pre_tokenize(normalize(text) if self.nfc else text):
            ids.extend(self._bpe(byte_level(piece)))
        return ids

    def encode(self, text: str) -> List[int]:
        if self._added_re is None:
            return self._encode_plain(text)
        ids, pos = [], 0
        for m in self._added_re.finditer(text):
            ids.extend(self._encode_plain(text[pos:m.start()]))
            ids.append(self.added[m.group(0)])
            pos = m.end()
        ids.extend(self._encode_plain(text[pos:]))
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        parts, buf = [], bytearray()
        for i in ids:
            tok = self.id_to_token[i]
            if tok in self.added:
                parts.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                if not skip_special:
                    parts.append(tok)
            else:
                buf.extend(CHAR_TO_BYTE[c] for c in tok)
        parts.append(buf.decode("utf-8", errors="replace"))
        return "".join(parts)
