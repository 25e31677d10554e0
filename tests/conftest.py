from __future__ import annotations

import inspect
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




# Tests that run the whole pipeline, a subprocess or model training are "slow";
# `python -m pytest -m "not slow"` is the quick unit run for contributors (the
# README's test command and CI run everything).
_SLOW_FIXTURES = {"sample_run", "portable_services", "models", "fasttext_spam_model"}
_SLOW_CALLS = ("run_job(", "mdfs(", "_mdfs(", "subprocess.", "Popen(", "bench/")


def pytest_collection_modifyitems(config, items):
    for item in items:
        fn = getattr(item, "function", None)
        try:
            source = inspect.getsource(fn) if fn else ""
        except (OSError, TypeError):
            source = ""
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or any(c in source for c in _SLOW_CALLS):
            item.add_marker(pytest.mark.slow)
