#!/usr/bin/env bash
# run-default.sh [DATA_DIR] - install, build and start pecd on its embedded default
#
# With no configuration file pecd creates DATA_DIR (default ./run-data): a self-signed
# CA and localhost certificate, an SQLite store, a demo domain with two mailboxes, and
# listeners on loopback. It prints the ports and how to send a first message.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-run-data}"
bash scripts/build.sh
exec ./build/app/pecd/pecd --data-dir "$data"
