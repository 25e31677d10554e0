"""A corpus of any size from real text, with planted near-duplicate families,
and what the default command costs on it.

  python bench/bench_scale.py generate --docs 100000 --out /tmp/scale-100k
  python bench/bench_scale.py run --docs 100000 [--data DIR] [--keep-output]

``generate`` writes N distinct documents as JSONL.gz shards of
``--per-shard`` documents (``id``, ``text``, ``url``, ``date``), Chinese and
English (``--zh-share``, default 0.6), each made of real sentences from
``../shared/data/text/`` (ChineseWebText's CC 2021-43 sample and dolma's
cc_en_head test files: read here only, never committed) in a random order, so
that no two documents share more than a sentence or two.  About 2.3 KB per
Chinese document and 3 KB per English one.

One document in ``--family-every`` (default 50) founds a *family*: one to
three variants of it (a few characters changed and a short line added:
Jaccard with the founder about 0.9, above the default threshold 0.8)
are written into the shard half a corpus away, so families span shards and
any unit of files.  ``truth.json`` lists every family.  ``run`` checks that
exactly one member of each family is kept and that no distinct document is
dropped as a near duplicate.

``run`` executes ``mdfs run`` (DirectRunner in-process, near-dedup on, no
classifier) on the shards, with wall time, CPU of the whole process tree and
peak RSS of the whole process tree (bench/e2e.py's ``timed``), and prints one
JSON line (with the units and what they staged, for a run in units of files).
``--set run.unit_mb=0`` runs the same input as one job; ``--kill-after-s S``
SIGKILLs the run after S seconds and runs it again with ``--resume`` (CPU and
peak of both).  The 100,000-document figures of docs/PERFORMANCE.md's "Bigger
than memory" section come from here.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT = REPO.parent / "shared" / "data" / "text"
sys.path.insert(0, str(REPO / "bench"))

_ZH_SPLIT = re.compile(r"(?<=[。！？；])")
_EN_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def sentence_pools() -> tuple[list[str], list[str]]:
    """Real sentences: Chinese of 12-120 characters, English of 40-300."""
    zh, en = set(), set()
    for line in gzip.open(TEXT / "ccnet_zh_cc2022_chinesewebtext.jsonl.gz", "rt", encoding="utf-8"):
        for s in _ZH_SPLIT.split(json.loads(line)["raw_content"]):
            s = s.strip()
            if 12 <= len(s) <= 120:
                zh.add(s)
    for path in sorted(TEXT.glob("ccnet_en_*.jsonl.gz")):
        for line in gzip.open(path, "rt", encoding="utf-8"):
            for s in _EN_SPLIT.split(json.loads(line)["text"]):
                s = " ".join(s.split())
                if 40 <= len(s) <= 300:
                    en.add(s)
    return sorted(zh), sorted(en)


def compose(rng: random.Random, pool: list[str], zh: bool, target_chars: int) -> str:
    parts, size = [], 0
    while size < target_chars:
        s = rng.choice(pool)
        parts.append(s)
        size += len(s)
    # paragraphs of 3-5 sentences: the coarse rules see ordinary text
    paras, i = [], 0
    while i < len(parts):
        n = rng.randint(3, 5)
        paras.append(("" if zh else " ").join(parts[i:i + n]))
        i += n
    return "\n".join(paras)


def variant(rng: random.Random, text: str, zh: bool) -> str:
    """A near duplicate, as mirrors and reposts make them: a few characters
    changed and a short line added.  With 5-gram shingles each change touches
    at most 5 shingles, so the Jaccard with the founder stays near 0.9,
    comfortably above the default threshold 0.8 (a dropped sentence of 15 % of
    the text brought some families below it, by estimation noise).  At most
    three changes: two variants of one founder differ from each other by up
    to twice as many, and the chain-safe keep policy keeps both when their
    own estimated Jaccard falls under the threshold (seen with five)."""
    out = text
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(out))
        out = out[:i] + ("的" if zh else "a") + out[i + 1:]
    return out + ("\n（转载自本站）" if zh else "\nReposted with permission.")


def generate(n_docs: int, out: Path, per_shard: int = 10_000, zh_share: float = 0.6,
             family_every: int = 50, seed: int = 0) -> dict:
    zh_pool, en_pool = sentence_pools()
    rng = random.Random(seed)
    n_founders = n_docs // (family_every + 2)  # founders and their variants fit in n_docs
    docs: list[dict | None] = [None] * n_docs
    families, variants_at = [], {}
    slots = list(range(n_docs))
    for i in slots:
        if docs[i] is not None:
            continue
        zh = rng.random() < zh_share
        text = compose(rng, zh_pool if zh else en_pool, zh, 800 if zh else 3000)
        docs[i] = {"id": f"d{i:08d}", "text": text, "url": f"https://example.{'cn' if zh else 'com'}/{i}",
                   "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"}
        if len(families) < n_founders and i % family_every == 0:
            members = [docs[i]["id"]]
            for v in range(rng.randint(1, 3)):
                j = (i + n_docs // 2 + v * 7 + 1) % n_docs
                while docs[j] is not None:
                    j = (j + 1) % n_docs
                docs[j] = {"id": f"d{j:08d}", "text": variant(rng, text, zh), "url": f"https://mirror{v}.example/{i}",
                           "date": docs[i]["date"]}
                members.append(docs[j]["id"])
                variants_at[j] = i
            families.append(members)
    out.mkdir(parents=True, exist_ok=True)
    for s in range(0, n_docs, per_shard):
        with gzip.open(out / f"docs-{s // per_shard:05d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for d in docs[s:s + per_shard]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    truth = {"docs": n_docs, "families": families, "seed": seed, "zh_share": zh_share}
    (out / "truth.json").write_text(json.dumps(truth))
    return truth


def check_families(run_dir: Path, truth: dict) -> dict:
    """Exactly one member kept of each planted family whose members reached
    dedup (a member the rules dropped is not a dedup decision); no other
    near-duplicate drop.  Families that break this are listed with why."""
    import pyarrow.dataset as ds

    kept = set(ds.dataset(str(run_dir / "kept"), format="parquet").to_table(columns=["id"]).column("id").to_pylist())
    dropped = ds.dataset(str(run_dir / "dropped"), format="parquet").to_table(columns=["id", "reason"]).to_pylist()
    reason = {r["id"]: r["reason"] for r in dropped}
    near = {i for i, why in reason.items() if why == "near_duplicate"}
    members = {m for fam in truth["families"] for m in fam}
    bad = []
    for fam in truth["families"]:
        judged = [m for m in fam if m in kept or reason.get(m) in ("near_duplicate", "exact_duplicate")]
        if judged and sum(m in kept for m in judged) != 1:
            bad.append({m: ("kept" if m in kept else reason.get(m, "missing")) for m in fam})
    return {"families": len(truth["families"]), "families_not_one_kept": len(bad), "bad_families": bad[:10],
            "families_with_rule_drops": sum(1 for fam in truth["families"]
                                            if any(reason.get(m) not in (None, "near_duplicate", "exact_duplicate")
                                                   for m in fam)),
            "near_duplicate_drops_outside_families": len(near - members), "kept": len(kept)}


def killed(cmd: list, after_s: float) -> dict:
    """Run ``cmd`` and SIGKILL its process group after ``after_s`` seconds: CPU of the
    whole tree (sampled; the killed children are never reaped by the command) and peak RSS."""
    import os
    import signal
    import subprocess
    import time

    from e2e import PeakRSS

    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    mon = PeakRSS(p.pid)
    t0 = time.monotonic()
    while p.poll() is None and time.monotonic() - t0 < after_s:
        time.sleep(0.2)
    finished = p.poll() is not None
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    mon.stop()
    return {"seconds": time.monotonic() - t0, "cpu_seconds": mon.cpu_seconds, "finished_before_kill": finished,
            "peak_rss_total_mb": mon.peak_total / 2**20}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--docs", type=int, required=True)
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--per-shard", type=int, default=10_000)
    g.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("--docs", type=int, required=True)
    r.add_argument("--data", type=Path, help="generated shards (default: generate into a temporary folder)")
    r.add_argument("--keep-output", action="store_true")
    r.add_argument("--kill-after-s", type=float, default=None,
                   help="SIGKILL the run after this many seconds, then run it again with --resume: "
                        "CPU and peak RSS of both, and the resumed output's families and funnel")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to mdfs run, e.g. run.unit_mb=0 for one job")
    a = ap.parse_args(argv)
    if a.cmd == "generate":
        truth = generate(a.docs, a.out, a.per_shard, seed=a.seed)
        print(f"{truth['docs']} documents, {len(truth['families'])} families in {a.out}")
        return 0
    from e2e import timed

    with tempfile.TemporaryDirectory() as tmp:
        data = a.data or Path(tmp) / "data"
        if not (data / "truth.json").exists():
            generate(a.docs, data)
        truth = json.loads((data / "truth.json").read_text())
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "mdfs.pipeline.commands.cli", "run", "--output", str(out),
               "--source", f"scale={data}/*.jsonl.gz", "--set", "read.progress_every_s=600",
               *[arg for kv in a.set for arg in ("--set", kv)]]
        if a.kill_after_s is not None:
            res = {"docs": truth["docs"], "set": a.set, "killed": killed(cmd, a.kill_after_s)}
            res["resumed"] = timed([*cmd, "--resume"])
            res.update(check_families(out, truth))
            res["cpu_seconds"] = res["killed"]["cpu_seconds"] + res["resumed"]["cpu_seconds"]
            res["funnel_total"] = json.loads((out / "funnel.json").read_text())["total"]
        else:
            res = {"docs": truth["docs"], "set": a.set, **timed(cmd), **check_families(out, truth)}
        res["cpu_ms_per_doc"] = 1000 * res["cpu_seconds"] / truth["docs"]
        staging = out / "_units" / "staging.json"  # a run in units: what it staged on disk
        if staging.exists():
            res["units"] = len(json.loads((out / "_units" / "plan.json").read_text())["units"])
            res["staging"] = json.loads(staging.read_text())
        print(json.dumps(res))
        if a.keep_output:
            import shutil

            shutil.copytree(out, f"scale-run-{truth['docs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
