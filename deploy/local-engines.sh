#!/usr/bin/env bash
# Fetch or build the local Beam engines the runner-parity tests execute, pinned
# to the Beam version in pyproject.toml, into .engines/ (ignored by git).
#
#   bash deploy/local-engines.sh            # -> .engines/prism
#
# Prism (Beam's Go runner) is built with `go install` from Beam's Go module on
# the Go module proxy.  Beam never downloads anything at run time: the job is
# given the binary with --prism_location (see docs/CLUSTER.md).
#
# Flink and Spark: Beam publishes their job servers on Maven Central as
# org.apache.beam:beam-runners-flink-<flink>-job-server and
# beam-runners-spark-3-job-server.  The script asks Maven for them and says
# plainly when the registry this machine reaches does not have them (in
# November 2026 it served no *-job-server artifact of any version); with the
# jar present, pass it as --flink_job_server_jar / --spark_job_server_jar.
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
fi

fetch_jar() {  # artifact id -> .engines/<id>.jar, or a one-line note
  local artifact=$1
  if [ -f ".engines/$artifact.jar" ]; then return 0; fi
  if ! command -v mvn >/dev/null 2>&1; then echo "local-engines: mvn not installed: $artifact not fetched" >&2; return 0; fi
  if mvn -q dependency:copy "-Dartifact=org.apache.beam:$artifact:$BEAM_VERSION" -DoutputDirectory=.engines \
       >/tmp/local-engines-mvn.log 2>&1; then
    mv ".engines/$artifact-$BEAM_VERSION.jar" ".engines/$artifact.jar"
    echo "local-engines: fetched $artifact $BEAM_VERSION"
  else
    echo "local-engines: Maven Central (as reached here) has no org.apache.beam:$artifact:$BEAM_VERSION; not fetched" >&2
  fi
}
fetch_jar beam-runners-flink-1.19-job-server
fetch_jar beam-runners-spark-3-job-server
ls -1 .engines
