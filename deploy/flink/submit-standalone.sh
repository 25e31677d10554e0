#!/usr/bin/env bash
# Submit mdfs to a Flink session cluster (standalone, not Kubernetes) through
# Beam's Flink job server, started here by `mdfs run` from .engines/.
#
# Versions the tests ran (tests/test_engines.py, tests/test_cluster.py):
#   Python SDK apache-beam 2.77.0, Beam Flink job server 2.62.0
#   (org.apache.beam:beam-runners-flink-1.19, built by deploy/local-engines.sh
#   from deploy/engines/flink/pom.xml), Flink 1.19.0, Java 17.
# Beam promises no compatibility across SDK and job-server versions: this
# pairing is the one the parity tests check (docs/CLUSTER.md).  The Kubernetes
# files beside this one use Beam's job-server image of the SDK's own version.
#
#   FLINK_REST=flink-jobmanager:8081 \
#     bash deploy/flink/submit-standalone.sh --output /shared/out --source 'cc=/shared/cc/*.warc.gz'
#
# The TaskManagers need the Beam runner classes on their class path (the jars
# of .engines/flink-job-server-lib/, as deploy/local-cluster.sh starts them):
# the thin launcher jar the job server ships carries none.  A worker pool on
# each TaskManager machine:
#   bash deploy/workers/worker-venv.sh cpu /opt/mdfs-worker
#   PATH=/opt/mdfs-worker/bin:$PATH python -m apache_beam.runners.worker.worker_pool_main --service_port 50000
set -euo pipefail
# the job servers deploy/local-engines.sh built in this checkout, unless MDFS_ENGINES names others
export MDFS_ENGINES="${MDFS_ENGINES:-$(cd "$(dirname "$0")/../.." && pwd)/.engines}"
: "${FLINK_REST:?set FLINK_REST=HOST:PORT of the JobManager REST endpoint}"
# Python SDK workers: by default each TaskManager/executor machine's own
# worker pool at localhost:50000 (one pool per machine, as the Kubernetes
# files run it beside each TaskManager; never one pool shared by several
# TaskManagers or executors: the runners number their workers per process,
# "1-1" on each, the pool keys them by that id, and one's StopWorker kills
# another's worker mid-job).  Or WORKER_COMMAND=/opt/mdfs-worker/sdk-worker:
# each TaskManager/executor starts its own workers (Beam's PROCESS
# environment) with a script on every machine that runs
#   exec /opt/mdfs-worker/bin/python -m mdfs.pipeline.commands.sdk_worker_boot "$@"
# (what deploy/local-cluster.sh writes and tests/test_cluster.py runs).
if [ -n "${WORKER_COMMAND:-}" ]; then
  workers=(--environment_type=PROCESS "--environment_config={\"command\":\"$WORKER_COMMAND\"}" --environment_cache_millis=60000)
else
  workers=(--environment_type=EXTERNAL "--environment_config=${WORKER_POOL:-localhost:50000}")
fi
exec mdfs run --runner=FlinkRunner --flink_master="$FLINK_REST" \
  "${workers[@]}" "$@"
