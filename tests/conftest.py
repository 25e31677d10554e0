from __future__ import annotations

import inspect
import logging
from pathlib import Path

import pytest

from helpers import run_job

# Beam stops the Prism job server from an atexit hook and logs that it does so;
# by then pytest has closed the captured stream, and logging would print a
# "Logging error" traceback after the test summary.  Nothing is lost: the
# message is only that the server is being stopped.
logging.raiseExceptions = False

_SMS_TRAIN = Path(__file__).resolve().parent / "data" / "sms_spam_train.jsonl"


@pytest.fixture(scope="session")
def fasttext_models(tmp_path_factory):
    """A tiny fastText spam classifier (labels ham/spam) at ``root / "ft"``, trained
    in seconds on the bundled SMS set, with its training languages recorded.
    Core install only: no torch."""
    from mdfs.classifiers.data import read_jsonl
    from mdfs.classifiers.fasttext_model import train as train_fasttext
    from mdfs.classifiers.langid import training_languages
    from mdfs.classifiers.metadata import record_languages

    root = tmp_path_factory.mktemp("models")
    data = read_jsonl(str(_SMS_TRAIN))
    train_fasttext(data.texts, data.labels, str(root / "ft"), data.label_names, epoch=25)
    record_languages(str(root / "ft"), "fasttext", training_languages(data.texts))  # as `mdfs train-classifier` does
    return root


@pytest.fixture(scope="session")
def models(fasttext_models):
    """``fasttext_models`` plus a tiny BERT spam classifier at ``root / "bert"``
    (needs the [bert] extra: tests using this fixture are marked ``bert``)."""
    from mdfs.classifiers import bert
    from mdfs.classifiers.data import read_jsonl
    from mdfs.classifiers.langid import training_languages
    from mdfs.classifiers.metadata import record_languages

    root = fasttext_models
    data = read_jsonl(str(_SMS_TRAIN))
    bert.train(data.texts, data.label_ids, data.label_names, str(root / "bert"), epochs=4, lr=1e-3,
               batch_size=16, max_length=64, hidden_size=64, layers=1, heads=2, vocab_size=2000, seed=0,
               log=lambda *_: None)
    record_languages(str(root / "bert"), "bert", training_languages(data.texts))
    return root


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """One run of the pipeline over the bundled samples, shared by the end-to-end tests."""
    out = tmp_path_factory.mktemp("sample_run")
    return out, run_job(out)


# The fast tier (`pytest -m "not slow"`) is chosen by measured cost, fixtures
# included: tests/durations.json holds each test's CPU seconds and wall seconds
# (setup, call and teardown, child processes included) and each fixture's setup
# CPU seconds, recorded by a full run with
# MDFS_RECORD_DURATIONS=tests/durations.json.  A test is slow when its own CPU
# cost, or the setup of any fixture it uses, exceeds SLOW_CPU_S, or when it
# waits (a server, a browser) longer than SLOW_WALL_S.  Tests not yet recorded
# (new ones) fall back to what their source calls.
SLOW_CPU_S = 0.5
SLOW_WALL_S = 2.0
_DURATIONS_FILE = Path(__file__).resolve().parent / "durations.json"
_SLOW_FIXTURES = {"sample_run", "portable_services", "models", "fasttext_models", "fasttext_spam_model"}
_SLOW_CALLS = ("run_job(", "mdfs(", "_mdfs(", "cli.main(", "subprocess.", "Popen(", "bench/")
_recorded: dict = {"tests": {}, "wall": {}, "fixtures": {}}

# Tests that need torch and transformers (the [bert] extra) are marked "bert":
# .ci/run runs `-m "not bert"` in the lean core install first, which proves the
# core complete, then installs the extra and runs `-m bert`.
_BERT_FIXTURES = {"models"}


def _durations() -> dict:
    import json

    try:
        return json.loads(_DURATIONS_FILE.read_text())
    except (OSError, ValueError):
        return {"tests": {}, "wall": {}, "fixtures": {}}


def _slow_by_source(item) -> bool:
    fn = getattr(item, "function", None)
    try:
        source = inspect.getsource(fn) if fn else ""
    except (OSError, TypeError):
        source = ""
    return bool(_SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))) or any(c in source for c in _SLOW_CALLS)


def pytest_collection_modifyitems(config, items):
    known = _durations()
    slow_fixtures = {name for name, cpu in known.get("fixtures", {}).items() if cpu > SLOW_CPU_S}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if _BERT_FIXTURES & fixtures:
            item.add_marker(pytest.mark.bert)
        cost = known.get("tests", {}).get(item.nodeid)
        if cost is None:
            slow = _slow_by_source(item)
        else:
            wall = known.get("wall", {}).get(item.nodeid, 0.0)
            slow = cost > SLOW_CPU_S or wall > SLOW_WALL_S or bool(slow_fixtures & fixtures)
        if slow:
            item.add_marker(pytest.mark.slow)


def _cpu() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class _CostRecorder:
    """Registered as a plugin (pytest_configure), not as this conftest's own
    hooks: a conftest's hooks do not see session-scoped fixtures, whose node is
    the session, above this folder."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        start = _cpu()
        yield
        name = fixturedef.argname
        _recorded["fixtures"][name] = max(_cpu() - start, _recorded["fixtures"].get(name, 0.0))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        import time

        start, wall = _cpu(), time.perf_counter()
        yield
        _recorded["tests"][item.nodeid] = round(_cpu() - start, 3)
        _recorded["wall"][item.nodeid] = round(time.perf_counter() - wall, 3)


def pytest_configure(config):
    config.pluginmanager.register(_CostRecorder(), "mdfs-cost-recorder")


def pytest_sessionfinish(session, exitstatus):
    import json
    import os

    target = os.environ.get("MDFS_RECORD_DURATIONS")
    if not target:
        return
    merged = _durations() if Path(target).resolve() == _DURATIONS_FILE else {"tests": {}, "wall": {}, "fixtures": {}}
    for key in ("tests", "wall"):
        merged.setdefault(key, {}).update(_recorded[key])
    merged.setdefault("fixtures", {}).update({k: round(v, 3) for k, v in _recorded["fixtures"].items()})
    Path(target).write_text(json.dumps({k: dict(sorted(v.items())) for k, v in merged.items()}, indent=1) + "\n")
