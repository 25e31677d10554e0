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




# Tests that run the whole pipeline, a subprocess or model training are "slow";
# `python -m pytest -m "not slow"` is the quick unit run for contributors (the
# README's test command and CI run everything).
_SLOW_FIXTURES = {"sample_run", "portable_services", "models", "fasttext_models", "fasttext_spam_model"}
_SLOW_CALLS = ("run_job(", "mdfs(", "_mdfs(", "subprocess.", "Popen(", "bench/")


# Tests that need torch and transformers (the [bert] extra) are marked "bert":
# .ci/run runs `-m "not bert"` in the lean core install first, which proves the
# core complete, then installs the extra and runs `-m bert`.
_BERT_FIXTURES = {"models"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _BERT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.bert)
        fn = getattr(item, "function", None)
        try:
            source = inspect.getsource(fn) if fn else ""
        except (OSError, TypeError):
            source = ""
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or any(c in source for c in _SLOW_CALLS):
            item.add_marker(pytest.mark.slow)
