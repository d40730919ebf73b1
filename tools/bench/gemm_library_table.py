#!/usr/bin/python3
"""Tabulates the `libraries` section of tools/bench/paper_benchmarks.sh.

Reads OUT_DIR/gemm_library_<variant>_<round>.json (Google Benchmark JSON of
the gemm_library_benchmark_* executables) and gemm_library_peaks.json, and
prints a Markdown table: GFLOP/s per shape and library (the median over the
rounds of each round's median), Blockserve's kernels against the fastest
other library, and a summary. A library without a product for a shape (no
BF16 GEMM) shows "-".

usage: /usr/bin/python3 tools/bench/gemm_library_table.py OUT_DIR
"""
import glob
import json
import math
import os
import re
import statistics
import sys

VARIANTS = [
    ("blockserve", "Blockserve"),
    ("onednn", "oneDNN"),
    ("libxsmm", "libxsmm"),
    ("openblas", "OpenBLAS"),
    ("openblas-skylakex", "OpenBLAS, SkylakeX core"),
    ("blis", "BLIS"),
    ("eigen", "Eigen"),
    ("eigen-1-thread", "Eigen, 1 thread"),
]
SHAPE = re.compile(r"BM_Gemm/M:(\d+)/K:(\d+)/N:(\d+)/bf16:(\d)")


def load_rounds(out_dir):
    """{variant: {shape: [GFLOP/s per round]}} and {variant: library name}."""
    figures, names = {}, {}
    for path in sorted(glob.glob(os.path.join(out_dir, "gemm_library_*_*.json"))):
        match = re.fullmatch(r"gemm_library_(.+)_(\d+)\.json", os.path.basename(path))
        if not match:
            continue
        variant = match.group(1)
        with open(path) as f:
            data = json.load(f)
        names[variant] = data["context"].get("gemm_library", variant)
        for bench in data["benchmarks"]:
            if bench.get("aggregate_name") != "median" or bench.get("error_occurred"):
                continue
            shape = SHAPE.match(bench["name"])
            if shape:
                key = tuple(int(g) for g in shape.groups())
                figures.setdefault(variant, {}).setdefault(key, []).append(bench["GFLOPs"] / 1e9)
    return figures, names


def load_peaks(out_dir):
    path = os.path.join(out_dir, "gemm_library_peaks.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    peaks = {}
    for bench in data["benchmarks"]:
        if bench.get("aggregate_name") == "median":
            dtype = 1 if "Bf16" in bench["name"] else 0
            peaks[dtype] = bench["GFLOPs"] / 1e9
    return peaks


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    figures, names = load_rounds(out_dir)
    if "blockserve" not in figures:
        sys.exit(f"no gemm_library_blockserve_*.json in {out_dir}")
    peaks = load_peaks(out_dir)
    variants = [(v, label) for v, label in VARIANTS if v in names]
    median = {v: {k: statistics.median(r) for k, r in shapes.items()} for v, shapes in figures.items()}

    print("| M | K | N | weights | " + " | ".join(label for _, label in variants) +
          " | Blockserve / fastest other |")
    print("|---" * (5 + len(variants)) + "|")
    ratios = {0: [], 1: []}
    wins = {0: 0, 1: 0}
    for key in sorted(median["blockserve"], key=lambda k: (k[3], k[0], k[2], k[1])):
        m, k, n, bf16 = key
        cells = []
        for variant, _ in variants:
            value = median.get(variant, {}).get(key)
            text = "-" if value is None else f"{value:,.0f}"
            if variant == "blockserve" and value is not None and bf16 in peaks:
                text += f" ({100 * value / peaks[bf16]:.0f}%)"
            cells.append(text)
        others = [median[v][key] for v, _ in variants
                  if v != "blockserve" and key in median.get(v, {})]
        ratio = median["blockserve"][key] / max(others) if others else float("nan")
        if others:
            ratios[bf16].append(ratio)
            wins[bf16] += ratio >= 1
        print(f"| {m} | {k} | {n} | {'BF16' if bf16 else 'F32'} | " + " | ".join(cells) +
              f" | {ratio:.2f}x |")
    print()
    for bf16, label in ((0, "F32"), (1, "BF16")):
        if ratios[bf16]:
            geomean = math.exp(statistics.mean(math.log(r) for r in ratios[bf16]))
            print(f"- {label}: Blockserve fastest on {wins[bf16]} of {len(ratios[bf16])} shapes; "
                  f"geometric mean against the fastest other library {geomean:.2f}x; "
                  f"peak {peaks.get(bf16, float('nan')):,.0f} GFLOP/s.")
    print()
    for variant, label in variants:
        print(f"- {label}: {names[variant]}")


if __name__ == "__main__":
    main()
