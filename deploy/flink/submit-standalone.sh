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
#   FLINK_REST=flink-jobmanager:8081 WORKER_POOL=worker-host:50000 \
#     bash deploy/flink/submit-standalone.sh --output /shared/out --source 'cc=/shared/cc/*.warc.gz'
#
# The TaskManagers need the Beam runner classes on their class path (the jars
# of .engines/flink-job-server-lib/, as deploy/local-cluster.sh starts them):
# the thin launcher jar the job server ships carries none.  WORKER_POOL is a
# Python SDK worker pool on the TaskManager machines:
#   bash deploy/workers/worker-venv.sh cpu /opt/mdfs-worker
#   PATH=/opt/mdfs-worker/bin:$PATH python -m apache_beam.runners.worker.worker_pool_main --service_port 50000
set -euo pipefail
# the job servers deploy/local-engines.sh built in this checkout, unless MDFS_ENGINES names others
export MDFS_ENGINES="${MDFS_ENGINES:-$(cd "$(dirname "$0")/../.." && pwd)/.engines}"
: "${FLINK_REST:?set FLINK_REST=HOST:PORT of the JobManager REST endpoint}"
: "${WORKER_POOL:?set WORKER_POOL=HOST:PORT of a Python SDK worker pool}"
exec mdfs run --runner=FlinkRunner --flink_master="$FLINK_REST" \
  --environment_type=EXTERNAL --environment_config="$WORKER_POOL" "$@"
