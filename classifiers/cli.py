"""``mdfs train-classifier`` and ``mdfs eval-classifier``."""
from __future__ import annotations

import argparse
import json
import sys


def train_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs train-classifier",
                                 description="Train the fine-filter classifier from labelled JSONL (text, label).")
    ap.add_argument("--train", required=True, help="JSONL with 'text' and 'label'")
    ap.add_argument("--output", required=True, help="model directory to write")
    ap.add_argument("--kind", choices=["bert", "fasttext"], default="bert")
    ap.add_argument("--labels", default=None, help="comma-separated label set (default: the labels in --train); "
                                                   "rows with other labels are an error")
    ap.add_argument("--base", default=None, help="local pretrained checkpoint directory to fine-tune (bert)")
    ap.add_argument("--allow-pickle", action="store_true", help="allow a pickle (pytorch_model.bin) --base")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--hidden-size", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test", default=None, help="optional JSONL to evaluate on after training")
    ap.add_argument("--overwrite", action="store_true", help="replace a model mdfs trained earlier in --output")
    return ap


def _output_problem(a) -> str | None:
    """Why --output cannot be written: an existing model needs --overwrite, and
    --overwrite never removes a folder that is not an mdfs model or holds an input."""
    import os

    from mdfs.pipeline.io.output_guard import foreign_line, overlap
    from .metadata import METADATA

    out = a.output.rstrip("/") or a.output
    if not os.path.exists(out):
        return None
    if not os.path.isdir(out):
        return f"{a.output} exists and is not a directory"
    entries = sorted(os.listdir(out))
    if not entries:
        return None
    if not any(name in entries for name in METADATA.values()):
        return foreign_line(a.output, entries)
    if not a.overwrite:
        return f"{a.output} already holds a model; pass --overwrite to replace it"
    reads = [(flag, path) for flag, path in (("--train", a.train), ("--test", a.test), ("--base", a.base)) if path]
    return overlap([out], reads)


def _clear(path: str) -> None:
    import os
    import shutil

    if os.path.isdir(path):
        shutil.rmtree(path)


class Bars:
    """rich progress bars with rate and ETA, on stderr; ``bars(description, total)``
    returns ``advance(n)``."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TaskProgressColumn,
                                   TextColumn, TimeElapsedColumn, TimeRemainingColumn)
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task):
                return Text(f"{task.speed:.1f}/s" if task.speed else "", style="progress.data.speed")

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TaskProgressColumn(), Rate(), TimeElapsedColumn(), TextColumn("ETA"),
                                  TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self._progress.start()
        return self

    def __call__(self, description: str, total: int):
        task = self._progress.add_task(description, total=total)
        return lambda n=1: self._progress.advance(task, n)

    def __exit__(self, *exc):
        self._progress.stop()
        return False


def cmd_train(argv: list[str]) -> int:
    a = train_parser().parse_args(argv)
    from .data import DataError, read_jsonl

    if a.kind == "bert":  # before reading the data: without torch nothing below can run
        from .bert import ModelError, require_extra

        try:
            require_extra()
        except ModelError as exc:
            print(f"mdfs train-classifier: {exc} (or --kind fasttext)", file=sys.stderr)
            return 2
    why = _output_problem(a)
    if why:
        print(f"mdfs train-classifier: {why}", file=sys.stderr)
        return 2
    try:
        data = read_jsonl(a.train, a.labels.split(",") if a.labels else None)
    except (DataError, OSError) as exc:
        print(f"mdfs train-classifier: {exc}", file=sys.stderr)
        return 2
    print(f"{len(data.texts)} rows, labels {data.label_names}"
          + (f", {data.skipped_empty} empty texts skipped" if data.skipped_empty else ""))
    _clear(a.output)  # --overwrite checked above: no file of the earlier model survives into the new one
    try:
        if a.kind == "fasttext":
            from .fasttext_model import train

            train(data.texts, data.labels, a.output, data.label_names, epoch=a.epochs or 25, lr=a.lr or 0.5,
                  seed=a.seed)
        else:
            from .bert import ModelError, train

            try:
                with Bars() as bars:
                    train(data.texts, data.label_ids, data.label_names, a.output, base=a.base,
                          allow_pickle=a.allow_pickle, epochs=a.epochs or 3, lr=a.lr or (5e-5 if a.base else 5e-4),
                          batch_size=a.batch_size, max_length=a.max_length, hidden_size=a.hidden_size,
                          layers=a.layers, heads=a.heads, vocab_size=a.vocab_size, seed=a.seed, threads=a.threads,
                          log=lambda m: print(m, file=sys.stderr, flush=True), progress=bars)
            except ModelError as exc:
                print(f"mdfs train-classifier: {exc}", file=sys.stderr)
                return 2
    except RuntimeError as exc:  # e.g. fastText "Encountered NaN"
        print(f"mdfs train-classifier: training failed: {exc}", file=sys.stderr)
        return 1
    from .langid import training_languages
    from .metadata import record_languages

    langs = training_languages(data.texts)
    record_languages(a.output, a.kind, langs)
    print(f"model written to {a.output} (training languages: {', '.join(langs) or 'none found'})")
    if a.test:
        return cmd_eval(["--model", a.output, "--test", a.test, "--output", f"{a.output.rstrip('/')}/eval.json"])
    return 0


def eval_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mdfs eval-classifier",
                                 description="Evaluate a BERT or fastText model on labelled JSONL.")
    ap.add_argument("--model", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--output", default=None, help="write the report as JSON here")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--allow-pickle", action="store_true")
    return ap


def cmd_eval(argv: list[str]) -> int:
    a = eval_parser().parse_args(argv)
    from .bert import ModelError
    from .data import DataError
    from .evaluate import evaluate, format_report

    try:
        with Bars() as bars:
            res = evaluate(a.model, a.test, a.device, a.allow_pickle, progress=bars)
    except (ModelError, DataError, OSError) as exc:
        print(f"mdfs eval-classifier: {exc}", file=sys.stderr)
        return 2
    print(format_report(res))
    if a.output:
        with open(a.output, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2, ensure_ascii=False)
        print(f"report written to {a.output}")
    return 0
