"""``python -m mdfs.pipeline.cli``: the ``mdfs`` console script."""
import sys

from . import main

sys.exit(main())
