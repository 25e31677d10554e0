from __future__ import annotations

import logging

import pytest

from helpers import run_job

# Beam stops the Prism job server from an atexit hook and logs that it does so;
# by then pytest has closed the captured stream, and logging would print a
# "Logging error" traceback after the test summary.  Nothing is lost: the
# message is only that the server is being stopped.
logging.raiseExceptions = False


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """One run of the pipeline over the bundled samples, shared by the end-to-end tests."""
    out = tmp_path_factory.mktemp("sample_run")
    return out, run_job(out)


