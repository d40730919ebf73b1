#!/bin/sh
# Runs a deploy check tool (promtool, kubectl, ...) from ctest. A missing
# tool fails the test (tools/setup.sh installs them all), unless
# BLOCKSERVE_ALLOW_MISSING_TOOLS=1, which makes it a skip (exit 77) for
# machines that build without the deploy tools.
tool="$1"
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "$tool not found: run tools/setup.sh (Debian package: prometheus / kubernetes-client)" >&2
  if [ "${BLOCKSERVE_ALLOW_MISSING_TOOLS:-0}" = 1 ]; then exit 77; fi
  exit 1
fi
exec "$@"
