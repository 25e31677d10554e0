"""MinHash benchmark: signature throughput against peers, accuracy on planted
near-duplicates, bytes shuffled per document, peak RSS of the Beam stage.

  python bench/bench_minhash.py [--shared ../shared/data] [--docs 200] [--rss-sizes 10000,100000]

Throughput (one core, same texts, shingling included for everyone):
  * datasketch MinHash.update() per shingle (SHA-1 per call),
  * datasketch MinHash.update_batch(),
  * rensa RMinHash (Rust; the near-hardware reference; pip install rensa),
  * mdfs MinHasher (numpy shingle hashes + datasketch's affine32 arithmetic).
English documents of ~800 word 5-grams and Chinese documents of ~5,000
characters (character 5-grams), 128 and 256 permutations.
Writes docs/NEAR_DEDUP.md and bench/minhash_results.json.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import pickle
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def corpus(shared: Path):
    from helpers import real_zh_texts

    zh = list(real_zh_texts())
    en = []
    gt = shared / "html/magic-html/article_groundtruth.json.gz"
    if gt.exists():
        for v in json.loads(gzip.decompress(gt.read_bytes())).values():
            t = v.get("content") or ""
            (zh if sum("\u4e00" <= c <= "\u9fff" for c in t[:200]) > 50 else en).append(t)
    from mdfs.pipeline.config import SAMPLES_DIR

    with gzip.open(SAMPLES_DIR / "news/news_sample.jsonl.gz", "rt", encoding="utf-8") as fh:
        en += [r["text"] for r in map(json.loads, fh) if "id" in r]
    return zh, en


def make_docs(zh, en, n):
    rng = random.Random(1)
    zh_pool, en_words = "\n".join(zh), " ".join(en).split()
    zh_docs, en_docs = [], []
    for _ in range(n):
        s = rng.randrange(max(1, len(zh_pool) - 5000))
        zh_docs.append(zh_pool[s : s + 5000])
        s = rng.randrange(max(1, len(en_words) - 804))
        en_docs.append(" ".join(en_words[s : s + 804]))
    return zh_docs, en_docs


def shingles(text, lang):
    from mdfs.pipeline.stages.minhash import _NON_WORD, _WORD, normalise_for_shingles

    t = normalise_for_shingles(text)
    if lang == "zh":
        c = _NON_WORD.sub("", t)
        return [c[i : i + 5] for i in range(len(c) - 4)]
    w = _WORD.findall(t)
    return [" ".join(w[i : i + 5]) for i in range(len(w) - 4)]


def rate(fn, docs, repeat=3):
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for d in docs:
            fn(d)
        runs.append(time.perf_counter() - t0)
    return len(docs) / statistics.median(runs)


def throughput(zh_docs, en_docs, have_rensa):
    from datasketch import MinHash

    from mdfs.pipeline.stages.minhash import MinHasher
    from mdfs.pipeline.schema import Shingle

    out = {}
    for perms in (128, 256):
        hasher = MinHasher(perms, 1, {"zh": Shingle(unit="char", n=5), "default": Shingle(unit="word", n=5)})
        for lang, docs in (("zh", zh_docs), ("en", en_docs)):
            mb = sum(len(d.encode()) for d in docs) / 1e6
            few = docs[: max(10, len(docs) // 10)]  # the slow peers run on a subset

            def ds_update(d):
                m = MinHash(num_perm=perms, seed=1)
                for s in shingles(d, lang):
                    m.update(s.encode())

            def ds_batch(d):
                MinHash(num_perm=perms, seed=1).update_batch([s.encode() for s in shingles(d, lang)])

            def rensa_fn(d):
                import rensa

                m = rensa.RMinHash(num_perm=perms, seed=1)
                m.update(shingles(d, lang))
                m.digest()

            row = {
                "datasketch_update": rate(ds_update, few, 1),
                "datasketch_update_batch": rate(ds_batch, few),
                "mdfs": rate(lambda d: hasher.signature(d, lang), docs),
            }
            if have_rensa:
                row["rensa"] = rate(rensa_fn, docs)
            row = {k: round(v, 1) for k, v in row.items()}
            row["mdfs_mb_per_s"] = round(row["mdfs"] * mb / len(docs), 2)
            out[f"{lang}_{perms}"] = row
    return out


def accuracy(zh, en, pairs=600):
    sys.path.insert(0, str(REPO / "tests"))
    from test_near_dedup import _edit, _true_jaccard

    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.minhash import MinHasher, band_keys, estimated_jaccard, lsh_params

    cfg = load_config().near_dedup
    hasher = MinHasher(cfg.num_perm, cfg.seed, cfg.shingles)
    b, r = lsh_params(cfg.threshold, cfg.num_perm, cfg.false_positive_weight, cfg.false_negative_weight)
    rng = random.Random(11)
    rows = []
    for lang, texts, alpha in (
        ("zh", zh, "".join(sorted(set("".join(zh))))[:3000]),
        ("en", en, "abcdefghijklmnopqrstuvwxyz     "),
    ):
        texts = [t for t in texts if len(t) > 1500]
        for i in range(pairs):
            base = texts[i % len(texts)][:3000]
            copy = _edit(base, rng.choice([0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.08, 0.12]), rng, alpha)
            ha, hb = hasher.shingle_hashes(base, lang), hasher.shingle_hashes(copy, lang)
            sa, sb = hasher.signature_of_hashes(ha), hasher.signature_of_hashes(hb)
            cand = bool(set(band_keys(sa, b, r)) & set(band_keys(sb, b, r)))
            rows.append((lang, _true_jaccard(ha, hb), cand, cand and estimated_jaccard(sa, sb) >= cfg.threshold))
    hi = [x for x in rows if x[1] >= cfg.threshold + 0.05]
    lo = [x for x in rows if x[1] <= cfg.threshold - 0.1]
    return {
        "pairs": len(rows),
        "bands": b,
        "rows": r,
        "num_perm": cfg.num_perm,
        "recall_j_ge_0.85": round(sum(x[3] for x in hi) / len(hi), 4),
        "pairs_j_ge_0.85": len(hi),
        "candidate_recall_j_ge_0.85": round(sum(x[2] for x in hi) / len(hi), 4),
        "false_positive_j_le_0.7": round(sum(x[3] for x in lo) / len(lo), 4),
        "pairs_j_le_0.7": len(lo),
        "candidate_rate_j_le_0.7": round(sum(x[2] for x in lo) / len(lo), 4),
    }


def shuffle_bytes(zh_docs):
    """Pickled bytes per document of what each dedup shuffle carries."""
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.dedup_exact import keep_rank, text_hash
    from mdfs.pipeline.stages.minhash import MinHasher, band_keys, lsh_params
    from mdfs.pipeline.records import Document, record_key

    cfg = load_config().near_dedup
    hasher = MinHasher(cfg.num_perm, cfg.seed, cfg.shingles)
    b, r = lsh_params(cfg.threshold, cfg.num_perm, cfg.false_positive_weight, cfg.false_negative_weight)
    d = Document(
        key=record_key("web", "file.warc.gz", 12345),
        id="web-" + record_key("web", "f", 1),
        source="web",
        text=zh_docs[0],
        date="2024-01-01T00:00:00Z",
        language="zh",
    )
    sig = hasher.signature(d.text, "zh")
    rank = keep_rank(d, cfg.keep, {"web": 1})
    size = lambda x: len(pickle.dumps(x, protocol=4))  # noqa: E731
    return {
        "exact_dedup_hash_group": size((text_hash(d.text), (rank, d.key, d.id))),
        "near_dedup_signature_table": size((d.key, (rank, d.id, sig.tobytes()))),
        "near_dedup_band_keys": sum(size((k, d.key)) for k in band_keys(sig, b, r)),
        "final_join_document_with_text": size((d.key, d)),
        "text_utf8_bytes": len(d.text.encode()),
    }


def peak_rss(n: int) -> dict:
    code = f"""
import random, resource, time, sys
sys.path.insert(0, {str(REPO / "tests")!r})
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from helpers import real_zh_texts
from mdfs.pipeline.config import load_config
from mdfs.pipeline.stages.dedup_near import NearDedup
from mdfs.pipeline.records import Document
pool = "\\n".join(real_zh_texts())
rng = random.Random(5)
def docs():
    for i in range({n}):
        s = rng.randrange(len(pool) - 1200)
        t = pool[s:s + 1000]
        if i % 10 == 1:
            t = t[:500] + "。" + t[501:]  # a near-duplicate of a nearby slice
        yield Document(key=f"k{{i:07d}}", id=f"d{{i}}", source="web", text=t, language="zh")
cfg = load_config().near_dedup
t0 = time.time()
with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
    res = p | beam.Create(list(docs())) | NearDedup(cfg, {{"web": 1}})
    res.kept | beam.combiners.Count.Globally() | beam.Map(lambda c: print("kept", c))
print("seconds", round(time.time() - t0, 1))
print("maxrss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3000)
    vals = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    return {
        "documents": n,
        "peak_rss_mb": round(float(vals.get("maxrss_mb", "nan")), 1),
        "seconds": float(vals.get("seconds", "nan")),
        "kept": int(vals.get("kept", "-1")),
        "error": r.stderr[-500:] if r.returncode else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--rss-sizes", default="10000,100000")
    args = ap.parse_args()
    try:
        import rensa  # noqa: F401

        have_rensa = True
    except ImportError:
        have_rensa = False
    zh, en = corpus(args.shared)
    zh_docs, en_docs = make_docs(zh, en, args.docs)
    res = {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "throughput_docs_per_s": throughput(zh_docs, en_docs, have_rensa),
        "accuracy": accuracy(zh, en),
        "shuffle_bytes_per_doc": shuffle_bytes(zh_docs),
        "peak_rss": [peak_rss(int(n)) for n in args.rss_sizes.split(",") if n],
    }
    (REPO / "bench" / "minhash_results.json").write_text(json.dumps(res, indent=2))
    write_doc(res)
    print(json.dumps(res, indent=2))


def write_doc(res):
    t, a, s = res["throughput_docs_per_s"], res["accuracy"], res["shuffle_bytes_per_doc"]
    L = [
        "# Near-duplicate removal: measured",
        "",
        f"Generated by `python bench/bench_minhash.py` on {res['date']} (Python {res['python']}, {res['machine']}, "
        "one core per measurement). Design: `pipeline/stages/dedup_near.py`, `pipeline/stages/minhash.py`, "
        "`pipeline/stages/connected_components.py`.",
        "",
        "## Signature throughput (documents per second, one core)",
        "",
        "Same texts for everyone, shingling included. English: ~800 word 5-grams per document; Chinese: "
        "5,000 characters, character 5-grams. Targets at 128 permutations: English >= 1,000, Chinese >= 250.",
        "",
        "| documents, permutations | datasketch `update()` | datasketch `update_batch` | rensa (Rust) | **mdfs** | mdfs MB/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, row in t.items():
        L.append(
            f"| {key.replace('_', ', ')} | {row['datasketch_update']} | {row['datasketch_update_batch']} | "
            f"{row.get('rensa', 'n/a')} | **{row['mdfs']}** | {row['mdfs_mb_per_s']} |"
        )
    L += [
        "",
        "mdfs signatures are datasketch signatures (scheme `affine32`: the same permutations and arithmetic; "
        "`tests/test_near_dedup.py` checks them slot by slot against `MinHash.update_batch`). The speed comes from "
        "hashing shingles in numpy (rolling polynomial hashes over code points or CRC32 word hashes) instead of "
        "one SHA-1 call per shingle, and from reducing the permutations x shingles block along its contiguous axis.",
        "",
        "## Accuracy on planted near-duplicates",
        "",
        f"{a['pairs']} pairs: 3,000-character slices of real Chinese and English texts and copies with random "
        "character edits (0.2 %-12 %); true Jaccard computed exactly on the shingle sets. A pair counts as found "
        f"when it shares an LSH band ({a['bands']} bands x {a['rows']} rows, {a['num_perm']} permutations, from "
        "datasketch's optimiser with false negatives weighted 0.95) and its estimated Jaccard passes verification (>= 0.8).",
        "",
        "| measure | value | target |",
        "|---|---:|---|",
        f"| recall, pairs with J >= 0.85 ({a['pairs_j_ge_0.85']}) | {a['recall_j_ge_0.85']:.1%} | >= 95 % |",
        f"| candidate (band) recall, J >= 0.85 | {a['candidate_recall_j_ge_0.85']:.1%} | |",
        f"| false positives, pairs with J <= 0.7 ({a['pairs_j_le_0.7']}) | {a['false_positive_j_le_0.7']:.2%} | <= 1 % |",
        f"| candidate rate before verification, J <= 0.7 | {a['candidate_rate_j_le_0.7']:.1%} | |",
        "",
        "Why 256 permutations: at 128, the estimate of a J = 0.85 pair falls below 0.8 about 6 % of the time, "
        "so verification alone would cost ~6 % recall; at 256 the standard error is 0.022 and the miss rate ~1 %. "
        "Verification then removes the many band collisions of pairs near 0.7 that the recall-heavy banding admits.",
        "",
        "Chains: connected components can join A~B and B~C although A and C differ. mdfs drops a member only if "
        "its own estimated Jaccard with the copy kept reaches the threshold; members joined only through a chain "
        "are kept (tested in `test_near_dedup_stage_keep_policy_and_chains`). Pages sharing only a site template "
        "do not collapse: extraction removes the template first (`test_shared_site_template_does_not_collapse`).",
        "",
        "## Bytes shuffled per document",
        "",
        "Pickled size of what each shuffle carries for one 5,000-character Chinese document "
        f"({s['text_utf8_bytes']:,} bytes of UTF-8 text):",
        "",
        "| shuffle | bytes |",
        "|---|---:|",
        f"| exact dedup: (hash, rank, key, id) | {s['exact_dedup_hash_group']} |",
        f"| near dedup: band keys (one per band) | {s['near_dedup_band_keys']} |",
        f"| near dedup: signature table (joins with edges and labels, twice each) | {s['near_dedup_signature_table']} |",
        f"| final join with the document (the only one carrying text) | {s['final_join_document_with_text']} |",
        "",
        "Edges and connected-component rounds carry pairs of record keys only, and only for candidate documents.",
        "",
        "## Peak memory of the Beam stage (DirectRunner, in-process)",
        "",
        "| documents | peak RSS (MB) | seconds | kept |",
        "|---:|---:|---:|---:|",
    ]
    for r in res["peak_rss"]:
        L.append(f"| {r['documents']:,} | {r['peak_rss_mb']} | {r['seconds']} | {r['kept']} |")
    L += [
        "",
        "DirectRunner keeps every PCollection of a stage in memory, so its peak grows with input; on Dataflow "
        "or Flink the shuffles spill to disk and a worker holds one key's group at a time (hot buckets and "
        "clusters are read in streaming passes, never materialised).",
        "",
    ]
    (REPO / "docs" / "NEAR_DEDUP.md").write_text("\n".join(L), encoding="utf-8")


if __name__ == "__main__":
    main()
