#!/usr/bin/env bash
# What a person sees: an `mdfs run` with two local worker processes on the
# bundled samples, in an 80-column tmux pane, captured as text.
#   bash bench/terminal_capture.sh OUT.txt [PYTHONPATH of another checkout, for a "before"]
set -euo pipefail
out="$(realpath -m "$1")"
work="$(mktemp -d)"
py="${PYTHON:-python}"
cmd="cd $work && PYTHONPATH=${2:-} $py -m mdfs.pipeline.commands.cli run --output run --set read.progress_every_s=3 \
 --runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers=2; echo EXIT \$?; sleep 600"
tmux kill-session -t mdfs-capture 2>/dev/null || true
tmux new-session -d -s mdfs-capture -x 80 -y 200 "$cmd"
for _ in $(seq 1 240); do
  sleep 1
  tmux capture-pane -p -t mdfs-capture -S - | grep -q "^EXIT" && break
done
tmux capture-pane -p -t mdfs-capture -S - | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' > "$out"
tmux kill-session -t mdfs-capture
echo "$out"
