"""Labelled data for the classifiers: JSONL rows with ``text`` and ``label``."""
from __future__ import annotations

import json
from dataclasses import dataclass


class DataError(ValueError):
    pass


@dataclass
class LabelledData:
    texts: list[str]
    labels: list[str]
    label_names: list[str]  # the label set, in id order
    skipped_empty: int = 0

    @property
    def label_ids(self) -> list[int]:
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[label] for label in self.labels]


def read_jsonl(path: str, label_names: list[str] | None = None, text_field: str = "text",
               label_field: str = "label") -> LabelledData:
    """Reads and validates labelled JSONL.

    Empty texts are skipped (and counted).  With ``label_names`` given, a row
    whose label is not in it is an error naming the line; otherwise the label
    set is every label seen, sorted."""
    texts, labels, skipped = [], [], 0
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if b"\x00" in head:  # UTF-8 JSONL never holds a NUL byte; UTF-16 and binary files do
        raise DataError(f"{path}: a binary file (NUL bytes), not UTF-8 JSONL")
    with open(path, "rb") as fh:
        for lineno, line in _lines(fh, path):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{path}:{lineno}: not JSON ({exc})") from None
            if not isinstance(row, dict) or text_field not in row or label_field not in row:
                raise DataError(f"{path}:{lineno}: needs the fields {text_field!r} and {label_field!r}")
            text, label = row[text_field], str(row[label_field])
            if not isinstance(text, str):
                raise DataError(f"{path}:{lineno}: {text_field!r} is not a string")
            if label_names is not None and label not in label_names:
                raise DataError(f"{path}:{lineno}: unknown label {label!r} (known: {', '.join(label_names)})")
            if not text.strip():
                skipped += 1
                continue
            texts.append(text)
            labels.append(label)
    if not texts:
        raise DataError(f"{path}: no labelled rows")
    names = list(label_names) if label_names is not None else sorted(set(labels))
    if len(names) < 2:
        raise DataError(f"{path}: need at least two labels, found {names}")
    return LabelledData(texts, labels, names, skipped)


def _lines(fh, path: str):
    """(line number, text) of a file opened in binary; a line that is not UTF-8 is refused naming it."""
    for lineno, raw in enumerate(fh, 1):
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not UTF-8 ({exc.reason} at byte {exc.start} of the line)") from None
