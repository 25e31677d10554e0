"""GPU inference benchmark for the fine filter: BERT-base-sized classifier
(random weights are fine for speed) at 512 tokens in bf16, through the same
``classifiers.bert.score`` function the pipeline's model handler calls.

  python bench/bench_gpu.py [--docs 8192] [--batch 256]

Prints documents/s, tokens/s and model FLOPs utilisation (MFU) against the
device's dense bf16 peak (H100 SXM: 989 TFLOP/s; pass --peak-tflops otherwise).
Target: >= 3,000 documents of 512 tokens per second on one H100.
"""
from __future__ import annotations

import argparse
import json
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    args = ap.parse_args()
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from mdfs.classifiers import bert

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU")
    cfg = BertConfig(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, num_labels=3, id2label={0: "high", 1: "low", 2: "ad"},
                     label2id={"high": 0, "low": 1, "ad": 2}, attn_implementation="sdpa")
    model = BertForSequenceClassification(cfg).to("cuda", dtype=torch.bfloat16).eval()

    class Tok:  # pre-tokenised input: this measures the model, tokenisation is timed separately
        cls_token_id, sep_token_id, pad_token_id, unk_token_id = 101, 102, 0, 100

        def __call__(self, texts, **_):
            return {"input_ids": [[1000 + (i % 20000) for i in range(args.seq - 2)] for _ in texts]}

    texts = ["x"] * args.docs
    bert.score(Tok(), model, ["high", "low", "ad"], texts[: args.batch], max_length=args.seq,
               batch_size=args.batch, max_batch_tokens=args.batch * args.seq)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    bert.score(Tok(), model, ["high", "low", "ad"], texts, max_length=args.seq, batch_size=args.batch,
               max_batch_tokens=args.batch * args.seq)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    non_embed = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    flops_per_doc = 2 * non_embed * args.seq + 4 * cfg.num_hidden_layers * args.seq * args.seq * cfg.hidden_size
    docs_s = args.docs / dt
    print(json.dumps({"device": torch.cuda.get_device_name(), "docs_per_s": round(docs_s, 1),
                      "tokens_per_s": round(docs_s * args.seq), "mfu": round(docs_s * flops_per_doc / (args.peak_tflops * 1e12), 4),
                      "batch": args.batch, "seq": args.seq}, indent=2))


if __name__ == "__main__":
    main()
