#!/usr/bin/env bash
# scripts/download_enwik8.sh: downloads Enwik8 (enwik8.zip, 36 MB, from the Hutter Prize page)
# into a directory and checks it. The enwik8 program reads the .zip directly:
#   scripts/download_enwik8.sh data/
#   build/examples/enwik8/enwik8 train --data data/enwik8.zip --dataset enwik8 --preset small
# Not run by the tests (they build their own small files). Needs curl (or wget) and network.
set -euo pipefail
dir=${1:-data}
url=${ENWIK8_URL:-http://mattmahoney.net/dc/enwik8.zip}
# sha256 of the unzipped 100,000,000-byte file.
want=2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8
mkdir -p "$dir"
out="$dir/enwik8.zip"
if [ ! -s "$out" ]; then
  echo "downloading $url -> $out"
  if command -v curl >/dev/null; then curl -fL --retry 3 -o "$out.part" "$url"
  else wget -O "$out.part" "$url"; fi
  mv "$out.part" "$out"
fi
if command -v unzip >/dev/null && command -v sha256sum >/dev/null; then
  got=$(unzip -p "$out" enwik8 | sha256sum | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "error: $out does not unzip to Enwik8 (sha256 $got, expected $want)" >&2
    exit 1
  fi
  echo "ok: $out holds Enwik8 (sha256 checked)"
else
  echo "downloaded $out (install unzip and coreutils to check its sha256)"
fi
