"""Configuration sections of decontamination, dedup, the fine filter, the
report and the output (re-exported by ``schema.py``): each default with its
reason, from which ``defaults.yaml`` is generated."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from .schema_base import NonNeg, NonNegInt, Positive, PositiveInt, Share, Strict, as_list, section

KeepCriterion = Literal["source_priority", "earliest_date", "longest"]


class DecontaminationSet(Strict):
    paths: Annotated[list[str], Field(min_length=1)]
    fields: Optional[Annotated[list[str], Field(min_length=1)]] = None
    id_field: Optional[str] = None
    action: Optional[Literal["drop", "redact"]] = None

    _paths_list = field_validator("paths", mode="before")(as_list)


class NgramSize(Strict):
    n: Annotated[int, Field(ge=3, le=200)]
    min_item_tokens: PositiveInt


class NgramSizes(Strict):
    """Items mostly of CJK characters are matched as character n-grams, others
    as word n-grams, after the same normalisation on both sides (NFKC, case,
    punctuation and whitespace dropped).  words: 13 (GPT-3, arXiv 2005.14165);
    cjk: 20, the same information as 13 English words (measured: one English
    word ~ 1.5 Chinese characters, bench/bench_decontamination.py).  An item
    shorter than n but at least min_item_tokens must appear whole."""

    cjk: NgramSize = Field(default_factory=lambda: {"n": 20, "min_item_tokens": 15})
    words: NgramSize = Field(default_factory=lambda: {"n": 13, "min_item_tokens": 10})


class Decontamination(Strict):
    """Keep evaluation sets out of the corpus (pipeline/stages/decontaminate/,
    docs/DECONTAMINATION.md): a stage after the coarse rules and before pii
    and dedup, off until a set is named.  Each set is a glob (or list of
    globs) of JSONL(.gz), Parquet or CSV items, or a mapping
      NAME: {paths: [...], fields: [question, A, B, C, D, answer], id_field: id, action: redact}
    fields: the columns whose text makes the item (lists and maps rendered as
    "A. ..." lines); default: text if the row has it, else question + options
    + answer.  Items shorter than min_item_tokens are listed in
    decontamination.json (beside funnel.json), never silently ignored."""

    sets: dict[str, Union[str, Annotated[list[str], Field(min_length=1)], DecontaminationSet]] = Field(
        default_factory=dict)
    action: Literal["drop", "redact"] = Field(
        "drop", description="drop (reason contaminated) or redact (matched spans removed); per set: action")
    ngrams: NgramSizes = section(NgramSizes)
    min_matches: PositiveInt = Field(1, description=(
        "n-grams a document must share with one item (items with fewer need all of theirs)"))
    max_ngram_items: PositiveInt = Field(
        20, description="n-grams in more than this many items are question templates, not evidence")
    max_index_mb: Positive = Field(1024, description=(
        "Every worker process holds the index (12 bytes per n-gram; 20,000 items are ~16 MB, measured); a "
        "larger index is refused with this message."))


class ExactDedup(Strict):
    enabled: bool = True
    keep: list[KeepCriterion] = Field(default_factory=lambda: ["source_priority", "earliest_date"], description=(
        "Which copy of a group of identical texts (after NFKC, case folding and whitespace collapsing) is kept: "
        "criteria in order, then id, then record key.  source_priority: lower source priority wins; "
        "earliest_date: oldest date wins."))


class Shingle(Strict):
    unit: Literal["char", "word"]
    n: PositiveInt


class NearDedup(Strict):
    """MinHash near-duplicate removal (pipeline/stages/dedup_near.py), after exact dedup."""

    enabled: bool = True
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.8, description="Jaccard similarity of shingle sets (GPT-3, The Pile, FineWeb use ~0.7-0.8)")
    num_perm: Annotated[int, Field(ge=2, le=4096)] = Field(256, description=(
        "256 permutations: the estimate of a J = 0.85 pair falls below 0.8 ~1 % of the time (6 % at 128), "
        "which the verification step needs for >= 95 % recall."))
    seed: int = 1
    bands: Optional[PositiveInt] = Field(None, description=(
        "bands x rows from datasketch's optimiser; weighting false negatives 0.95 gives 25 x 10 at 256 "
        "permutations (candidate probability 0.996 at J = 0.85)."))
    rows: Optional[PositiveInt] = None
    false_positive_weight: Share = 0.05
    false_negative_weight: Share = 0.95
    verify: bool = Field(True, description="keep a candidate edge only if estimated Jaccard >= threshold")
    max_rounds: PositiveInt = Field(10, description="large-star/small-star pairs (chains of ~5,000 converge)")
    shingles: dict[str, Shingle] = Field(default_factory=lambda: {
        "zh": {"unit": "char", "n": 5}, "ja": {"unit": "char", "n": 5}, "ko": {"unit": "char", "n": 5},
        "th": {"unit": "char", "n": 5}, "default": {"unit": "word", "n": 5}},
        description="unit char (no word spaces) or word, n-gram size")
    keep: list[KeepCriterion] = Field(default_factory=lambda: ["source_priority", "earliest_date", "longest"],
                                      description="which copy of a cluster is kept; ties by id")
    decisions: bool = Field(
        True, description="false: compute signatures and band keys only, drop nothing (benchmarks)")

    @model_validator(mode="after")
    def _check(self):
        if "default" not in self.shingles:
            raise ValueError("shingles needs a 'default' entry (used for languages without their own)")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (datasketch's optimiser picks them)")
        if self.bands and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


class Cascade(Strict):
    """fastText decides alone where it is sure; the rest go to BERT"""

    sure_keep: Share = Field(0.95, description="all drop labels together <= 0.05: keep")
    sure_drop: Share = Field(0.95, description="one drop label >= 0.95: drop")


class Bert(Strict):
    device: Literal["auto", "cuda", "cpu"] = Field("auto", description="auto (GPU when present), cuda, cpu")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 on GPU, fp32 on CPU; or bf16, fp16, fp32")
    max_length: Annotated[int, Field(ge=8, le=8192)] = Field(
        512, description="tokens per segment (ChineseWebText's BERTEval: 512)")
    max_segments: PositiveInt = Field(8, description="segments scored per document (bounds cost on giant pages)")
    aggregate: Literal["mean", "max", "first"] = Field(
        "mean", description="segment probabilities -> document: mean (length-weighted), max, first")
    batch_size: PositiveInt = Field(32, description="segments per forward pass (sorted by length)")
    docs_per_batch: PositiveInt = Field(64, description="documents per RunInference batch")
    accelerator: Optional[str] = Field(None, description=(
        "Beam resource hint for the inference step only, e.g. on Dataflow: "
        "\"type:nvidia-l4;count:1;install-nvidia-driver\""))


class Fine(Strict):
    """Classifier stage (pipeline/stages/fine.py).  Without a model the stage is skipped
    and the run says so.  Train models with `mdfs train-classifier`."""

    bert_model: Optional[str] = Field(None, description=(
        "local Hugging Face directory (safetensors), e.g. a fine-tuned bert-base-chinese"))
    fasttext_model: Optional[str] = Field(
        None, description="directory written by `mdfs train-classifier --kind fasttext`")
    allow_pickle: bool = Field(False, description="refuse pytorch_model.bin checkpoints unless true")
    languages: Optional[list[str]] = Field(None, description=(
        "Languages the classifiers judge; documents in other languages pass the stage unscored (funnel.json: "
        "passed_unscored).  null: the languages that `mdfs train-classifier` recorded with the model (>= 5 % "
        "of its training rows); a model without that record needs this key.  []: every language."))
    drop_labels: dict[str, str] = Field(default_factory=lambda: {"low": "low_quality", "ad": "advertisement"},
                                        description=(
        "labels whose probability can drop a document, and the reason they carry.  A config file or --set "
        "replaces this map (and thresholds) as a whole."))
    thresholds: dict[str, Share] = Field(default_factory=lambda: {"low": 0.5, "ad": 0.5},
                                         description="drop when P(label) >= threshold")
    default_threshold: Share = Field(0.5, description="threshold of a drop label that thresholds does not name")
    cascade: Cascade = section(Cascade)
    bert: Bert = section(Bert)

    @model_validator(mode="after")
    def _thresholds_name_drop_labels(self):
        stray = sorted(set(self.thresholds) - set(self.drop_labels))
        if stray:
            raise ValueError(f"thresholds for {stray} but drop_labels has only {sorted(self.drop_labels)}: "
                             "a threshold applies to a drop label")
        return self


class Stats(Strict):
    tokenizer: Optional[str] = Field(None, description=(
        "Local Hugging Face tokenizer.json (or a directory holding one) for token counts; null uses the "
        "built-in count: one token per CJK character, per other word and per punctuation mark (see "
        "pipeline/tokens.py)."))


class Mix(Strict):
    """The training-mix table of the report (GPT-3 Table 2.2 style)."""

    weights: dict[str, NonNeg] = Field(default_factory=dict, description=(
        "source -> weight; sources not listed share the rest by token count"))
    budget_tokens: Optional[Positive] = Field(None, description="training budget in tokens, or:")
    model_params: Optional[Positive] = Field(None, description=(
        "parameters N: budget D = tokens_per_param * N (Chinchilla, arXiv 2203.15556)"))
    tokens_per_param: Positive = 20
    max_epochs: Positive = Field(4, description=(
        "warn above this (Muennighoff et al., arXiv 2305.16264: ~4 epochs of repeats cost little)"))

    @model_validator(mode="after")
    def _one_budget(self):
        if self.budget_tokens is not None and self.model_params is not None:
            raise ValueError("set budget_tokens or model_params, not both (each sets the budget)")
        return self


class Run(Strict):
    max_failed_share: Share = Field(0.1, description=(
        "A run whose output cannot be trusted is rejected (exit 3, _REJECTED.json, no _SUCCESS): a source that "
        "yields no document because all its records failed, or a source whose failed share exceeds this.  A "
        "few failed records are normal (truncated or damaged records in real crawls; the bundled samples hold "
        "one on purpose); a large share means a misconfigured source (wrong fields, wrong format) or a damaged "
        "input."))
    unit_mb: NonNeg = Field(64.0, description=(
        "Input megabytes per unit (of the files as stored; a file is never split) when `mdfs run` works in units "
        "of files: on the DirectRunner, for an input larger than one unit, each unit is read and filtered by a "
        "job of its own, exact and near dedup are decided for the whole corpus on disk, and a second job per "
        "unit applies the verdicts (docs/SCALE.md); memory is set by the unit, not the corpus, and `mdfs run "
        "--resume` continues a killed run.  64 MB: two such units of gzipped JSONL peaked at 0.71 GB against "
        "2.94 GB as one job at 100,000 documents, for 8 % more CPU (docs/PERFORMANCE.md); smaller units cost more "
        "jobs' start-up (about 2 s each), bigger ones hold more at once and lose more work to a crash.  0: always "
        "one job.  Flink, Spark and Dataflow run one job: the engine manages its memory."))


class Review(Strict):
    min_precision: Share = Field(0.9, description=(
        "The report and `mdfs review --summary` list the rules whose judged precision (correct / (correct + "
        "wrong) among reviewed drops) has its whole 95 % Wilson interval below this: with 97.5 % confidence "
        "the rule drops good documents more often than 1 in 10.  A choice of where to look next, not a "
        "measured quality bar: no paper sets one for pretraining filters."))


class Output(Strict):
    compression: Literal["zstd", "snappy", "gzip", "brotli", "lz4", "none"] = Field(
        "zstd", description="Parquet codec: zstd, snappy, gzip, brotli, lz4, none")
    excerpt_chars: NonNegInt = Field(200, description="text excerpt stored with each dropped record")
    kept_shards: NonNegInt = Field(0, description="0 = let the runner decide")
    candidates: bool = Field(False, description=(
        "Write candidates/: every document that reached the coarse rules, as the rules saw it (cleaned text, "
        "removed lines, signals), and the classifier scores of those the fine stage scored, whatever happened "
        "to them later.  `mdfs refilter` re-thresholds a run from it without reading or extracting again; "
        "`mdfs review` shows dropped documents' full text from it.  Its size is about that of the kept output "
        "plus the text of the documents the rules, dedup and classifier dropped (docs/SIGNALS.md)."))
    dedup_state: bool = Field(True, description=(
        "Write dedup_state/: the exact-dedup hash and MinHash signature of every kept document (~1.1 KB each "
        "at 256 permutations), so that a later run can deduplicate against this one (--dedup-against, "
        "dedup_against below)."))


class CustomStage(Strict):
    """A user's own stage (``stage.Stage`` subclass), placed after a declared one."""

    stage: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]  # module:Class
    after: str
    settings: dict = Field(default_factory=dict)
