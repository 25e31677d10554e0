"""Flex Template entry point: the template launcher runs this file with the
template parameters as command-line flags (--output, --config, --source, ...)."""
import sys

from mdfs.pipeline.commands.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
