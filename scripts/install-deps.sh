#!/usr/bin/env bash
# install-deps.sh - install every build, test and peer dependency of pecd
#
# Everything comes from Debian's packages; nothing is downloaded from elsewhere.
# Idempotent: packages already present are left alone. Needs root (or sudo).
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libboost-dev libboost-system-dev libboost-program-options-dev
  libssl-dev openssl libgmime-3.0-dev libxml2-dev libxml2-utils
  libsqlite3-dev sqlite3 libpq-dev libldap-dev libc-ares-dev libsodium-dev
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libp11-dev libengine-pkcs11-openssl ccache
  libjemalloc-dev
)
PEER_PKGS=(
  softhsm2 opensc p11-kit swaks postfix clamav-daemon clamav
  slapd ldap-utils dovecot-lmtpd dovecot-core postgresql unbound dnsmasq
  nginx-light testssl.sh curl python3 procps iproute2 psmisc strace libnet-ssleay-perl libio-socket-ssl-perl
)

want=()
for p in "${BUILD_PKGS[@]}" "${PEER_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || want+=("$p")
done
if [ ${#want[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how it should run; a local-only answer keeps it quiet and off the network.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${want[@]}"

# Daemons installed by packages must not run as system services here: tests start
# their own instances on loopback in temporary directories.
for svc in postfix clamav-daemon clamav-freshclam slapd dovecot postgresql unbound dnsmasq nginx; do
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if [ -x "/etc/init.d/$svc" ]; then $SUDO "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
done
echo "install-deps: installed ${#want[@]} packages"
