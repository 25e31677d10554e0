"""Small file-system helpers shared by the reader, the run, refilter and the dedup state."""
from __future__ import annotations

from apache_beam.io.filesystems import FileSystems


def exists(path: str) -> bool:
    """Whether ``path`` exists on any Beam file system; a scheme Beam does not
    know (or a store that refuses the question) counts as not there, so callers
    refuse with their own message instead of a traceback."""
    try:
        return FileSystems.exists(path)
    except Exception:  # noqa: BLE001 - an unknown scheme: not there
        return False
