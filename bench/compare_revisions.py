"""mdfs at an earlier revision against the working tree: the same e2e input
(bench/e2e.py's pages, 1,000 records), in-process DirectRunner, alternating,
median CPU seconds.  Checks that a change left the end-to-end cost as it was,
and that the outputs are the same: kept, dropped and failed ids with their
stage and reason, and funnel.json without its timings.

    git worktree add /tmp/basetree REV
    mkdir -p /tmp/basepkg/mdfs && touch /tmp/basepkg/mdfs/__init__.py
    for d in pipeline classifiers schemas; do ln -s /tmp/basetree/$d /tmp/basepkg/mdfs/$d; done
    MDFS_BASE_PYTHON=/path/to/python-without-mdfs python bench/compare_revisions.py

MDFS_BASE_PYTHON: an interpreter with mdfs's dependencies but without mdfs
installed (an editable install of the working tree would answer imports the
base revision does not have, mixing the two); default: this one.
"""
import os
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from e2e import build_input, gather_pages, mdfs_cmd, timed  # noqa: E402

work = Path(tempfile.mkdtemp())
pages = gather_pages(REPO.parent / "shared" / "data")
build_input(pages, 1000, work / "in")
res = {"base": [], "now": []}
for rep in range(3):
    for kind in ("base", "now"):
        cmd = mdfs_cmd(work / "in", work / f"out-{kind}", 1)
        if kind == "base":
            # PYTHONPATH too: the extractor's child process imports mdfs on its own
            cmd = ["env", "PYTHONPATH=/tmp/basepkg", os.environ.get("MDFS_BASE_PYTHON", sys.executable), "-c",
                   "import sys; sys.path.insert(0, '/tmp/basepkg')\n"
                   "try:\n    from mdfs.pipeline.commands.cli import main\n"
                   "except ImportError:  # a revision before the commands/ layout\n    from mdfs.pipeline.cli import main\n"
                   "sys.exit(main(sys.argv[1:]))"] + cmd[3:]
        r = timed(cmd)
        f = json.loads((work / f"out-{kind}" / "funnel.json").read_text())
        r["kept"] = f["total"]["kept"]
        res[kind].append(r)
        print(kind, round(r["seconds"], 1), round(r["cpu_seconds"], 1), r["kept"], flush=True)
for k, v in res.items():
    s = sorted(x["cpu_seconds"] for x in v)
    print(k, "median cpu", s[len(s) // 2], "docs/cpu-s", round(1000 / s[len(s) // 2], 2))


def outputs(out: Path) -> tuple:
    """What a run decided, comparable across revisions (file paths and timings left out)."""
    import pyarrow.dataset as ds

    rows = {}
    for kind, cols in (("kept", ["id"]), ("dropped", ["id", "stage", "reason"]), ("failed", ["id", "stage", "error_kind"])):
        table = ds.dataset(str(out / kind), format="parquet").to_table(columns=cols)
        rows[kind] = sorted(tuple(r.values()) for r in table.to_pylist())
    funnel = json.loads((out / "funnel.json").read_text())
    for key in ("elapsed_s", "skipped_stages"):
        funnel.pop(key, None)
    return rows, funnel


same = outputs(work / "out-base") == outputs(work / "out-now")
print("identical kept/dropped/failed ids, reasons and funnel:", "yes" if same else "NO")
