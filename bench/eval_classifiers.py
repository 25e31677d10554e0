"""Classifier evaluation and speed: fastText and tiny BERT trained on the
AdDetector Chinese advertisement set (read from ../shared, never committed),
the cascade's share routed to BERT and its agreement with BERT alone, and
inference speed on CPU (tiny model, and a BERT-base-sized model with random
weights at 512 tokens).  Writes docs/CLASSIFIER.md and bench/classifier_results.json.

  python bench/eval_classifiers.py [--shared ../shared/data] [--work /tmp/mdfs-clf]
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def prepare(shared: Path, work: Path) -> tuple[Path, Path]:
    src = shared / "labeled" / "zh_ad_addetector"
    out = []
    for split in ("train", "test"):
        texts = gzip.decompress((src / f"{split}_texts.txt.gz").read_bytes()).decode("utf-8").split("\n")
        labels = (src / f"{split}_labels.txt").read_text().split("\n")
        path = work / f"{split}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for t, l in zip(texts, labels):
                if l.strip():
                    fh.write(
                        json.dumps({"text": t, "label": "ad" if l.strip() == "1" else "normal"}, ensure_ascii=False)
                        + "\n"
                    )
        out.append(path)
    return out[0], out[1]


def cascade_stats(ft_probs, bert_probs, sure_keep=0.95, sure_drop=0.95, threshold=0.5):
    routed, agree = 0, 0
    for f, b in zip(ft_probs, bert_probs):
        if f["ad"] >= sure_drop or f["ad"] <= 1 - sure_keep:
            decision = f["ad"] >= threshold
        else:
            routed += 1
            decision = b["ad"] >= threshold
        agree += decision == (b["ad"] >= threshold)
    n = len(ft_probs)
    return {"share_to_bert": round(routed / n, 4), "agreement_with_bert_only": round(agree / n, 4)}


def speed(model_dir: str | None, texts, max_length=512, n=64, base_size=False):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from mdfs.classifiers import bert

    torch.set_num_threads(1)
    if base_size:
        tok, _, _ = bert.load(model_dir)
        model = BertForSequenceClassification(
            BertConfig(
                vocab_size=len(tok),
                hidden_size=768,
                num_hidden_layers=12,
                num_attention_heads=12,
                intermediate_size=3072,
                num_labels=2,
            )
        ).eval()
        labels = ["ad", "normal"]
    else:
        tok, model, labels = bert.load(model_dir)
    long = ["".join(texts)[i * 700 : (i + 1) * 700] for i in range(n)]  # >= 512 tokens each, one segment
    bert.score(tok, model, labels, long[:2], max_length=max_length, max_segments=1)
    t0 = time.perf_counter()
    bert.score(tok, model, labels, long, max_length=max_length, max_segments=1, batch_size=8)
    dt = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    # forward FLOPs per token ~ 2 * parameters (excluding embeddings) + attention
    return {
        "docs_per_s": round(n / dt, 2),
        "tokens_per_s": round(n * max_length / dt, 1),
        "parameters": params,
        "docs": n,
        "seq_len": max_length,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mdfs-clf"))
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    train_path, test_path = prepare(args.shared, args.work)
    from mdfs.classifiers import bert
    from mdfs.classifiers.data import read_jsonl
    from mdfs.classifiers.evaluate import evaluate, load_any
    from mdfs.classifiers.fasttext_model import train as train_ft

    data = read_jsonl(str(train_path))
    t0 = time.time()
    train_ft(data.texts, data.labels, str(args.work / "ft"), data.label_names)
    ft_train_s = time.time() - t0
    info = bert.train(
        data.texts,
        data.label_ids,
        data.label_names,
        str(args.work / "bert"),
        epochs=args.epochs,
        lr=5e-4,
        batch_size=32,
        max_length=256,
        threads=2,
    )
    ft_eval = evaluate(str(args.work / "ft"), str(test_path))
    bert_eval = evaluate(str(args.work / "bert"), str(test_path))
    test = read_jsonl(str(test_path))
    _, ft_score, _ = load_any(str(args.work / "ft"))
    _, bert_score, _ = load_any(str(args.work / "bert"))
    cascade = cascade_stats(ft_score(test.texts), bert_score(test.texts))
    res = {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "train_rows": len(data.texts),
        "test_rows": len(test.texts),
        "fasttext": {
            "macro_f1": ft_eval["macro_f1"],
            "per_class": ft_eval["per_class"],
            "train_seconds": round(ft_train_s, 1),
            "docs_per_s": ft_eval["docs_per_s"],
        },
        "bert_tiny": {
            "macro_f1": bert_eval["macro_f1"],
            "per_class": bert_eval["per_class"],
            "train_seconds": info["train_seconds"],
            "parameters": info["parameters"],
            "docs_per_s_eval": bert_eval["docs_per_s"],
        },
        "cascade": cascade,
        "cpu_speed_512": {
            "tiny": speed(str(args.work / "bert"), test.texts),
            "bert_base_size": speed(str(args.work / "bert"), test.texts, n=8, base_size=True),
        },
        "gpu": "pending: no GPU machine was lent to this session; run bench/bench_gpu.py on one",
    }
    (REPO / "bench" / "classifier_results.json").write_text(json.dumps(res, indent=2, ensure_ascii=False))
    write_doc(res)
    print(json.dumps(res, indent=2, ensure_ascii=False))


def write_doc(r):
    f, b, c, s = r["fasttext"], r["bert_tiny"], r["cascade"], r["cpu_speed_512"]
    L = [
        "# Fine filter: measured",
        "",
        f"Generated by `python bench/eval_classifiers.py` on {r['date']} (Python {r['python']}, {r['machine']}, CPU). "
        "Data: AdDetector (ContentSecurity-WHU), Chinese promotional vs ordinary paragraphs, read from "
        f"`../shared/data/labeled/zh_ad_addetector/` (no licence: used for evaluation only, never committed); "
        f"{r['train_rows']:,} training and {r['test_rows']:,} test rows, labels `ad` / `normal`.",
        "",
        "## Quality (target: macro-F1 >= 0.90)",
        "",
        "| model | macro-F1 | ad P / R / F1 | normal P / R / F1 | training |",
        "|---|---:|---|---|---|",
    ]
    for name, m, train in (
        ("fastText (chars + word n-grams <= 3)", f, f"{f['train_seconds']} s"),
        (
            f"BERT from scratch, 128 hidden / 2 layers / 2 heads ({b['parameters']:,} params)",
            b,
            f"{b['train_seconds']} s, 3 epochs, 2 CPU threads",
        ),
    ):
        pa, pn = m["per_class"]["ad"], m["per_class"]["normal"]
        L.append(
            f"| {name} | **{m['macro_f1']:.4f}** | {pa['precision']:.3f} / {pa['recall']:.3f} / {pa['f1']:.3f} | "
            f"{pn['precision']:.3f} / {pn['recall']:.3f} / {pn['f1']:.3f} | {train} |"
        )
    L += [
        "",
        "## Cascade",
        "",
        "fastText decides alone where P(ad) >= 0.95 or <= 0.05 (the default `fine.cascade` bands); the rest go to BERT.",
        "",
        f"* share of test documents that reach BERT: **{c['share_to_bert']:.1%}**",
        f"* agreement of the cascade's decisions with BERT-only decisions on the same documents: "
        f"**{c['agreement_with_bert_only']:.1%}**",
        "",
        "## Inference speed, one CPU core, 512-token segments",
        "",
        "| model | parameters | documents/s | tokens/s |",
        "|---|---:|---:|---:|",
        f"| tiny BERT (the model above) | {s['tiny']['parameters']:,} | {s['tiny']['docs_per_s']} | {s['tiny']['tokens_per_s']:,} |",
        f"| BERT-base size (768/12/12, random weights) | {s['bert_base_size']['parameters']:,} | "
        f"{s['bert_base_size']['docs_per_s']} | {s['bert_base_size']['tokens_per_s']:,} |",
        f"| fastText (whole documents) | | {f['docs_per_s']:,} | |",
        "",
        "**GPU figure: pending.** No GPU machine was lent to this session. `bench/bench_gpu.py` measures "
        "BERT-base at 512 tokens in bf16 on a GPU (documents/s and model FLOPs utilisation; target >= 3,000 "
        "documents/s on one H100) by calling the project's inference function directly, without Beam.",
        "",
    ]
    (REPO / "docs" / "CLASSIFIER.md").write_text("\n".join(L), encoding="utf-8")


if __name__ == "__main__":
    main()
