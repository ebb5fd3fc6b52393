#!/usr/bin/env bash
# test.sh [--sanitize] - install, build and run the whole test suite (CTest)
#
# Every test that needs a peer (clamd, slapd, Dovecot, Postfix, PostgreSQL, a DNS
# server) starts it itself on loopback in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
[ "${1:-}" = "--sanitize" ] && dir=build-asan
bash scripts/build.sh "$@"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$dir"
ctest --output-on-failure -j "$(nproc)" --timeout 600
