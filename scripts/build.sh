#!/usr/bin/env bash
# build.sh [--sanitize] [--fuzz] - configure and build pecd into build/ (or build-asan/)
#
# Installs the Debian packages it needs first (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
for a in "$@"; do
  case "$a" in
    --sanitize) dir=build-asan; args+=(-DPECD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DPECD_BENCH=OFF) ;;
    --fuzz) dir=build-fuzz; args+=(-DPECD_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DPECD_BENCH=OFF -DPECD_TESTS=OFF) ;;
    --no-deps) SKIP_DEPS=1 ;;
    *) echo "build.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
[ -n "${SKIP_DEPS:-}" ] || bash scripts/install-deps.sh
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
# ccache makes rebuilds in a second build directory (sanitizer, fuzz) cheap; the build
# directory is left out of the hash so every directory shares one cache.
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_NOHASHDIR=true
  # Paths below the checkout are hashed relative to it, so a fresh clone elsewhere
  # reuses what an earlier build compiled.
  export CCACHE_BASEDIR="$PWD"
  args+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$dir" "${gen[@]}" "${args[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
echo "build.sh: built into $dir"
