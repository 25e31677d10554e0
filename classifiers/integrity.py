"""Model integrity: what training records about each model file, and the
checks made when a model is loaded.

Training records the size and SHA-256 of each weight file in the model's
metadata (``labels.json`` for fastText, ``mdfs_classifier.json`` for BERT,
under ``"files"``).  Loading checks them before the file is parsed: a model
cut short or changed since training is refused in one line naming the file.
A model mdfs did not train has no record: it is accepted only if it loads
completely, and is reported as unverified.  "Completely" is checked per
format: fastText's loader reads a truncated ``model.bin`` without complaint
(the missing tail stays zero and every score is then the same), so the model
is saved again and its size compared with the file's; safetensors refuses a
file whose header and data disagree when it is opened.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("mdfs.classifiers")


class ModelError(ValueError):
    """A model file that is missing, cut short, changed since training or of the wrong kind."""


CHUNK = 1 << 20


def digest(path) -> dict:
    """{"bytes", "sha256"} of one file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return {"bytes": os.path.getsize(path), "sha256": h.hexdigest()}


def record(meta_path: Path, files: list[Path]) -> None:
    """Adds each file's size and checksum to the model's metadata JSON."""
    info = read_meta(meta_path) if meta_path.is_file() else {}
    info["files"] = {f.name: digest(f) for f in files}
    meta_path.write_text(json.dumps(info, indent=2, ensure_ascii=False))


def read_meta(meta_path: Path) -> dict:
    """A model's metadata JSON, refused in one line when it is not a JSON object."""
    try:
        info = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{meta_path}: unreadable model metadata ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict):
        raise ModelError(f"{meta_path}: model metadata is not a JSON object")
    return info


def check_recorded(meta: dict, meta_path: Path, files: list[Path]) -> bool:
    """True when every file matches what training recorded; False when nothing
    was recorded (a model mdfs did not train); raises ModelError on a mismatch."""
    recorded = meta.get("files")
    if recorded is None:
        return False
    if not isinstance(recorded, dict):
        raise ModelError(f"{meta_path}: 'files' is not a mapping of file name to size and checksum")
    for f in files:
        want = recorded.get(f.name)
        if not isinstance(want, dict) or not {"bytes", "sha256"} <= set(want):
            raise ModelError(f"{f}: training recorded no size and checksum for it in {meta_path.name}")
        size = os.path.getsize(f)
        if size != want["bytes"]:
            raise ModelError(f"{f}: {size:,} bytes, training recorded {want['bytes']:,} (cut short or replaced)")
        if digest(f)["sha256"] != want["sha256"]:
            raise ModelError(f"{f}: SHA-256 differs from what training recorded (the file changed)")
    return True


def fasttext_loads_completely(model, path: Path) -> None:
    """Raises ModelError when ``model`` (loaded from ``path``) does not account
    for every byte of the file: saved again, it must have the file's size."""
    with tempfile.TemporaryDirectory(prefix="mdfs-ft-check-") as tmp:
        again = Path(tmp) / path.name
        model.save_model(str(again))
        size, expected = os.path.getsize(path), os.path.getsize(again)
    if size != expected:
        raise ModelError(f"{path}: does not load completely ({size:,} bytes, the model it holds needs "
                         f"{expected:,}; cut short?)")


def say_unverified(what: str, path) -> None:
    log.warning("%s %s: no checksum recorded (mdfs did not train it); it loads completely but is unverified",
                what, path)


def check_fasttext_file(path) -> None:
    """A fastText model file mdfs did not train (the language-ID model): it must
    exist, be a fastText model and load completely; raises ModelError."""
    import fasttext

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"not found: {path}")
    fasttext.FastText.eprint = lambda *a, **k: None
    try:
        model = fasttext.load_model(str(path))
    except ValueError as exc:
        raise ModelError(f"{path}: not a fastText model ({exc})") from None
    fasttext_loads_completely(model, path)
