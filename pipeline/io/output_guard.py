"""What a writing command may remove: ``--overwrite`` replaces an earlier
mdfs output, never a file the new run reads, and never a folder mdfs did not
write.  Shared by ``mdfs run``/``refilter`` (pipeline/commands/run.py) and ``mdfs
train-classifier``."""
from __future__ import annotations

import glob as globlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..schema import MdfsConfig

FOREIGN_SHOWN = 3  # entries named in the refusal; the rest are counted


def _local(path: str) -> bool:
    return "://" not in path


def _real(path: str) -> str:
    return os.path.realpath(path) if _local(path) else path.rstrip("/")


def _expand(pattern: str) -> list[str]:
    """Local globs as the readers match them; a remote pattern stands for itself."""
    if not _local(pattern):
        return [pattern]
    return globlib.glob(pattern, recursive=True) or [pattern]


def read_paths(cfg: MdfsConfig, files: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """(what, path) of everything a run reads besides its own output: the matched
    source files, models, tokenizer, evaluation sets and --dedup-against runs."""
    out = [(f"source {n}", p) for n, found in (files or {}).items() for p in found]
    for key, path in (("fasttext_model", cfg.fine.fasttext_model), ("bert_model", cfg.fine.bert_model)):
        if path:
            out.append((f"fine.{key}", path))
    if cfg.stats.tokenizer:
        out.append(("stats.tokenizer", cfg.stats.tokenizer))
    if cfg.decontamination.sets:
        from ..config import decontamination_sets

        for name, spec in decontamination_sets(cfg.decontamination).items():
            out += [(f"decontamination.sets.{name}", p) for pat in spec.paths for p in _expand(pat)]
    out += [("--dedup-against", p) for p in cfg.dedup_against]
    return out


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def overlap(removed: list[str], reads: list[tuple[str, str]]) -> str | None:
    """One line when a path about to be removed holds (or is inside) something the run reads."""
    for part in removed:
        real_part = _real(part)
        for what, path in reads:
            real = _real(path)
            if _inside(real, real_part) or _inside(real_part, real):
                return f"--overwrite would remove {part}, which holds {path} ({what}); nothing was removed"
    return None


def foreign_entries(root: str, known) -> list[str]:
    """Entries of a local folder that mdfs does not write there (sorted); [] for remote or absent folders."""
    if not _local(root) or not os.path.isdir(root):
        return []
    return sorted(e for e in os.listdir(root) if e not in known)


def foreign_line(root: str, entries: list[str]) -> str:
    named = ", ".join(entries[:FOREIGN_SHOWN]) + (f" and {len(entries) - FOREIGN_SHOWN} more"
                                                 if len(entries) > FOREIGN_SHOWN else "")
    return f"{root} holds files mdfs did not write ({named}); use a new or empty folder"
