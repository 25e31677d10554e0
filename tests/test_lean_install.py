"""The core install carries no torch and no transformers (issue: a lean
install).  PyPI's Linux torch wheel is the CUDA build (torch, triton and the
nvidia-* libraries, about 4.6 GB), so the core must work without it and the
BERT stage must say which extra to install.

The tests hide torch and transformers in a child process by setting
``sys.modules[name] = None``: ``import torch`` then raises ImportError and
``importlib.util.find_spec`` returns None, exactly as in an install without
them, whether or not this environment has the [bert] extra."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib

from helpers import REPO

_HIDE = "import sys\nfor _m in ('torch', 'transformers'): sys.modules[_m] = None\n"


def _python(code: str, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _HIDE + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_core_dependencies_leave_the_cuda_stack_to_the_bert_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {d.split("==")[0].split(">")[0].split("<")[0].strip().lower() for d in project["dependencies"]}
    bert = {d.split("==")[0].split(">")[0].strip().lower() for d in project["optional-dependencies"]["bert"]}
    assert not core & {"torch", "transformers", "triton", "safetensors"}
    assert {"torch", "transformers"} <= bert and "torch==2.13.0" in project["optional-dependencies"]["bert"]
    assert "tokenizers" in core  # token counts per source (pipeline/tokens.py) are core


def test_no_module_imports_torch_or_transformers_at_import_time():
    r = _python("""
        import importlib, pkgutil, sys
        import mdfs.pipeline, mdfs.classifiers
        names = []
        for pkg in (mdfs.pipeline, mdfs.classifiers):
            for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(m.name)
                names.append(m.name)
        print(len(names))
        print(sorted(k for k, v in sys.modules.items() if v is not None and k.split(".")[0] in ("torch", "transformers")))
        """)
    assert r.returncode == 0, r.stderr[-2000:]
    count, loaded = r.stdout.split("\n")[:2]
    assert int(count) > 40 and loaded == "[]"


def test_a_run_without_the_bert_extra_works_and_a_bert_config_is_refused(tmp_path):
    src = tmp_path / "news.jsonl"
    text = "今天上午，市政府召开新闻发布会，介绍了城市轨道交通建设的最新进展和下一步工作安排。" * 4
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"第{i}条。" + text}, ensure_ascii=False) + "\n"
                           for i in range(3)))
    run = f"""
        from mdfs.pipeline.commands.cli import main
        sys.exit(main(["run", "--output", {str(tmp_path / 'ok')!r}, "--source", "news={src}"]))
        """
    r = _python(run, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "ok" / "_SUCCESS").is_file()

    (tmp_path / "model").mkdir()
    refused = f"""
        from mdfs.pipeline.commands.cli import main
        sys.exit(main(["run", "--output", {str(tmp_path / 'no')!r}, "--source", "news={src}",
                       "--set", "fine.bert_model={tmp_path / 'model'}", "--set", "fine.languages=[zh]"]))
        """
    r = _python(refused)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "pip install 'mdfs[bert]'" in r.stderr and "torch and transformers not installed" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "no").exists()

    train = f"""
        from mdfs.pipeline.commands.cli import main
        sys.exit(main(["train-classifier", "--train", {str(REPO / 'tests/data/sms_spam_train.jsonl')!r},
                       "--output", {str(tmp_path / 'm')!r}]))
        """
    r = _python(train)
    assert r.returncode == 2 and "pip install 'mdfs[bert]'" in r.stderr and "--kind fasttext" in r.stderr, r.stderr
    assert not (tmp_path / "m").exists()
