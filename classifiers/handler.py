"""Beam ``ModelHandler`` for the BERT quality/advertisement classifier.

Beam 2.77's Hugging Face handlers do not import with transformers 5, so this
is a small handler of our own: ``load_model`` loads the safetensors model
directory once per worker process (on GPU with bf16 when present), and
``run_inference`` scores a batch of documents with segmenting and
length-bucketed sub-batches (``bert.score``).  A batch that fails is retried
document by document, so one bad document becomes one failed record instead
of a failed bundle.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult


@dataclass(frozen=True)
class ScoringFailure:
    """The ``inference`` of a document that could not be scored (its dead letter's message)."""

    message: str


class LoadedClassifier:
    """What ``load_model`` returns: Beam's shared-model cache needs an object it
    can weak-reference (a tuple is not)."""

    def __init__(self, tokenizer, model, labels):
        self.tokenizer, self.model, self.labels = tokenizer, model, labels


class BertClassifierHandler(ModelHandler):
    def __init__(self, model_dir: str, device: str = "auto", dtype: str = "auto", max_length: int = 512,
                 batch_size: int = 32, aggregate: str = "mean", max_segments: int = 8, allow_pickle: bool = False,
                 min_batch_size: int = 1, max_batch_size: int = 64, accelerator: Optional[str] = None):
        super().__init__()
        self.model_dir = model_dir
        self.device = device
        self.dtype = dtype
        self.max_length = max_length
        self.batch_size = batch_size
        self.aggregate = aggregate
        self.max_segments = max_segments
        self.allow_pickle = allow_pickle
        self._batch_kwargs = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
        self.accelerator = accelerator

    def load_model(self):
        from . import bert

        device = bert.resolve_device(self.device)
        dtype = self.dtype if self.dtype != "auto" else ("bf16" if device == "cuda" else None)
        return LoadedClassifier(*bert.load(self.model_dir, device, self.allow_pickle, dtype))

    def run_inference(self, batch: Sequence[Any], model, inference_args: Optional[dict] = None
                      ) -> Iterable[PredictionResult]:
        """Documents -> PredictionResult(document, {label: probability} or ScoringFailure)."""
        from . import bert

        tok, m, labels = model.tokenizer, model.model, model.labels
        kwargs = dict(max_length=self.max_length, batch_size=self.batch_size, aggregate=self.aggregate,
                      max_segments=self.max_segments)
        try:
            probs = bert.score(tok, m, labels, [d.text for d in batch], **kwargs)
            return [PredictionResult(d, p, self.model_dir) for d, p in zip(batch, probs)]
        except Exception:  # noqa: BLE001 - find the document that fails
            out = []
            for d in batch:
                try:
                    out.append(PredictionResult(d, bert.score(tok, m, labels, [d.text], **kwargs)[0], self.model_dir))
                except Exception as exc:  # noqa: BLE001
                    out.append(PredictionResult(d, ScoringFailure(f"{type(exc).__name__}: {exc}"), self.model_dir))
            return out

    def batch_elements_kwargs(self):
        return self._batch_kwargs

    def get_metrics_namespace(self) -> str:
        return "mdfs.bert"

    def get_resource_hints(self) -> dict:
        """The accelerator (``fine.bert.accelerator``) for the inference step only:
        RunInference puts it on its own ParDo, so only that step asks for a GPU."""
        return {"accelerator": self.accelerator} if self.accelerator else {}
