#!/usr/bin/env bash
# Build the local Beam engines mdfs runs on into .engines/ (ignored by git):
#
#   bash deploy/local-engines.sh
#     -> .engines/prism                      Prism (Beam's Go runner), the Beam version in pyproject.toml
#     -> .engines/flink-job-server.jar       Beam's Flink job server (Flink 1.19.0) ...
#     -> .engines/spark-job-server.jar       ... and Spark job server (Spark 3.5.7), Beam 2.62.0,
#        + .engines/*-job-server-lib/        thin launcher jars with their dependencies beside them
#
# Prism is built with `go install` from Beam's Go module on the Go module proxy.
# The job servers are built with Maven from deploy/engines/ (the runner
# artifacts on Maven Central; 416 MB the first time, into ~/.m2).
# `mdfs run --runner=FlinkRunner` / `SparkRunner` / `PrismRunner` find them here
# (or in $MDFS_ENGINES) without a flag; Beam never downloads anything at run
# time.  Versions and why 2.62.0: docs/CLUSTER.md.  Each part is rebuilt only
# when its version (or deploy/engines/) changed; a missing tool is reported and
# the script exits non-zero at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BEAM_VERSION=$(sed -n 's/.*"apache-beam==\([0-9.]*\)".*/\1/p' pyproject.toml | head -n1)
[ -n "$BEAM_VERSION" ] || { echo "local-engines: no apache-beam==X pin in pyproject.toml" >&2; exit 1; }
mkdir -p .engines

# go may be installed outside a non-login shell's PATH
GO=$(command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || true)
if [ -x .engines/prism ] && [ "$(cat .engines/prism.version 2>/dev/null)" = "$BEAM_VERSION" ]; then
  echo "local-engines: prism $BEAM_VERSION already built (.engines/prism)"
elif [ -n "$GO" ]; then
  echo "local-engines: building prism $BEAM_VERSION with go install (a few minutes the first time)"
  GOBIN="$PWD/.engines" "$GO" install "github.com/apache/beam/sdks/v2/go/cmd/prism@v$BEAM_VERSION"
  echo "$BEAM_VERSION" > .engines/prism.version
else
  echo "local-engines: go is not installed: prism not built" >&2
  FAILED=1
fi

# the job servers: one Maven build, then each launcher and its lib/ moved into .engines/
STAMP=$(cat deploy/engines/pom.xml deploy/engines/*/pom.xml | sha256sum | cut -c1-16)
if [ -f .engines/flink-job-server.jar ] && [ -f .engines/spark-job-server.jar ] \
   && [ "$(cat .engines/job-servers.version 2>/dev/null)" = "$STAMP" ]; then
  echo "local-engines: flink and spark job servers already built (.engines/*-job-server.jar)"
elif ! command -v mvn >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
  echo "local-engines: mvn and java (17) are needed to build the flink and spark job servers: not built" >&2
  FAILED=1
else
  echo "local-engines: building the flink and spark job servers with Maven (deploy/engines/; 416 MB of jars the first time)"
  if mvn -B -q -f deploy/engines/pom.xml package >/tmp/local-engines-mvn.$$.log 2>&1; then
    for e in flink spark; do
      rm -rf ".engines/$e-job-server-lib" ".engines/$e-job-server.jar"
      mv "deploy/engines/$e/target/$e-job-server-lib" "deploy/engines/$e/target/$e-job-server.jar" .engines/
    done
    echo "$STAMP" > .engines/job-servers.version
    rm -f /tmp/local-engines-mvn.$$.log
  else
    echo "local-engines: the Maven build failed; its log: /tmp/local-engines-mvn.$$.log" >&2
    tail -n 20 /tmp/local-engines-mvn.$$.log >&2
    FAILED=1
  fi
fi
ls -1 .engines
exit "${FAILED:-0}"
