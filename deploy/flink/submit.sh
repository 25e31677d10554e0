#!/usr/bin/env bash
# Submit mdfs to the Flink cluster through Beam's Flink job server.
set -euo pipefail
kubectl -n mdfs port-forward svc/beam-flink-job-server 8099:8099 8098:8098 &
PF=$!
trap 'kill $PF' EXIT
sleep 3
mdfs run \
  --runner=PortableRunner --job_endpoint=localhost:8099 --artifact_endpoint=localhost:8098 \
  --environment_type=EXTERNAL --environment_config=localhost:50000 \
  --output s3://mdfs-out/cc-2024-22 \
  --source 'common_crawl=s3://commoncrawl/crawl-data/CC-MAIN-2024-22/segments/*/warc/*.warc.gz' \
  --config deploy/flink/cluster.yaml
