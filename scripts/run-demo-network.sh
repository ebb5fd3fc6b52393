#!/usr/bin/env bash
# run-demo-network.sh [DATA_DIR] - install, build and start two demo PEC providers on loopback
#
# Provider A (a.pec.localhost, mailbox alice) and provider B (b.pec.localhost, mailbox
# bob) with their own signing certificates from one demo CA, one shared provider index,
# verified STARTTLS between them and one offline clamd (scripts/demo_network.py). It
# prints the swaks command for a certified message from alice to bob and the pecctl
# commands that show the receipts and the message's history. DATA_DIR (default
# ./run-demo) is made fresh on each run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec python3 scripts/demo_network.py "${1:-run-demo}"
