#!/usr/bin/env bash
# Submit mdfs to a Spark standalone cluster through Beam's Spark job server.
#
# Versions the tests ran (tests/test_engines.py, tests/test_cluster.py):
#   Python SDK apache-beam 2.77.0, Beam Spark job server 2.62.0
#   (org.apache.beam:beam-runners-spark-3, built by deploy/local-engines.sh from
#   deploy/engines/spark/pom.xml), Spark 3.5.7 (Scala 2.12), Java 17.
# Beam promises no compatibility across SDK and job-server versions: this
# pairing is the one the parity tests check (docs/CLUSTER.md).
#
#   SPARK_MASTER=spark://spark-master:7077 \
#     bash deploy/spark/submit.sh --output /shared/out --source 'cc=/shared/cc/*.warc.gz'
#
# The job server runs here (started by `mdfs run`, from .engines/) as the Spark
# driver: the executors must reach this machine (set SPARK_LOCAL_IP to an
# address they can reach), and the cluster's executors need the Beam runner
# classes on their class path (the jars of .engines/spark-job-server-lib/, as
# deploy/local-cluster.sh starts its workers).  A worker pool on each worker
# machine:
#   bash deploy/workers/worker-venv.sh cpu /opt/mdfs-worker
#   PATH=/opt/mdfs-worker/bin:$PATH python -m apache_beam.runners.worker.worker_pool_main --service_port 50000
# Input and output paths must be readable/writable from every worker (shared
# filesystem or gs://, s3://, hdfs://).
set -euo pipefail
# the job servers deploy/local-engines.sh built in this checkout, unless MDFS_ENGINES names others
export MDFS_ENGINES="${MDFS_ENGINES:-$(cd "$(dirname "$0")/../.." && pwd)/.engines}"
: "${SPARK_MASTER:?set SPARK_MASTER=spark://HOST:7077}"
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
exec mdfs run --runner=SparkRunner --spark_master_url="$SPARK_MASTER" \
  "${workers[@]}" "$@"
