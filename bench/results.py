"""bench/results.json holds one section per benchmark; each benchmark merges
its own section and leaves the others as they are."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def load(path: Path = RESULTS) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def merge_section(name: str, data: dict, path: Path = RESULTS) -> dict:
    """Replace section ``name`` of the results file (atomically) and return the whole file."""
    res = load(path)
    res[name] = data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-")
    with os.fdopen(fd, "w") as fh:
        json.dump(res, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, path)
    return res


PERFORMANCE = Path(__file__).resolve().parents[1] / "docs" / "PERFORMANCE.md"
# sections of docs/PERFORMANCE.md written by benchmarks other than bench/e2e.py
OWN_SECTIONS = ("## Scale-out rework, before and after", "## Local engines", "## Flink and Spark",
                "## Language-first selection", "## Memory and bytes between stages", "## Fast extraction engine")


def replace_section(title: str, lines: list[str], path: Path = PERFORMANCE) -> None:
    """Replace the ``title`` section (up to the next ``## ``) of a Markdown file, or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    body = "\n".join([title, *lines]).rstrip() + "\n"
    if title in text:
        head, _, tail = text.partition(title)
        nxt = tail.find("\n## ")
        text = head + body + (tail[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + body
    path.write_text(text, encoding="utf-8")


def foreign_sections(path: Path = PERFORMANCE) -> str:
    """The sections other benchmarks own, to carry over when bench/e2e.py rewrites the file."""
    if not path.exists():
        return ""
    text, out = path.read_text(encoding="utf-8"), []
    for title in OWN_SECTIONS:
        if title in text:
            tail = text.partition(title)[2]
            nxt = tail.find("\n## ")
            out.append(title + (tail[:nxt] if nxt >= 0 else tail).rstrip() + "\n")
    return "\n".join(out)


def replace_figures(doc: Path, script: str, lines: list[str]) -> None:
    """Rewrite the block between ``<!-- figures: SCRIPT -->`` and ``<!-- /figures -->`` of ``doc``."""
    text = doc.read_text(encoding="utf-8")
    start, end = f"<!-- figures: {script} -->", "<!-- /figures -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    doc.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + tail, encoding="utf-8")
