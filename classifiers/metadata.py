"""What mdfs records beside a classifier it trained: label set, kind, and the
languages of its training rows (``fine.languages`` defaults to them)."""
from __future__ import annotations

import json
from pathlib import Path

METADATA = {"bert": "mdfs_classifier.json", "fasttext": "labels.json"}


def _meta_path(model_dir: str, kind: str) -> Path:
    path = Path(model_dir)
    return (path if path.is_dir() else path.parent) / METADATA[kind]


def record_languages(model_dir: str, kind: str, languages: list[str]) -> None:
    meta = _meta_path(model_dir, kind)
    info = json.loads(meta.read_text()) if meta.is_file() else {"kind": kind}
    info["languages"] = list(languages)
    meta.write_text(json.dumps(info, indent=2, ensure_ascii=False))
    card = meta.parent / "README.md"
    if card.is_file() and languages:
        card.write_text(card.read_text().rstrip("\n") + f"\n\nTraining languages (>= 5 % of rows by language ID): "
                        f"{', '.join(languages)}. The fine stage scores only documents in these languages.\n")


def recorded_languages(model_dir: str, kind: str) -> list[str] | None:
    """The training languages recorded with a model, or None when it has no record."""
    meta = _meta_path(model_dir, kind)
    if not meta.is_file():
        return None
    from .integrity import read_meta

    langs = read_meta(meta).get("languages")
    return list(langs) if isinstance(langs, list) else None
