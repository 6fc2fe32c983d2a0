#!/usr/bin/env bash
# scripts/deps.sh: installs the Debian packages aft needs to build and test, when missing.
# As root it installs them with apt-get; otherwise it prints the command to run and fails.
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail

# Build and test requirements. fmt and doctest are the library's only dependencies; zlib,
# libpng and libjpeg-turbo read the example data sets (Enwik8 .zip/.gz, PNG grids, JPEGs).
PACKAGES=(cmake ninja-build g++ libfmt-dev doctest-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev "$@")

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "aft needs these Debian packages: ${missing[*]}" >&2
  echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/aft-apt.log 2>&1; then
  apt-get update >>/tmp/aft-apt.log 2>&1 || true
  apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/aft-apt.log 2>&1 || {
    tail -20 /tmp/aft-apt.log >&2
    echo "apt-get install failed (log: /tmp/aft-apt.log)" >&2
    exit 1
  }
fi
