#!/usr/bin/env bash
# Prepare a Python SDK worker environment for a Flink or Spark worker pool
# (`python -m apache_beam.runners.worker.worker_pool_main`), or for any machine
# that runs the job, from this repository with pinned versions:
#
#   bash deploy/workers/worker-venv.sh cpu /opt/mdfs-worker   # lean core: no torch, no CUDA
#   bash deploy/workers/worker-venv.sh gpu /opt/mdfs-worker   # core + [bert] with PyPI's CUDA torch
#
# The pins are constraints (constraints-cpu.txt, constraints-gpu.txt): they fix
# the versions of whatever the project's own requirements pull in, and nothing
# else.  Regenerate them with deploy/workers/freeze.sh after changing
# pyproject.toml.  The worker pool must be started with this venv's python
# first on PATH (Beam's pool starts workers with a bare `python`).
set -euo pipefail
kind=${1:?usage: worker-venv.sh cpu|gpu DIR}
dir=${2:?usage: worker-venv.sh cpu|gpu DIR}
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
case "$kind" in
  cpu) target="$repo" ;;
  gpu) target="$repo[bert]" ;;
  *) echo "worker-venv: the kind is cpu or gpu, not '$kind'" >&2; exit 2 ;;
esac
python3 -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --upgrade pip
"$dir/bin/python" -m pip install --quiet -c "$here/constraints-$kind.txt" "$target"
if [ "$kind" = cpu ] && "$dir/bin/python" -c "import torch" 2>/dev/null; then
  echo "worker-venv: torch found in a CPU worker environment" >&2; exit 1
fi
echo "worker-venv: $kind environment in $dir ($(du -sh "$dir" | cut -f1))"
