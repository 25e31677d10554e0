#!/usr/bin/env bash
# Regenerate the worker constraint sets from fresh installs of this repository:
#   bash deploy/workers/freeze.sh
# constraints-cpu.txt: the core install (no torch); constraints-gpu.txt: core + [bert].
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for kind in cpu gpu; do
  target="$repo"; [ "$kind" = gpu ] && target="$repo[bert]"
  python3 -m venv "$tmp/$kind"
  "$tmp/$kind/bin/python" -m pip install --quiet --upgrade pip
  "$tmp/$kind/bin/python" -m pip install --quiet "$target"
  { echo "# pinned by deploy/workers/freeze.sh on $(date -u +%Y-%m-%d) (Python $("$tmp/$kind/bin/python" -c 'import platform; print(platform.python_version())'))"
    "$tmp/$kind/bin/python" -m pip freeze --exclude-editable | grep -v -i '^mdfs[ =@]'; } > "$here/constraints-$kind.txt"
  echo "freeze: $kind $(grep -vc '^#' "$here/constraints-$kind.txt") pins"
done
