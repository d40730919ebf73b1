#!/usr/bin/python3
"""Charts from `blockserve bench` JSON results (PNG, matplotlib).

usage: /usr/bin/python3 tools/bench/plot_bench.py RESULT.json [RESULT.json ...] --out-dir DIR

Each input holds what `blockserve bench --json` printed (one JSON object per
line and/or a JSON array of them) or what `--out FILE` wrote (an array).
Writes into DIR:
  throughput_vs_batch.png  generated tokens/s against batch size (log-log),
                           one panel per scenario (prompt/generated lengths),
                           one line per model, target and weight type
  block_vs_vanilla.png     the best throughput of every model per scenario,
                           block models and vanilla baselines side by side,
                           ordered by non-embedding parameters
and prints the paths written. Needs Debian's python3-matplotlib.
"""

import argparse
import json
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt  # noqa: E402


def read_points(path):
    """Every point object in a file of JSON objects and/or arrays (one per line or one document)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    docs = []
    try:
        docs.append(json.loads(text))
    except json.JSONDecodeError:
        for line in text.splitlines():
            line = line.strip()
            if line:
                docs.append(json.loads(line))
    points = []
    for doc in docs:
        for item in doc if isinstance(doc, list) else [doc]:
            if isinstance(item, dict) and "generated_tokens_per_s" in item and "batch" in item:
                points.append(item)
    # A sweep prints each point and then the array of all of them: drop repeats.
    unique, seen = [], set()
    for p in points:
        key = json.dumps(p, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def model_name(p):
    return os.path.basename(str(p.get("model", "?")).rstrip("/")) or "?"


def series_label(p):
    label = model_name(p)
    if p.get("target") == "gateway":
        label += " (stack)"
    if p.get("weight_dtype") and p.get("weight_dtype") != "f32":
        label += " " + p["weight_dtype"]
    return label


def scenario_label(p):
    return "prompt %d / gen %d" % (p["prompt_len"], p["gen_len"])


def plot_throughput_vs_batch(points, path):
    by_scenario = defaultdict(lambda: defaultdict(dict))
    for p in points:
        by_scenario[scenario_label(p)][series_label(p)][p["batch"]] = p["generated_tokens_per_s"]
    scenarios = sorted(by_scenario)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4.5), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        for label, curve in sorted(by_scenario[scenario].items()):
            batches = sorted(curve)
            style = "--" if "vanilla" in label else "-"
            ax.plot(batches, [curve[b] for b in batches], style, marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size (concurrent requests)")
        ax.set_ylabel("generated tokens/s")
        ax.set_title(scenario)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_block_vs_vanilla(points, path):
    # Best throughput per (scenario, series), with its parameter count and kind.
    best = defaultdict(dict)
    for p in points:
        scenario, label = scenario_label(p), series_label(p)
        if label not in best[scenario] or p["generated_tokens_per_s"] > best[scenario][label][0]:
            best[scenario][label] = (p["generated_tokens_per_s"], p.get("non_embedding_params", 0),
                                     p.get("kind", ""), p["batch"])
    scenarios = sorted(best)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4.5), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        rows = sorted(best[scenario].items(), key=lambda kv: (kv[1][1] or 0, kv[0]))
        names = [label for label, _ in rows]
        values = [v[0] for _, v in rows]
        colors = ["tab:orange" if v[2] == "vanilla" else "tab:blue" for _, v in rows]
        bars = ax.bar(range(len(rows)), values, color=colors)
        for bar, (_, v) in zip(bars, rows):
            ax.annotate("b=%d" % v[3], (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("generated tokens/s (best batch)")
        ax.set_title(scenario + "  (blue: block, orange: vanilla)")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", help="JSON files from blockserve bench")
    parser.add_argument("--out-dir", required=True, help="directory for the PNG files")
    args = parser.parse_args(argv)
    points = []
    for path in args.inputs:
        points.extend(read_points(path))
    if not points:
        print("plot_bench: no benchmark points in %s" % ", ".join(args.inputs), file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    written = [os.path.join(args.out_dir, "throughput_vs_batch.png"),
               os.path.join(args.out_dir, "block_vs_vanilla.png")]
    plot_throughput_vs_batch(points, written[0])
    plot_block_vs_vanilla(points, written[1])
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
