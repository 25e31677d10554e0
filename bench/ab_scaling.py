"""1-worker vs 2-worker scaling of two mdfs revisions on bench/e2e.py's input.

    git worktree add /tmp/tree_before REV
    for x in before after; do mkdir -p /tmp/pkg_$x/mdfs && touch /tmp/pkg_$x/mdfs/__init__.py; done
    for d in pipeline classifiers schemas; do
        ln -s /tmp/tree_before/$d /tmp/pkg_before/mdfs/$d; ln -s "$PWD/$d" /tmp/pkg_after/mdfs/$d; done
    python bench/ab_scaling.py [ROUNDS]

Each round runs, per revision, 1 and 2 workers (DirectRunner, multi_processing
for 2) on 2,000 records and on an 8-record input (the fixed start-up cost);
prints the medians, the 2-vs-1 ratio and the ratio with start-up taken out.
"""
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from e2e import build_input, gather_pages, mdfs_cmd, timed  # noqa: E402

work = Path(tempfile.mkdtemp(prefix="ab-"))
pages = gather_pages(REPO.parent / "shared" / "data")
build_input(pages, 2000, work / "in")
build_input(pages, 8, work / "in-startup")
revs = {"before": "/tmp/pkg_before", "after": "/tmp/pkg_after"}
res: dict = {}
for rep in range(int(sys.argv[1]) if len(sys.argv) > 1 else 2):
    for rev, path in revs.items():
        for w in (1, 2):
            env = dict(os.environ, PYTHONPATH=path)
            for data in ("in", "in-startup"):
                r = timed(mdfs_cmd(work / data, work / f"out-{rev}-{w}-{data}", w), env=env)
                res.setdefault(f"{rev} {w} {data}", []).append(r["seconds"])
            print(rev, w, {k: [round(x, 1) for x in v] for k, v in res.items() if k.startswith(f"{rev} {w}")}, flush=True)
med = {k: statistics.median(v) for k, v in res.items()}
for rev in revs:
    s1, s2 = med[f"{rev} 1 in"], med[f"{rev} 2 in"]
    f1, f2 = med[f"{rev} 1 in-startup"], med[f"{rev} 2 in-startup"]
    print(rev, "scaling", round(s1 / s2, 3), "excl", round((s1 - f1) / (s2 - f2), 3), "startup", f1, f2, "main", s1, s2)
print(json.dumps(res))
