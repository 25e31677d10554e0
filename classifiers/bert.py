"""BERT sequence classifier (Yuan 1.0's fine filter): training, safe loading,
and segment-level scoring.

* Training starts from a local checkpoint directory (e.g. a fine-tuned
  ``bert-base-chinese`` the user has) or, without one, from a small
  ``BertConfig`` with a WordPiece vocabulary trained on the data by
  ``tokenizers`` (BERT's normaliser splits CJK per character).
* Models are saved as standard Hugging Face directories in safetensors, with
  the label map in ``config.json`` and a model card.  Loading refuses pickle
  checkpoints (``pytorch_model.bin``) unless explicitly allowed, and never
  touches the network (``local_files_only``).
* Scoring splits each document into segments of at most ``max_length``
  tokens (ChineseWebText's BERTEval scores 512-token segments), sorts the
  segments by length so batches carry little padding, and aggregates the
  segment probabilities per document (``mean`` weighted by segment length,
  ``max``, or ``first``).
"""
from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

from .integrity import ModelError, check_recorded, read_meta, record

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


EXTRA = "bert"


def require_extra() -> None:
    """Refuse in one line when torch or transformers is missing.  They are the
    ``[bert]`` extra, not the core install: PyPI's Linux torch wheel carries
    the CUDA stack (about 4.6 GB), which rules, dedup and fastText never use."""
    import importlib.util

    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelError(f"the BERT classifier needs the [{EXTRA}] extra ({' and '.join(missing)} not installed): "
                         f"pip install 'mdfs[{EXTRA}]'")


def train_wordpiece(texts: list[str], vocab_size: int = 8000):
    """A BERT-style WordPiece tokenizer trained on ``texts`` (CJK per character)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, min_frequency=2)
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", model_max_length=512)


def check_model_dir(model_dir: str, allow_pickle: bool = False) -> Path:
    """Refuse directories that are incomplete or hold only a pickle checkpoint."""
    require_extra()
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelError(f"model directory not found: {model_dir}")
    if not (path / "config.json").is_file():
        raise ModelError(f"{model_dir}: no config.json (not a Hugging Face model directory)")
    has_safe = any(path.glob("*.safetensors"))
    has_pickle = any(path.glob("pytorch_model*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.ckpt"))
    if not has_safe:
        if has_pickle and not allow_pickle:
            raise ModelError(f"{model_dir}: only a pickle checkpoint (pytorch_model.bin); loading pickles can "
                             "run arbitrary code - convert it to safetensors or pass allow_pickle")
        if not has_pickle:
            raise ModelError(f"{model_dir}: no model weights (model.safetensors)")
    if not any((path / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        raise ModelError(f"{model_dir}: no tokenizer (tokenizer.json or vocab.txt)")
    return path


def verify_weights(path: Path) -> bool:
    """True when the weight files match what mdfs recorded at training; False
    for a model mdfs did not train whose safetensors files open completely
    (unverified); raises ModelError otherwise (cut short, changed, not safetensors)."""
    weights = sorted(path.glob("*.safetensors"))
    meta_path = path / "mdfs_classifier.json"
    meta = read_meta(meta_path) if meta_path.is_file() else {}
    if check_recorded(meta, meta_path, weights):
        return True
    from safetensors import safe_open

    for w in weights:  # safetensors checks that its header and the file's length agree
        try:
            with safe_open(str(w), "np") as fh:
                fh.keys()
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError
            raise ModelError(f"{w}: does not load completely ({type(exc).__name__}: {exc})") from None
    return False


def load(model_dir: str, device: str = "cpu", allow_pickle: bool = False, dtype: str | None = None):
    """(tokenizer, model, labels) from a local directory, model in eval mode on ``device``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = check_model_dir(model_dir, allow_pickle)
    verify_weights(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32, None: None}[dtype]
    model = AutoModelForSequenceClassification.from_pretrained(
        str(path), local_files_only=True, use_safetensors=not allow_pickle or any(path.glob("*.safetensors")),
        dtype=torch_dtype)
    model.to(device).eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return tokenizer, model, labels


def resolve_device(device: str) -> str:
    import torch

    if device in ("auto", "gpu", "cuda"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def segment_ids(tokenizer, texts: list[str], max_length: int = 512, max_segments: int = 8):
    """Token ids per document, split into segments of <= max_length (with
    [CLS]/[SEP]); at most ``max_segments`` per document (cost stays bounded
    for giant pages).  Returns [(doc_index, ids), ...]."""
    body = max_length - 2
    enc = tokenizer([t if t.strip() else "[UNK]" for t in texts], add_special_tokens=False,
                    truncation=False, return_attention_mask=False, verbose=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = []
    for i, ids in enumerate(enc):
        ids = ids or [tokenizer.unk_token_id]
        for s in range(0, min(len(ids), body * max_segments), body):
            out.append((i, [cls] + ids[s:s + body] + [sep]))
    return out


def score(tokenizer, model, labels: list[str], texts: list[str], max_length: int = 512, batch_size: int = 32,
          aggregate: str = "mean", max_segments: int = 8, max_batch_tokens: int = 16384) -> list[dict[str, float]]:
    """Class probabilities per text (dict label -> probability)."""
    import torch

    if not texts:
        return []
    segs = segment_ids(tokenizer, texts, max_length, max_segments)
    order = sorted(range(len(segs)), key=lambda k: len(segs[k][1]))  # length buckets: little padding
    probs = [None] * len(segs)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    start = 0
    with torch.inference_mode():
        while start < len(order):
            # as many segments as fit both the batch size and the token budget
            end = start + 1
            while end < len(order) and end - start < batch_size and \
                    (end - start + 1) * len(segs[order[end]][1]) <= max_batch_tokens:
                end += 1
            chunk = order[start:end]
            width = max(len(segs[k][1]) for k in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, k in enumerate(chunk):
                seq = segs[k][1]
                ids[row, :len(seq)] = torch.tensor(seq)
                mask[row, :len(seq)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            p = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for row, k in enumerate(chunk):
                probs[k] = p[row]
            start = end
    return aggregate_segments(segs, probs, len(texts), labels, aggregate)


def aggregate_segments(segs, probs, n_docs: int, labels: list[str], aggregate: str = "mean"):
    """Segment probabilities -> one distribution per document.

    mean: average weighted by segment length; max: per-label maximum,
    renormalised; first: the first segment only."""
    import numpy as np

    if aggregate not in ("mean", "max", "first"):
        raise ValueError(f"unknown aggregate {aggregate!r}: mean, max or first")
    acc = [None] * n_docs
    weight = [0.0] * n_docs
    for (doc, ids), p in zip(segs, probs):
        p = np.asarray(p, dtype=np.float64)
        if aggregate == "first":
            if acc[doc] is None:
                acc[doc] = p
        elif aggregate == "max":
            acc[doc] = p if acc[doc] is None else np.maximum(acc[doc], p)
        else:
            w = float(len(ids))
            acc[doc] = p * w if acc[doc] is None else acc[doc] + p * w
            weight[doc] += w
    out = []
    for doc in range(n_docs):
        p = acc[doc]
        p = p / weight[doc] if aggregate == "mean" else p / p.sum()
        out.append({label: float(v) for label, v in zip(labels, p)})
    return out


def _starting_model(texts: list[str], label_names: list[str], base: str | None, allow_pickle: bool,
                    hidden_size: int, layers: int, heads: int, vocab_size: int, log):
    """(tokenizer, model, origin): the checkpoint at ``base`` with a new
    classification head, or a small BERT with a WordPiece vocabulary trained on
    ``texts``; origin says which, for the model card."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification

    id2label = dict(enumerate(label_names))
    label2id = {v: k for k, v in id2label.items()}
    if base:
        check_model_dir(base, allow_pickle)
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            base, local_files_only=True, num_labels=len(label_names), id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True, use_safetensors=not allow_pickle or any(Path(base).glob("*.safetensors")))
        return tokenizer, model, f"fine-tuned from {base}"
    log(f"training a WordPiece vocabulary on {len(texts):,} texts ...")
    tokenizer = train_wordpiece(texts, vocab_size)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden_size * 4,
                        max_position_embeddings=512, num_labels=len(label_names), id2label=id2label,
                        label2id=label2id)
    origin = (f"trained from scratch: BertConfig(hidden={hidden_size}, layers={layers}, heads={heads}), "
              f"WordPiece vocabulary of {len(tokenizer)} trained on the training texts")
    return tokenizer, BertForSequenceClassification(config), origin


def _epoch_batches(enc: list[list[int]], batch_size: int) -> list[list[int]]:
    """One epoch's batches of row numbers: rows bucketed by length (little
    padding), shuffled within buckets, and the batches shuffled."""
    order = list(range(len(enc)))
    random.shuffle(order)
    order.sort(key=lambda i: len(enc[i]) // 32)  # bucket by length, shuffled within buckets
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    random.shuffle(batches)
    return batches


def _padded(enc: list[list[int]], batch: list[int], pad_id: int):
    """(input ids, attention mask) of one batch, padded to its longest row."""
    import torch

    width = max(len(enc[i]) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, i in enumerate(batch):
        ids[r, :len(enc[i])] = torch.tensor(enc[i])
        mask[r, :len(enc[i])] = 1
    return ids, mask


def train(texts: list[str], label_ids: list[int], label_names: list[str], output_dir: str, base: str | None = None,
          allow_pickle: bool = False, epochs: int = 3, lr: float = 5e-4, batch_size: int = 32,
          max_length: int = 256, hidden_size: int = 128, layers: int = 2, heads: int = 2, vocab_size: int = 8000,
          seed: int = 0, threads: int | None = None, log=print, progress=None) -> dict:
    """Fine-tunes (with ``base``) or trains from scratch a small BERT; saves a
    safetensors model directory with its tokenizer, label map and model card.
    ``progress(description, total)``: called at each phase, returns a callable
    ``advance(n)`` (a progress bar; ``mdfs train-classifier`` passes rich's)."""
    require_extra()
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    tokenizer, model, origin = _starting_model(texts, label_names, base, allow_pickle, hidden_size, layers, heads,
                                               vocab_size, log)
    log(f"tokenizing {len(texts):,} texts ...")
    enc = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    y = torch.tensor(label_ids)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(enc) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10))
                                              * max(0.0, (steps - s) / steps))
    model.train()
    t0 = time.time()
    advance = progress("training", steps) if progress else (lambda n=1: None)
    for ep in range(epochs):
        batches = _epoch_batches(enc, batch_size)
        total = 0.0
        for b in batches:
            ids, mask = _padded(enc, b, tokenizer.pad_token_id)
            loss = model(input_ids=ids, attention_mask=mask, labels=y[b]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            total += float(loss.detach())
            advance(1)
        log(f"epoch {ep + 1}/{epochs}: mean loss {total / max(1, len(batches)):.4f} ({time.time() - t0:.0f} s)")
    model.eval()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    info = {"kind": "bert", "labels": label_names, "origin": origin, "train_rows": len(texts), "epochs": epochs,
            "max_length": max_length, "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(time.time() - t0, 1)}
    (out / "mdfs_classifier.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
    record(out / "mdfs_classifier.json", sorted(out.glob("*.safetensors")))  # checked at every load
    write_model_card(out, info)
    return info


def write_model_card(out: Path, info: dict, metrics: dict | None = None) -> None:
    lines = ["---", "library_name: transformers", "pipeline_tag: text-classification", "tags: [mdfs, quality-filter]",
             "---", "", "# mdfs quality / advertisement classifier", "",
             f"Labels: {', '.join(info['labels'])}.", "", f"Model: {info['origin']}; "
             f"{info['parameters']:,} parameters; trained on {info['train_rows']:,} rows for {info['epochs']} epochs "
             f"(max length {info['max_length']}) by `mdfs train-classifier`.", "",
             "Use: `mdfs run --set fine.bert_model=THIS_DIR`, or `mdfs eval-classifier --model THIS_DIR --test FILE`."]
    if metrics:
        lines += ["", "## Evaluation", "", f"macro-F1 {metrics['macro_f1']:.4f} on {metrics['rows']} rows."]
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
