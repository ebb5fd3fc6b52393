#!/usr/bin/env bash
# run-default.sh [DATA_DIR] - install, build and start pecd on its embedded default
#
# With no configuration file pecd is a working PEC provider on loopback: it creates
# DATA_DIR (default ./run-data) with a self-signed TLS certificate, a demo PEC CA and
# signing certificate, a provider index listing itself, an SQLite store, the PEC domain
# pec.localhost with two mailboxes (alice, bob) and the service mailbox, and listeners on
# loopback. It prints the ports and how to send a first certified message.
#
# Every message is scanned by clamd (pecd never passes a message unscanned), so this
# script first starts Debian's clamd in DATA_DIR/clamav, offline, with a one-line
# signature database for the EICAR test file (no signature download is possible here).
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(realpath -m "${1:-run-data}")"
bash scripts/build.sh
mkdir -p "$data/clamav"
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s:%s:Pecd.Demo.EICAR\n' "$(printf '%s' "$eicar" | md5sum | cut -d' ' -f1)" "${#eicar}" \
  > "$data/clamav/pecd-demo.hdb"
cat > "$data/clamav/clamd.conf" <<CONF
LocalSocket $data/clamav/clamd.sock
Foreground yes
DatabaseDirectory $data/clamav
LogFile $data/clamav/clamd.log
StreamMaxLength 100M
MaxThreads 12
CONF
/usr/sbin/clamd -c "$data/clamav/clamd.conf" > "$data/clamav/clamd.out" 2>&1 &
clamd_pid=$!
trap 'kill $clamd_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  [ -S "$data/clamav/clamd.sock" ] && break
  sleep 0.1
done
./build/app/pecd/pecd --data-dir "$data"
