#!/usr/bin/env bash
# Generated tokens per second through the service stack (gateway + one
# context service + WORKERS token workers, separate processes on loopback,
# started by `blockserve up`) versus the in-process engine (`blockserve run
# --batch`), on the same model and the same load: CONCURRENCY copies of one
# prompt, MAX_NEW_TOKENS tokens each (EOS ignored), sampled at temperature
# 0.8 with seeds SEED+i (so both sides generate exactly the same tokens).
#
# usage: tools/measure_stack_throughput.sh MODEL_DIR [CONCURRENCY] [MAX_NEW_TOKENS]
# env:   BLOCKSERVE_BIN (default build/bin/blockserve), WORKERS (2),
#        STACK_THREADS (CPU threads per service process, 1),
#        INPROC_THREADS (CPU threads of the in-process engine, all cores),
#        DEVICE (cpu), REPEATS (3: the best run of each side counts)
set -euo pipefail

MODEL=${1:?usage: $0 MODEL_DIR [CONCURRENCY] [MAX_NEW_TOKENS]}
CONCURRENCY=${2:-16}
TOKENS=${3:-128}
BIN=${BLOCKSERVE_BIN:-build/bin/blockserve}
WORKERS=${WORKERS:-2}
STACK_THREADS=${STACK_THREADS:-1}
INPROC_THREADS=${INPROC_THREADS:-0}
DEVICE=${DEVICE:-cpu}
REPEATS=${REPEATS:-3}
PROMPT="1 2 3 4 5 6 7 8 9 10 11 12"
SAMPLING=(--temperature 0.8 --seed 1 --ignore-eos --max-new-tokens "$TOKENS")

json_field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }

RUN_DIR=$(mktemp -d /tmp/blockserve-measure-XXXXXX)
UP_PID=""
cleanup() {
  if [[ -n "$UP_PID" ]] && kill -0 "$UP_PID" 2>/dev/null; then
    kill -TERM "$UP_PID"; wait "$UP_PID" || true
  fi
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT

echo "model $MODEL, $CONCURRENCY concurrent requests x $TOKENS tokens, device $DEVICE" >&2

inproc=()
for _ in $(seq "$REPEATS"); do
  out=$("$BIN" run --model "$MODEL" --device "$DEVICE" --threads "$INPROC_THREADS" \
        --tokens "$PROMPT" --batch "$CONCURRENCY" "${SAMPLING[@]}" --json)
  inproc+=("$(echo "$out" | json_field generated_tokens_per_s)")
  inproc_tokens=$(echo "$out" | json_field tokens)
done

"$BIN" up --model "$MODEL" --workers "$WORKERS" --device "$DEVICE" --threads "$STACK_THREADS" \
  --gateway-arg=--max-concurrent="$CONCURRENCY" --port-file "$RUN_DIR/up.json" >"$RUN_DIR/up.log" 2>&1 &
UP_PID=$!
for _ in $(seq 600); do
  [[ -s "$RUN_DIR/up.json" ]] && break
  kill -0 "$UP_PID" 2>/dev/null || { cat "$RUN_DIR/up.log" >&2; exit 1; }
  sleep 0.1
done
GATEWAY=$(json_field gateway <"$RUN_DIR/up.json")

# One warm-up round (connections, first allocations), then the measured ones.
"$BIN" generate --gateway "$GATEWAY" --tokens "$PROMPT" --requests "$CONCURRENCY" \
  --concurrency "$CONCURRENCY" "${SAMPLING[@]}" --json >/dev/null
stack=()
for _ in $(seq "$REPEATS"); do
  out=$("$BIN" generate --gateway "$GATEWAY" --tokens "$PROMPT" --requests "$CONCURRENCY" \
        --concurrency "$CONCURRENCY" "${SAMPLING[@]}" --json)
  stack+=("$(echo "$out" | json_field generated_tokens_per_s)")
  stack_tokens=$(echo "$out" | json_field tokens)
done
if [[ "$inproc_tokens" == "$stack_tokens" ]]; then
  echo "first request's tokens: identical in process and through the stack"
else
  echo "first request's tokens DIFFER between in process and the stack" >&2
  exit 1
fi

IN=$(best "${inproc[@]}")
ST=$(best "${stack[@]}")
/usr/bin/python3 - "$IN" "$ST" <<'PY'
import sys
inproc, stack = float(sys.argv[1]), float(sys.argv[2])
print(f"in-process engine: {inproc:10.1f} generated tokens/s")
print(f"service stack:     {stack:10.1f} generated tokens/s")
print(f"ratio stack / in-process: {stack / inproc:.3f}")
PY
