"""``python -m mdfs.pipeline.commands.cli``: the ``mdfs`` console script."""
import sys

from . import main

if __name__ == "__main__":  # imported (a walk over the package's modules), it runs nothing
    sys.exit(main())
