"""Command-line flags of ``mdfs run`` as a Beam ``PipelineOptions`` subclass, so
the same flags work as Dataflow Flex Template parameters.  Runner flags
(``--runner``, ``--direct_running_mode``, ``--project``, ...) are Beam's own."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions


class MdfsOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--output", required=False, help="output directory (local path or gs://, s3://, ...)")
        parser.add_argument("--config", default=None, help="YAML config file (deep-merged over the defaults)")
        parser.add_argument("--source", action="append", default=None, metavar="NAME=GLOB",
                            help="add a source, or replace its paths; may repeat")
        parser.add_argument("--set", dest="overrides", action="append", default=None, metavar="KEY.PATH=VALUE",
                            help="override one config value (parsed as YAML); may repeat")
        parser.add_argument("--overwrite", action="store_true", default=False,
                            help="replace an existing output directory instead of refusing")
