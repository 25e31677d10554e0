"""Exact deduplication across all sources, as Beam joins.

1. Each document emits ``(text_hash, (rank, key, id))`` - hashes and ids only.
2. ``GroupByKey`` on the hash; per group, the copy with the smallest rank is
   kept (two passes over the group's iterable, so a hot hash with millions of
   copies streams instead of being held in memory).
3. One decision per document, keyed by its record key, joins the documents
   (``CoGroupByKey``): this is the only shuffle that carries texts.
"""
from __future__ import annotations

import hashlib
import unicodedata
from typing import TYPE_CHECKING

import apache_beam as beam

from ..records import Document
from ..textnorm import stream_safe
from ..stage import CORPUS, BuildContext, Stage, StageContext, apply_stage, duplicate_key_failures

if TYPE_CHECKING:
    from ..schema import ExactDedup as ExactDedupSection

STAGE = "exact_dedup"


def normalise_for_exact(text: str) -> str:
    """NFKC (full-width to half-width, compatibility forms), case folding and
    whitespace collapsed: copies that differ only in these are duplicates."""
    # str.split() splits on exactly what r"\s+" matches (str.isspace), at a fifth of the cost
    return " ".join(unicodedata.normalize("NFKC", stream_safe(text)).casefold().split())


def text_hash(text: str) -> str:
    return hashlib.blake2b(normalise_for_exact(text).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def keep_rank(doc: Document, criteria: list[str], priorities: dict[str, int]) -> tuple:
    """Sort key of a copy: smaller is preferred. Ties end on id, then record key."""
    return rank_of(criteria, source_priority(doc.source, priorities), doc.date, len(doc.text), doc.id, doc.key)


def source_priority(source: str, priorities: dict[str, int]) -> int:
    """A source's priority in the keep rank; a source not configured ranks last."""
    return priorities.get(source, 1 << 30)


def rank_of(criteria: list[str], priority: int, date, length: int, doc_id: str, key: str) -> tuple:
    """``keep_rank`` from the fields it reads (``dedup_corpus`` ranks stored rows with it)."""
    rank = []
    for c in criteria:
        if c == "source_priority":
            rank.append(priority)
        elif c == "earliest_date":
            rank.extend((date is None, date or ""))
        elif c == "longest":
            rank.append(-length)
        else:
            raise ValueError(f"unknown keep criterion {c!r}")
    return tuple(rank) + (doc_id, key)


# Members of earlier runs (``--dedup-against``, read from their dedup state by
# dedup_state.ReadEarlier) take part in both dedup stages under these keys and ranks.
EARLIER_PREFIX = "!"  # earlier members' keys: never a record key (hex), and sorted before them


def is_earlier(key: str) -> bool:
    return key.startswith(EARLIER_PREFIX)


def rank_new(rank: tuple) -> tuple:
    """A new document's keep rank when earlier runs take part: after every earlier document."""
    return (1, rank)


def decide(group):
    """(hash, [(rank, key, id), ...]) -> (key, (kept_key, kept_id, group_size)) per member
    (members of earlier runs, ``--dedup-against``, get none: nothing of theirs is rewritten)."""
    digest, members = group
    best, size = None, 0
    for m in members:
        size += 1
        if best is None or m < best:
            best = m
    for m in members:
        if not is_earlier(m[1]):
            yield m[1], (best[1], best[2], size)


class _ApplyDecision(beam.DoFn):
    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    def process(self, joined):
        key, grouped = joined
        docs, decisions = list(grouped["doc"]), list(grouped["decision"])
        yield from duplicate_key_failures(docs, self.ctx)
        doc, (kept_key, kept_id, _size) = docs[0], decisions[0]
        if kept_key == key:
            yield doc
        else:
            yield self.ctx.drop(doc, "exact_duplicate", kept_id)


class ExactDedup(beam.PTransform):
    """``earlier``: a ``build.EarlierState`` (``--dedup-against``): members of
    earlier runs, which win against every new document and are never decided."""

    def __init__(self, cfg: ExactDedupSection, priorities: dict[str, int], excerpt_chars: int = 200, earlier=None):
        super().__init__()
        self.criteria = list(cfg.keep)  # schema.KeepCriterion: each one known
        self.priorities = priorities
        self.ctx = StageContext(STAGE, excerpt_chars)
        self.earlier = earlier

    def expand(self, docs):
        criteria, priorities = self.criteria, self.priorities
        by_key = docs | "ByKey" >> beam.Map(lambda d: (d.key, d))
        if self.earlier is None:
            hashes = docs | "HashIds" >> beam.Map(
                lambda d: (text_hash(d.text), (keep_rank(d, criteria, priorities), d.key, d.id)))
        else:
            new = docs | "HashIds" >> beam.Map(
                lambda d: (text_hash(d.text), (rank_new(keep_rank(d, criteria, priorities)), d.key, d.id)))
            old = self.earlier.collection(docs.pipeline) | "EarlierHashIds" >> beam.Map(
                lambda e: (e.text_hash, (e.rank, e.key, e.label)))
            hashes = (new, old) | "WithEarlier" >> beam.Flatten()
        decisions = (
            hashes
            | "GroupByHash" >> beam.GroupByKey()
            | "Decide" >> beam.FlatMap(decide)
        )
        joined = {"doc": by_key, "decision": decisions} | "JoinDecisions" >> beam.CoGroupByKey()
        return apply_stage(joined, "Apply", _ApplyDecision(self.ctx))


def source_priorities(cfg) -> dict[str, int]:
    """The keep policy's first criterion: each source's priority."""
    return {name: src.priority for name, src in cfg.sources.items()}


class ExactDedupStage(Stage):
    """One copy per normalised text, chosen by the keep policy."""

    name = section = "exact_dedup"
    header = "exact"
    scope = CORPUS
    rows_decided = True  # dedup_corpus.decide makes its decisions in a run in units

    def why_off(self, cfg):
        return None if cfg.exact_dedup.enabled else "disabled (exact_dedup.enabled: false)"

    def transform(self, build: BuildContext) -> beam.PTransform:
        return ExactDedup(build.cfg.exact_dedup, source_priorities(build.cfg), build.excerpt_chars, build.earlier)
