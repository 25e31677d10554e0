"""Size limits of issue #36: no function in pipeline/ or classifiers/ longer than
80 lines, no module longer than 500.  The modules and functions still over are
listed (each is being reworked); the list may only shrink, and anything new over
a limit fails here.  The measure is checked on planted sources first."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500

# Over a limit when the limits were set; remove an entry once it is under (empty since
# the second step of issue #36: nothing in pipeline/ or classifiers/ is over a limit).
KNOWN_OVER: set = set()


def oversized(path: Path, rel: str) -> list[str]:
    """``rel`` when the module is over MAX_MODULE_LINES, ``rel:name`` for each function
    over MAX_FUNCTION_LINES (decorators included, nested functions inside their outer one)."""
    text = path.read_text(encoding="utf-8")
    found = [rel] if len(text.splitlines()) > MAX_MODULE_LINES else []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                found.append(f"{rel}:{node.name}")
    return found


def test_the_measure_on_planted_sources(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(78))
    at_limit = f"@staticmethod\ndef ok():\n{body}\n"  # 80 lines with its decorator
    over = f"def long():\n{body}\n    return 1\n    return 2\n"  # 81 lines
    path = tmp_path / "m.py"
    path.write_text(at_limit + over, encoding="utf-8")
    assert oversized(path, "m.py") == ["m.py:long"]
    path.write_text("x = 1\n" * 501, encoding="utf-8")
    assert oversized(path, "m.py") == ["m.py"]
    path.write_text("x = 1\n" * 500, encoding="utf-8")
    assert oversized(path, "m.py") == []


def test_no_new_function_or_module_over_the_limits():
    found = set()
    for folder in ("pipeline", "classifiers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found.update(oversized(path, path.relative_to(ROOT).as_posix()))
    assert sorted(found - KNOWN_OVER) == []
