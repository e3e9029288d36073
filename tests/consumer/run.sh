#!/usr/bin/env bash
# Installs the built library into a scratch prefix and builds a user's project against it twice:
# with CMake's find_package(qprune) and with pkg-config (qprune.pc); both programs must agree with
# their own brute force. Usage: run.sh BUILD_DIR
set -eu
build=$1
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
echo "== find_package(qprune)"
cmake -S "$here" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$scratch/build" >/dev/null
"$scratch/build/consumer" "$scratch"
echo "== pkg-config qprune"
pc_dir=$(dirname "$(find "$scratch/prefix" -name qprune.pc | head -1)")
export PKG_CONFIG_PATH="$pc_dir"
# shellcheck disable=SC2046
c++ -O2 -o "$scratch/consumer_pc" "$here/main.cpp" $(pkg-config --cflags --libs --static qprune)
"$scratch/consumer_pc" "$scratch"
echo "consumer: both builds passed"
