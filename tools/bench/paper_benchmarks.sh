#!/usr/bin/env bash
# Runs the measurements behind docs/benchmarks.md and writes one JSON file
# per point (what `blockserve bench --out` writes) into OUT_DIR, plus the
# micro-benchmarks' JSON, then the charts (tools/bench/plot_bench.py).
#
# usage: tools/bench/paper_benchmarks.sh OUT_DIR [SECTION...]
# sections (default: all, in this order):
#   targets   vanilla_70 128/128 at batch 1 and 32, F32 and BF16 weights, F32
#             and F16 KV cache, two alternating rounds
#   pair      block_main_b4_19 vs vanilla_70 at batch 16: prefill-heavy,
#             decode-heavy, 128/128
#   long      block_main_b4_19 vs vanilla_70, 16384 prompt + 256 generated, batch 1
#   table     the six presets, both scenarios, batch 8
#   sweep     block_main_b4_19 and vanilla_70, 128/128, batch 1..64
#   stack     block_main_b4_19 through `blockserve up` (2 workers, 1 thread per
#             service) vs in process (2 threads), 128/128, 16, 32, 64 and 128 streams,
#             2 alternating rounds each
#   kernels   gemm_benchmark and ops_benchmark
#   libraries the decode-shaped GEMMs through Blockserve's kernels, oneDNN,
#             libxsmm, OpenBLAS (Debian's Haswell core and SkylakeX forced), BLIS
#             and Eigen (2 threads and 1), two rounds in alternating order, and
#             the arithmetic peaks; tools/bench/gemm_library_table.py tabulates them
# env: BLOCKSERVE_BIN (build/bin/blockserve), BENCH_DIR (build/bench),
#      MODELS (/tmp/blockserve-presets: random-weight presets, made if missing),
#      DTYPE (bf16), KV (f32: the KV cache of the other sections), THREADS (2)
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${1:?usage: $0 OUT_DIR [SECTION...]}
shift
SECTIONS=("$@")
((${#SECTIONS[@]})) || SECTIONS=(targets pair long table sweep stack kernels)
BIN=${BLOCKSERVE_BIN:-build/bin/blockserve}
BENCH_DIR=${BENCH_DIR:-build/bench}
MODELS=${MODELS:-/tmp/blockserve-presets}
DTYPE=${DTYPE:-bf16}
KV=${KV:-f32}
THREADS=${THREADS:-2}
mkdir -p "$OUT" "$MODELS"

model() {
  local preset=$1
  if [[ ! -f "$MODELS/$preset/model.safetensors" ]]; then
    "$BIN" init-model --preset "$preset" --out "$MODELS/$preset" >/dev/null
  fi
  echo "$MODELS/$preset"
}

# point NAME PRESET DTYPE REPEAT ARGS...: one `blockserve bench --engine` run.
point() {
  local name=$1 preset=$2 dtype=$3 repeat=$4
  shift 4
  local cmd=("$BIN" bench --engine --model "$(model "$preset")" --threads "$THREADS"
             --weight-dtype "$dtype" --kv-dtype "$KV" --repeat "$repeat" --json
             --out "$OUT/$name.json" "$@")
  echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] ${cmd[*]}" | tee -a "$OUT/commands.log" >&2
  "${cmd[@]}" >/dev/null
}

for section in "${SECTIONS[@]}"; do
  case "$section" in
    targets)
      for round in 1 2; do
        for kv in f32 f16; do
          for dtype in f32 bf16; do
            for batch in 1 32; do
              KV=$kv point "target_vanilla_70_${dtype}_kv${kv}_b${batch}_$round" vanilla_70 \
                "$dtype" 3 --prompt-len 128 --gen-len 128 --batch "$batch"
            done
          done
        done
      done
      ;;
    pair)
      for preset in block_main_b4_19 vanilla_70; do
        point "pair_${preset}_prefill_b16" "$preset" "$DTYPE" 3 --scenario prefill-heavy --batch 16
        point "pair_${preset}_decode_b16" "$preset" "$DTYPE" 1 --scenario decode-heavy --batch 16
        point "pair_${preset}_128_b16" "$preset" "$DTYPE" 3 --prompt-len 128 --gen-len 128 --batch 16
      done
      ;;
    long)
      for preset in block_main_b4_19 vanilla_70; do
        point "long_${preset}_b1" "$preset" "$DTYPE" 1 --prompt-len 16384 --gen-len 256 --batch 1
      done
      ;;
    table)
      for preset in block_main_b4_5 vanilla_31 block_main_b4_19 vanilla_70 block_main_b4_85 vanilla_160; do
        point "table_${preset}_prefill_b8" "$preset" "$DTYPE" 1 --scenario prefill-heavy --batch 8
        point "table_${preset}_decode_b8" "$preset" "$DTYPE" 1 --scenario decode-heavy --batch 8
      done
      ;;
    sweep)
      for preset in block_main_b4_19 vanilla_70; do
        point "sweep_${preset}" "$preset" "$DTYPE" 1 --prompt-len 128 --gen-len 128 --batch 1,4,16,64
      done
      ;;
    stack)
      m=$(model block_main_b4_19)
      rm -f "$OUT/up.json"
      "$BIN" up --model "$m" --workers 2 --threads 1 --weight-dtype "$DTYPE" \
        --gateway-arg=--max-concurrent=128 --port-file "$OUT/up.json" >"$OUT/up.log" 2>&1 &
      up_pid=$!
      for _ in $(seq 600); do [[ -s "$OUT/up.json" ]] && break; sleep 0.2; done
      gateway=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['gateway'])" "$OUT/up.json")
      for streams in 16 32 64 128; do
        for round in 1 2; do
          point "stack_engine_b${streams}_$round" block_main_b4_19 "$DTYPE" 3 --prompt-len 128 \
            --gen-len 128 --batch "$streams"
          cmd=("$BIN" bench --gateway "$gateway" --model "$m" --prompt-len 128 --gen-len 128
               --batch "$streams" --repeat 3 --json --out "$OUT/stack_gateway_b${streams}_$round.json")
          echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] ${cmd[*]}" | tee -a "$OUT/commands.log" >&2
          "${cmd[@]}" >/dev/null
        done
      done
      kill -TERM "$up_pid"
      wait "$up_pid" || true
      ;;
    kernels)
      echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] gemm_benchmark, ops_benchmark" | tee -a "$OUT/commands.log" >&2
      "$BENCH_DIR/gemm_benchmark" --benchmark_min_time=0.2 --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true --benchmark_format=json >"$OUT/gemm_benchmark.json"
      "$BENCH_DIR/ops_benchmark" --benchmark_min_time=0.2 --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true --benchmark_format=json >"$OUT/ops_benchmark.json"
      ;;
    libraries)
      # variant:executable suffix:environment
      variants=(blockserve:blockserve: onednn:onednn: libxsmm:libxsmm:
                openblas:openblas: openblas-skylakex:openblas:OPENBLAS_CORETYPE=SkylakeX
                blis:blis: eigen:eigen: eigen-1-thread:eigen:BLOCKSERVE_BENCH_THREADS=1)
      for round in 1 2; do
        order=("${variants[@]}")
        if ((round == 2)); then
          order=()
          for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[i]}"); done
        fi
        for variant in "${order[@]}"; do
          IFS=: read -r name exe env <<<"$variant"
          [[ -x "$BENCH_DIR/gemm_library_benchmark_$exe" ]] || continue
          echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $env gemm_library_benchmark_$exe (round $round)" | tee -a "$OUT/commands.log" >&2
          env $env "$BENCH_DIR/gemm_library_benchmark_$exe" --benchmark_min_time=0.1 \
            --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
            --benchmark_format=json >"$OUT/gemm_library_${name}_$round.json"
        done
      done
      "$BENCH_DIR/gemm_benchmark" --benchmark_filter=BM_Peak --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true --benchmark_format=json >"$OUT/gemm_library_peaks.json"
      /usr/bin/python3 tools/bench/gemm_library_table.py "$OUT" >"$OUT/gemm_libraries.md"
      ;;
    *)
      echo "unknown section $section" >&2
      exit 2
      ;;
  esac
done

shopt -s nullglob
points=("$OUT"/{target,pair,table,sweep}_*.json)
if ((${#points[@]})); then
  /usr/bin/python3 tools/bench/plot_bench.py "${points[@]}" --out-dir "$OUT/charts"
fi
