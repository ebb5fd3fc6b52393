#!/usr/bin/env bash
# fuzz.sh [TARGET...] [--seconds N] [--jobs N] - a longer libFuzzer run of the parsers that
# take hostile input
#
# Targets: pec_verify (raw message -> S/MIME, classification, verification), daticert
# (daticert.xml parser), smtp_session (a whole SMTP connection against the server
# session), smtp_client (the delivering client against a server that says anything),
# config (the TOML configuration reader), ldif (the provider directory and the index
# built from it), mime_view (a stored message as the API shows it), jwt (bearer tokens
# through the API's verifier) and timestamp (RFC 3161 replies as the legal log's sealer
# reads and verifies them); the fuzz/common/*_entries.hpp list what each of the last
# seven checks. Default: all nine, 300 seconds each; a target's fuzz/<target>/<target>.dict
# goes to libFuzzer. The fuzzers are built with clang into build-fuzz/ (scripts/build.sh
# --fuzz configures it when missing). Corpora live in
# build-fuzz/fuzz-corpus/<target>, seeded from tests/data/pec-samples and
# fuzz/<target>/corpus; crashes are written to build-fuzz/fuzz-artifacts/<target>/ and make
# the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=300
jobs=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    pec_verify|daticert|smtp_session|smtp_client|config|ldif|mime_view|jwt|timestamp) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(pec_verify daticert smtp_session smtp_client config ldif mime_view jwt timestamp)

dir=build-fuzz
if [ ! -f "$dir/build.ninja" ] && [ ! -f "$dir/Makefile" ]; then
  bash scripts/build.sh --fuzz --no-deps
fi
cmake --build "$dir" --target "${targets[@]/#/fuzz_}" -j 2

status=0
for t in "${targets[@]}"; do
  corpus="$dir/fuzz-corpus/$t"
  artifacts="$dir/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  seeds=()
  [ -d "fuzz/$t/corpus" ] && seeds+=("fuzz/$t/corpus")
  { [ "$t" = pec_verify ] || [ "$t" = mime_view ]; } && seeds+=("tests/data/pec-samples")
  echo "fuzz.sh: $t for ${seconds}s (corpus $corpus)"
  extra=()
  [ -f "fuzz/$t/$t.dict" ] && extra+=(-dict="fuzz/$t/$t.dict")
  # -jobs (even -jobs=1) sends libFuzzer's output to fuzz-N.log files: only when asked.
  [ "$jobs" -gt 1 ] && extra+=(-jobs="$jobs" -workers="$jobs")
  if ! "$dir/fuzz/$t/fuzz_$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
      -max_len=262144 "${extra[@]}" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}"; then
    echo "fuzz.sh: $t FOUND A PROBLEM - see $artifacts" >&2
    status=1
  fi
done
exit $status
