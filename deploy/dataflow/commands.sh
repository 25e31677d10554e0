#!/usr/bin/env bash
# Build and launch mdfs as a Dataflow Flex Template.  Fill in the variables.
set -euo pipefail
PROJECT=${PROJECT:?set PROJECT}
REGION=${REGION:-us-central1}
BUCKET=${BUCKET:?set BUCKET}                     # gs://... without trailing slash
REPO=${REPO:-mdfs}                               # Artifact Registry repository
IMAGE=${REGION}-docker.pkg.dev/${PROJECT}/${REPO}/mdfs:latest
IMAGE_GPU=${REGION}-docker.pkg.dev/${PROJECT}/${REPO}/mdfs-gpu:latest

build() {
  gcloud builds submit --project "$PROJECT" --tag "$IMAGE" -f deploy/dataflow/Dockerfile .
  gcloud builds submit --project "$PROJECT" --tag "$IMAGE_GPU" -f deploy/dataflow/Dockerfile.gpu .
  gcloud dataflow flex-template build "$BUCKET/templates/mdfs.json" \
    --image "$IMAGE" --sdk-language PYTHON --metadata-file deploy/dataflow/metadata.json
}

run() {
  # CPU workers for reading, extraction, rules and dedup; the classifier step
  # alone asks for a GPU through its resource hint (fine.bert.accelerator).
  gcloud dataflow flex-template run "mdfs-$(date +%Y%m%d-%H%M%S)" \
    --project "$PROJECT" --region "$REGION" \
    --template-file-gcs-location "$BUCKET/templates/mdfs.json" \
    --staging-location "$BUCKET/staging" --temp-location "$BUCKET/tmp" \
    --worker-machine-type n2-standard-8 --max-workers 200 \
    --additional-experiments use_runner_v2 \
    --parameters sdk_container_image="$IMAGE" \
    --parameters output="$BUCKET/out/cc-2024-22" \
    --parameters config="$BUCKET/config/cc.yaml" \
    --parameters source="common_crawl=gs://commoncrawl-bucket/crawl-data/CC-MAIN-2024-22/segments/*/warc/*.warc.gz" \
    --parameters set="fine.bert.accelerator=type:nvidia-l4;count:1;install-nvidia-driver"
}

"${1:-run}"
