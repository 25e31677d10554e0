from __future__ import annotations

import pytest

from helpers import run_job


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """One run of the pipeline over the bundled samples, shared by the end-to-end tests."""
    out = tmp_path_factory.mktemp("sample_run")
    return out, run_job(out)


