"""A Python SDK worker for Beam's PROCESS environment, started by a Flink
TaskManager or a Spark executor (the Java runners' ProcessEnvironmentFactory
runs the environment's command with ``--id=WORKER_ID
--provision_endpoint=HOST:PORT``)::

    python -m mdfs.pipeline.commands.sdk_worker_boot --id=1-1 --provision_endpoint=localhost:40000

It asks the provision service for the control and logging endpoints and the
pipeline options, as Beam's Go boot program does in Beam's SDK containers,
and runs Beam's own ``sdk_worker_main``.  Used where one EXTERNAL worker pool
would serve several TaskManagers: the runners number their workers per
TaskManager ("1-1" on each), the pool keys its workers by that id, and one
TaskManager's StopWorker then kills another's worker mid-job (the job fails
with ``CANCELLED: client cancelled``).  Staged artifacts are not installed:
the worker's venv must already hold mdfs (deploy/workers/worker-venv.sh)."""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    import grpc
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc
    from apache_beam.runners.worker import sdk_worker_main
    from google.protobuf import json_format, text_format

    ap = argparse.ArgumentParser(prog="python -m mdfs.pipeline.commands.sdk_worker_boot")
    ap.add_argument("--id", required=True)
    ap.add_argument("--provision_endpoint", required=True)
    args, _ = ap.parse_known_args(argv)
    with grpc.insecure_channel(args.provision_endpoint) as channel:
        info = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", args.id)], timeout=60).info
    os.environ["WORKER_ID"] = args.id
    os.environ["CONTROL_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.control_endpoint)
    if info.logging_endpoint.url:
        os.environ["LOGGING_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.logging_endpoint)
    os.environ["PIPELINE_OPTIONS"] = json_format.MessageToJson(info.pipeline_options)
    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
