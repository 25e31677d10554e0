#!/usr/bin/env bash
# A real Flink or Spark cluster on this machine, every JVM bound to 127.0.0.1,
# from the jars deploy/local-engines.sh put in .engines/ (the same Flink
# 1.19.0 / Spark 3.5.7 the job servers carry):
#
#   bash deploy/local-cluster.sh start flink RUN_DIR WORKER_VENV   # JobManager + 2 TaskManagers (1 slot each)
#   bash deploy/local-cluster.sh start spark RUN_DIR WORKER_VENV   # master + 2 workers (1 core each)
#   bash deploy/local-cluster.sh stop RUN_DIR                      # every process it started, by its PID
#
# `start` prints the flags that submit a job to the cluster (also written to
# RUN_DIR/flags), e.g.
#   --runner=FlinkRunner --flink_master=127.0.0.1:PORT --parallelism=2
#   --environment_type=PROCESS --environment_config={"command":"RUN_DIR/sdk-worker"}
# The job server (started by `mdfs run`) submits the job over the network;
# each TaskManager or executor starts its own Python SDK workers as separate
# processes with RUN_DIR/sdk-worker, which runs `python -m
# mdfs.pipeline.commands.sdk_worker_boot` from WORKER_VENV (made by
# deploy/workers/worker-venv.sh: the lean mdfs install, nothing from the
# submitting process).  Not one shared EXTERNAL worker pool: the runners
# number their workers per TaskManager ("1-1" on each), the pool keys workers
# by that id, and one TaskManager's StopWorker killed another's worker
# mid-job (CANCELLED: client cancelled).  Logs: RUN_DIR/logs/.  PIDs: RUN_DIR/pids.
#
# The cluster entry points are Flink's StandaloneSessionClusterEntrypoint and
# TaskManagerRunner, Spark's Master and Worker, started with java from the
# Maven runtime jars: the Beam runner classes the job server ships are then on
# every cluster process's class path too (the thin launcher jar carries none).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINES=${MDFS_ENGINES:-$PWD/.engines}
# Spark's add-opens list for Java 17 (as in Spark's JavaModuleOptions)
OPENS="--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
 --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
 --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
 --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
 --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
 --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED
 --add-opens=java.base/sun.util.calendar=ALL-UNNAMED"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_port() {  # port pid name: until something listens on 127.0.0.1:port (60 s), or the process died
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "local-cluster: $3 exited; see $RUN/logs/$3.log" >&2; tail -n 5 "$RUN/logs/$3.log" >&2; exit 1; }
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "local-cluster: $3 did not open port $1 in 60 s; see $RUN/logs/$3.log" >&2; exit 1
}

launch() {  # name command...: started in the background, its PID recorded
  local name=$1; shift
  "$@" >"$RUN/logs/$name.log" 2>&1 &
  echo "$! $name" >>"$RUN/pids"
  echo $!
}

sdk_worker() {  # the PROCESS environment's command: one Python SDK worker from the worker venv
  cat >"$RUN/sdk-worker" <<EOF
#!/bin/sh
# started by a TaskManager or an executor with --id=... --provision_endpoint=...
echo "\$(date +%T) pid \$\$ \$*" >>"$RUN/logs/sdk-workers.log"
PATH="$VENV/bin:\$PATH" exec "$VENV/bin/python" -m mdfs.pipeline.commands.sdk_worker_boot "\$@"
EOF
  chmod +x "$RUN/sdk-worker"
  # environments kept for reuse between stages: Spark otherwise starts a new
  # worker per stage and executor (81 Python starts for the samples)
  echo "--environment_type=PROCESS --environment_config={\"command\":\"$RUN/sdk-worker\"} --environment_cache_millis=60000"
}

start_flink() {
  local lib="$ENGINES/flink-job-server-lib" rpc rest
  [ -d "$lib" ] || { echo "local-cluster: no $lib: run bash deploy/local-engines.sh" >&2; exit 2; }
  rpc=$(free_port); rest=$(free_port)
  mkdir -p "$RUN/flink-conf" "$RUN/flink-tmp"
  cat >"$RUN/flink-conf/flink-conf.yaml" <<EOF
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: $rpc
jobmanager.bind-host: 127.0.0.1
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: $rest
taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
taskmanager.numberOfTaskSlots: 1
parallelism.default: 2
jobmanager.memory.process.size: 1024m
io.tmp.dirs: $RUN/flink-tmp
# started without Flink's launch scripts, so the TaskManager's resources are
# set here explicitly (what those scripts would derive and pass as -D flags);
# the JVM flags below match: heap = framework + task heap, direct = framework
# off-heap + task off-heap + network
taskmanager.cpu.cores: 1.0
taskmanager.memory.framework.heap.size: 128m
taskmanager.memory.task.heap.size: 512m
taskmanager.memory.framework.off-heap.size: 128m
taskmanager.memory.task.off-heap.size: 0m
# network: Flink's sort-based batch shuffle wants 512 buffers (of 32 KiB) per
# result partition by default, and the mdfs job has a couple of dozen tasks
# per TaskManager: "Insufficient number of network buffers" even with 256m
taskmanager.network.sort-shuffle.min-buffers: 64
taskmanager.memory.network.min: 256m
taskmanager.memory.network.max: 256m
taskmanager.memory.managed.size: 128m
taskmanager.memory.jvm-metaspace.size: 256m
taskmanager.memory.jvm-overhead.min: 192m
taskmanager.memory.jvm-overhead.max: 192m
EOF
  local jm; jm=$(launch jobmanager java -Xmx512m -cp "$lib/*" \
    org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint --configDir "$RUN/flink-conf")
  wait_port "$rest" "$jm" jobmanager
  for i in 1 2; do
    launch "taskmanager-$i" java -Xmx640m -Xms640m -XX:MaxDirectMemorySize=384m -XX:MaxMetaspaceSize=256m -cp "$lib/*" \
      org.apache.flink.runtime.taskexecutor.TaskManagerRunner --configDir "$RUN/flink-conf" \
      -Dtaskmanager.resource-id="tm-$i" >/dev/null
  done
  # both TaskManagers registered with the JobManager before a job is submitted
  for _ in $(seq 1 300); do
    [ "$(curl -s "http://127.0.0.1:$rest/taskmanagers" | grep -o '"id"' | wc -l)" -ge 2 ] && break
    sleep 0.2
  done
  [ "$(curl -s "http://127.0.0.1:$rest/taskmanagers" | grep -o '"id"' | wc -l)" -ge 2 ] \
    || { echo "local-cluster: the TaskManagers did not register; see $RUN/logs/" >&2; exit 1; }
  echo "--runner=FlinkRunner --flink_master=127.0.0.1:$rest --parallelism=2 $(sdk_worker)" >"$RUN/flags"
}

start_spark() {
  local lib="$ENGINES/spark-job-server-lib" port ui
  [ -d "$lib" ] || { echo "local-cluster: no $lib: run bash deploy/local-engines.sh" >&2; exit 2; }
  port=$(free_port); ui=$(free_port)
  # a Spark worker builds each executor's class path from SPARK_HOME/jars: the same jars
  mkdir -p "$RUN/spark-home" && ln -sfn "$lib" "$RUN/spark-home/jars"
  export SPARK_HOME="$RUN/spark-home" SPARK_SCALA_VERSION=2.12 SPARK_LOCAL_IP=127.0.0.1
  # shellcheck disable=SC2086
  local master; master=$(launch spark-master java -Xmx512m $OPENS -cp "$lib/*" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$port" --webui-port "$ui")
  wait_port "$port" "$master" spark-master
  for i in 1 2; do
    mkdir -p "$RUN/spark-work-$i"
    # shellcheck disable=SC2086
    launch "spark-worker-$i" java -Xmx512m $OPENS -cp "$lib/*" org.apache.spark.deploy.worker.Worker \
      --host 127.0.0.1 --cores 1 --memory 1g --webui-port "$(free_port)" --work-dir "$RUN/spark-work-$i" \
      "spark://127.0.0.1:$port" >/dev/null
  done
  for _ in $(seq 1 300); do
    [ "$(grep -l "Successfully registered with master" "$RUN"/logs/spark-worker-*.log 2>/dev/null | wc -l)" -ge 2 ] && break
    sleep 0.2
  done
  [ "$(grep -l "Successfully registered with master" "$RUN"/logs/spark-worker-*.log 2>/dev/null | wc -l)" -ge 2 ] \
    || { echo "local-cluster: the Spark workers did not register; see $RUN/logs/" >&2; exit 1; }
  echo "--runner=SparkRunner --spark_master_url=spark://127.0.0.1:$port $(sdk_worker)" >"$RUN/flags"
}

stop_all() {  # each recorded process by its PID, newest first (the SDK workers end with their TaskManager or executor)
  [ -f "$RUN/pids" ] || return 0
  tac "$RUN/pids" | while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "local-cluster: $name ($pid) did not stop on TERM: killed" >&2
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
  done
  rm -f "$RUN/pids"
}

case "${1:-}" in
  start)
    engine=${2:?usage: local-cluster.sh start flink|spark RUN_DIR WORKER_VENV}
    RUN=$(mkdir -p "${3:?RUN_DIR}" && cd "$3" && pwd)
    VENV=$(cd "${4:?WORKER_VENV}" && pwd)
    [ -x "$VENV/bin/python" ] || { echo "local-cluster: $VENV is no venv (deploy/workers/worker-venv.sh cpu DIR makes one)" >&2; exit 2; }
    mkdir -p "$RUN/logs"
    trap '[ "${started:-}" = 1 ] || stop_all' EXIT  # a failed start leaves nothing running
    case "$engine" in
      flink) start_flink ;;
      spark) start_spark ;;
      *) echo "local-cluster: the engine is flink or spark, not '$engine'" >&2; exit 2 ;;
    esac
    started=1
    cat "$RUN/flags" ;;
  stop)
    RUN=${2:?usage: local-cluster.sh stop RUN_DIR}
    stop_all ;;
  *) echo "usage: local-cluster.sh start flink|spark RUN_DIR WORKER_VENV | stop RUN_DIR" >&2; exit 2 ;;
esac
