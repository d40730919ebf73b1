#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts the
# local stack (`blockserve up`: gateway, context service, two token workers)
# on the bundled model and streams a generation through the gateway.
#
#   tools/demo.sh                          the default prompt
#   tools/demo.sh "Our country is"         another prompt
#   MODEL=path/to/model tools/demo.sh      another model directory
#   SKIP_SETUP=1 tools/demo.sh             already built: skip tools/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-models/sotu-block-4m}
PROMPT=${1:-"Fellow-Citizens of the Senate and House of Representatives: The state of the Union"}
BIN=${BUILD_DIR:-build}/bin/blockserve

if [ -z "${SKIP_SETUP:-}" ]; then tools/setup.sh; fi

run_dir=$(mktemp -d)
up_pid=""
cleanup() {
  if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
    kill -TERM "$up_pid"
    wait "$up_pid" || true
  fi
  rm -rf "$run_dir"
}
trap cleanup EXIT INT TERM

"$BIN" up --model "$MODEL" --workers 2 --threads 1 --port-file "$run_dir/stack.json" \
  >"$run_dir/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 600); do
  [ -s "$run_dir/stack.json" ] && break
  if ! kill -0 "$up_pid" 2>/dev/null; then
    cat "$run_dir/up.log" >&2
    echo "demo: blockserve up failed" >&2
    exit 1
  fi
  sleep 0.2
done
if [ ! -s "$run_dir/stack.json" ]; then
  cat "$run_dir/up.log" >&2
  echo "demo: the stack did not come up within 120 s" >&2
  exit 1
fi
sed -n '/^blockserve up: serving/,$p' "$run_dir/up.log"
gateway=$(sed -n 's/.*"gateway":"\([^"]*\)".*/\1/p' "$run_dir/stack.json")

echo
echo "demo: blockserve generate --gateway $gateway --temperature 0.8 --top-p 0.95 --max-new-tokens 160"
echo "----"
printf '%s' "$PROMPT"
"$BIN" generate --gateway "$gateway" --prompt "$PROMPT" --temperature 0.8 --top-p 0.95 \
  --max-new-tokens 160 --timeout 120
echo "----"
