#!/usr/bin/env bash
# A `bert` for a machine without Swift (the GPU machine): the binary built with the Swift runtime linked in, plus every
# shared library it loads that is not glibc's or the C++ runtime's (OpenBLAS, Open MPI, HDF5 and theirs), in one
# archive, .build-bundle/bert-bundle.tar.xz. Unpack it anywhere (Python's tarfile will do) and run bert-bundle/bert.
#   scripts/bundle.sh          build the archive
#   scripts/bundle.sh --check  unpack it with Python's tarfile into a temporary directory and run it with an empty
#                              environment: every library must resolve inside the bundle or to the system's C runtime
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build-bundle
archive=$out/bert-bundle.tar.xz
# What the target machine is expected to have (GPU.md: glibc 2.34+, libstdc++ with GLIBCXX 3.4.30).
system='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libstdc\+\+\.so|libgcc_s\.so)'

if [ "${1:-}" = "--check" ]; then
  [ -f "$archive" ] || { echo "bundle.sh: $archive is missing; run scripts/bundle.sh first" >&2; exit 1; }
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$archive" "$tmp"
  dir=$tmp/bert-bundle
  outside=$(env -i LD_LIBRARY_PATH="$dir/lib" ldd "$dir/bert.bin" | awk '$2 == "=>" {print $1, $3}' \
    | grep -Ev "$system" | grep -v " $dir/lib/" || true)
  [ -z "$outside" ] || { echo "bundle.sh: libraries resolved outside the bundle:"; echo "$outside"; exit 1; } >&2
  env -i "$dir/bert" bench --model bert-tiny --batch 2 --seq-len 16 --steps 1 --warmup 0 --threads 1
  env -i "$dir/bert" check-device --device emulated | tail -1
  echo "bundle.sh: $archive runs from a bare environment ($(du -h "$archive" | cut -f1))"
  exit 0
fi

swift build -c release --static-swift-stdlib --product bert --scratch-path .build-static
rm -rf "$out/bert-bundle" && mkdir -p "$out/bert-bundle/lib"
cp .build-static/release/bert "$out/bert-bundle/bert.bin"
strip "$out/bert-bundle/bert.bin"
ldd "$out/bert-bundle/bert.bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | grep -Ev "$system" \
  | while read -r name path; do cp -L "$path" "$out/bert-bundle/lib/$name"; done
cat > "$out/bert-bundle/bert" <<'LAUNCHER'
#!/bin/sh
# Runs the bundled bert with the bundled libraries first on the search path.
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/bert.bin" "$@"
LAUNCHER
chmod +x "$out/bert-bundle/bert"
tar -C "$out" -cJf "$archive.partial" bert-bundle && mv "$archive.partial" "$archive"
echo "bundle.sh: wrote $archive ($(du -h "$archive" | cut -f1), $(ls "$out/bert-bundle/lib" | wc -l) libraries)"
