"""MinHash near-deduplication as Beam steps.

1. ``Sign``: each document -> ``(key, (rank, id, signature))``.  Signatures
   (``minhash.MinHasher``) use character n-grams for Chinese and other
   unspaced languages and word n-grams otherwise, as configured.
2. ``Band``: one LSH key per band; documents sharing a key are candidates.
   Each bucket emits a star of edges from its smallest key (two streaming
   passes over the bucket, so a hot bucket is never held in memory).
3. ``Verify`` (optional): candidate edges join the signatures of both ends
   and survive only if the estimated Jaccard reaches the threshold.
4. ``ConnectedComponents`` over the verified edges (large-star/small-star).
5. ``Decide``: per component, the copy to keep is chosen by the keep policy
   (``dedup_exact.keep_rank``: source priority, earliest date, longest; ties
   by id).  A member is dropped as ``near_duplicate`` only if its own
   estimated Jaccard with the kept copy reaches the threshold: chains
   (A~B, B~C, A!~C) never remove a document unlike the one kept.
6. One final join of the decisions with the documents (the only shuffle that
   carries texts) sets ``dedup_cluster`` (id of the kept copy) and
   ``dedup_cluster_size`` on every kept row.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import apache_beam as beam
import numpy as np

from .connected_components import ConnectedComponents
from ..io.sinks import WriteJson
from .dedup_exact import is_earlier, keep_rank, rank_new, source_priorities
from .minhash import MinHasher, band_keys, estimated_jaccard, lsh_params
from ..records import Document
from ..stage import CORPUS, BuildContext, BundleTotals, Stage, StageContext, StageResult, apply_stage, \
    duplicate_key_failures

if TYPE_CHECKING:
    from ..schema import NearDedup as NearDedupSection

STAGE = "near_dedup"


class SignDoFn(beam.DoFn):
    def __init__(self, cfg: NearDedupSection, priorities: dict, bands: int, rows: int, with_earlier: bool = False):
        self.cfg = cfg
        self.priorities = priorities
        self.bands, self.rows = bands, rows
        self.with_earlier = with_earlier

    def setup(self):
        self._hasher = MinHasher(self.cfg.num_perm, self.cfg.seed, self.cfg.shingles)
        self._criteria = list(self.cfg.keep)

    def process(self, doc: Document):
        spec = self._hasher.shingle_spec(doc.text, doc.language)
        sig = self._hasher.signature_of_hashes(self._hasher.hashes(doc.text, spec))
        rank = keep_rank(doc, self._criteria, self.priorities)
        info = (rank_new(rank) if self.with_earlier else rank, doc.id, sig.tobytes())
        yield doc.key, info
        yield beam.pvalue.TaggedOutput("units", f"{spec.unit} {spec.n}-grams")
        for bk in band_keys(sig, self.bands, self.rows):
            yield beam.pvalue.TaggedOutput("bands", (bk, doc.key))


def bucket_edges(bucket):
    """A bucket of keys -> edges from its smallest key of this run to every other
    key (members of earlier runs included; a bucket of earlier members only has
    nothing to decide)."""
    _, keys = bucket
    low = None
    for k in keys:
        if (low is None or k < low) and not is_earlier(k):
            low = k
    if low is None:
        return
    for k in keys:
        if k != low:
            yield low, k


def earlier_bands(bands: int, rows: int):
    def fn(e):
        return [(bk, e.key) for bk in band_keys(_sig(e.signature), bands, rows)]
    return fn


def needed_earlier_info(joined):
    """(earlier key, {'info': [...], 'need': [...]}) -> (key, info) where an edge needs it."""
    key, g = joined
    infos = list(g["info"])
    if infos and any(True for _ in g["need"]):
        yield key, infos[0]


def _sig(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype=np.uint32)


def attach_first(joined):
    """(a, {'info': [(rank, id, sig)], 'edge': [b, ...]}) -> (b, (a, sig_a)) per edge."""
    a, g = joined
    infos = list(g["info"])
    if not infos:
        return
    sig_a = infos[0][2]
    for b in g["edge"]:
        yield b, (a, sig_a)


def verify_second(threshold: float):
    def fn(joined):
        b, g = joined
        infos = list(g["info"])
        if not infos:
            return
        sig_b = _sig(infos[0][2])
        for a, sig_a in g["half"]:
            if estimated_jaccard(_sig(sig_a), sig_b) >= threshold:
                yield a, b
    return fn


def members_by_label(joined):
    """(key, {'label': [l], 'info': [(rank, id, sig)]}) -> (label, (rank, key, id, sig))."""
    key, g = joined
    labels, infos = list(g["label"]), list(g["info"])
    if labels and infos:
        rank, doc_id, sig = infos[0]
        yield labels[0], (rank, key, doc_id, sig)


def decide_cluster(threshold: float):
    def fn(group):
        _, members = group
        best = None
        for m in members:  # pass 1: the copy to keep
            if best is None or (m[0], m[1]) < (best[0], best[1]):
                best = m
        rep_sig = _sig(best[3])
        size = sum(1 for m in members  # pass 2: how many copies the kept one stands for
                   if m[1] == best[1] or estimated_jaccard(_sig(m[3]), rep_sig) >= threshold)
        for m in members:  # pass 3: one decision per member (none for earlier runs': never rewritten)
            if is_earlier(m[1]):
                continue
            if m[1] == best[1]:
                yield m[1], ("keep", best[2], size)
            elif estimated_jaccard(_sig(m[3]), rep_sig) >= threshold:
                yield m[1], ("drop", best[2], size)
            else:  # joined only through a chain: not a duplicate of the kept copy
                yield m[1], ("keep", m[2], 1)
    return fn


class _ApplyNearDecision(beam.DoFn):
    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    def process(self, joined):
        key, g = joined
        docs, decisions = list(g["doc"]), list(g["decision"])
        yield from duplicate_key_failures(docs, self.ctx)
        doc = docs[0]
        if not decisions:
            yield doc.replace(dedup_cluster=doc.id, dedup_cluster_size=1)
            return
        verdict, kept_id, size = decisions[0]
        if verdict == "keep":
            yield doc.replace(dedup_cluster=kept_id, dedup_cluster_size=size)
        else:
            yield self.ctx.drop(doc, "near_duplicate", kept_id)


class SignOnlyDoFn(SignDoFn):
    """Benchmark mode (``near_dedup.decisions: false``): the signature and band
    work of every document, no dedup decision; documents pass through."""

    def process(self, doc: Document):
        sig = self._hasher.signature(doc.text, doc.language)
        band_keys(sig, self.bands, self.rows)
        yield doc


def near_stats(pairs, with_earlier: bool) -> dict:
    """The graph counts of ``near_dedup.json`` from per-bundle (name, n) totals."""
    names = ["candidate_edges", "verified_edges", "unconverged_nodes", "documents_in_components"]
    out = {name: 0 for name in names + (["earlier_documents"] if with_earlier else [])}
    units = {}
    for key, n in pairs:
        if isinstance(key, tuple):
            units[key[1]] = units.get(key[1], 0) + n
        else:
            out[key] += n
    return {**out, "documents_per_shingle_unit": dict(sorted(units.items()))}


class NearDedup(beam.PTransform):
    """Documents -> StageResult; with ``stats_path``, also writes a JSON of the
    LSH parameters and graph counts (candidate and verified edges, nodes left
    unconverged by connected components)."""

    def __init__(self, cfg: NearDedupSection, priorities: dict, excerpt_chars: int = 200, stats_path: str | None = None,
                 earlier=None):
        """``earlier``: a ``build.EarlierState`` (``--dedup-against``): members of
        earlier runs, which win against every new document and are never decided."""
        super().__init__()
        self.earlier = earlier
        self.stats_path = stats_path
        self.cfg = cfg
        self.priorities = priorities
        self.ctx = StageContext(STAGE, excerpt_chars)
        self.bands, self.rows = lsh_params(cfg.threshold, cfg.num_perm, cfg.false_positive_weight,
                                           cfg.false_negative_weight, cfg.bands, cfg.rows)

    def expand(self, docs):
        threshold = self.cfg.threshold
        if not self.cfg.decisions:
            kept = docs | "SignOnly" >> beam.ParDo(SignOnlyDoFn(self.cfg, self.priorities, self.bands, self.rows))
            return StageResult.passthrough(kept, "SignOnly")
        earlier = self.earlier.collection(docs.pipeline) if self.earlier is not None else None
        from ..progress import timed

        signed = docs | "Sign" >> beam.ParDo(timed(SignDoFn(self.cfg, self.priorities, self.bands, self.rows,
                                                            with_earlier=earlier is not None), STAGE)
                                             ).with_outputs("bands", "units", main="info")
        info, bands = signed.info, signed.bands
        if earlier is not None:  # earlier runs' documents join the buckets by band key
            bands = (bands, earlier | "EarlierBands" >> beam.FlatMap(earlier_bands(self.bands, self.rows))
                     ) | "BandsWithEarlier" >> beam.Flatten()
        candidates = (bands
                      | "GroupBuckets" >> beam.GroupByKey()
                      | "BucketEdges" >> beam.FlatMap(bucket_edges)
                      | "DistinctEdges" >> beam.Distinct())
        if earlier is not None:  # signatures of earlier documents only where an edge reaches them
            need = candidates | "EarlierEnds" >> beam.FlatMap(lambda e: [(e[1], 1)] if is_earlier(e[1]) else [])
            earlier_info = ({"info": earlier | "EarlierInfo" >> beam.Map(lambda e: (e.key, (e.rank, e.label,
                                                                                              e.signature))),
                             "need": need}
                            | "JoinEarlierInfo" >> beam.CoGroupByKey()
                            | "NeededEarlierInfo" >> beam.FlatMap(needed_earlier_info))
            info = (info, earlier_info) | "InfoWithEarlier" >> beam.Flatten()
        edges = candidates
        if self.cfg.verify:
            half = ({"info": info, "edge": edges}
                    | "JoinFirstEnd" >> beam.CoGroupByKey()
                    | "AttachFirst" >> beam.FlatMap(attach_first))
            edges = ({"info": info, "half": half}
                     | "JoinSecondEnd" >> beam.CoGroupByKey()
                     | "Verify" >> beam.FlatMap(verify_second(threshold)))
        labels, unconverged = edges | "Components" >> ConnectedComponents(self.cfg.max_rounds)
        decisions = ({"label": labels, "info": info}
                     | "JoinLabels" >> beam.CoGroupByKey()
                     | "MembersByLabel" >> beam.FlatMap(members_by_label)
                     | "GroupClusters" >> beam.GroupByKey()
                     | "Decide" >> beam.FlatMap(decide_cluster(threshold)))
        by_key = docs | "ByKey" >> beam.Map(lambda d: (d.key, d))
        result = apply_stage({"doc": by_key, "decision": decisions} | "JoinDecisions" >> beam.CoGroupByKey(),
                             "Apply", _ApplyNearDecision(self.ctx))
        if self.stats_path:
            params = {"num_perm": self.cfg.num_perm, "threshold": threshold, "bands": self.bands,
                      "rows": self.rows, "verify": self.cfg.verify, "max_rounds": self.cfg.max_rounds}
            path = self.stats_path

            def count(name):  # counted per bundle where the elements are: no global combine per stream
                return BundleTotals(lambda _: [(name, 1)])

            counts = [
                candidates | "TotalsCandidates" >> beam.ParDo(count("candidate_edges")),
                edges | "TotalsVerified" >> beam.ParDo(count("verified_edges")),
                unconverged,
                *([earlier | "TotalsEarlier" >> beam.ParDo(count("earlier_documents"))] if earlier is not None
                  else []),
                decisions | "TotalsDecisions" >> beam.ParDo(count("documents_in_components")),
                # documents per shingle unit (chosen by language label and script)
                signed.units | "TotalsUnits" >> beam.ParDo(BundleTotals(lambda unit: [(("unit", unit), 1)])),
            ]
            (counts | "StatsFlatten" >> beam.Flatten() | "StatsList" >> beam.combiners.ToList()
             | "StatsWrite" >> WriteJson(path, lambda pairs: {**params, **near_stats(pairs, earlier is not None)}))
        return result


class NearDedupStage(Stage):
    """MinHash LSH near-duplicates, one copy per cluster kept by the keep policy."""

    name = section = "near_dedup"
    header = "near"
    scope = CORPUS
    rows_decided = True  # dedup_corpus.decide makes its decisions in a run in units
    outputs = ("near_dedup.json",)  # LSH parameters and graph counts

    def why_off(self, cfg):
        return None if cfg.near_dedup.enabled else "disabled (near_dedup.enabled: false)"

    def transform(self, build: BuildContext) -> beam.PTransform:
        stats = f"{build.output_dir.rstrip('/')}/near_dedup.json" if build.output_dir else None
        return NearDedup(build.cfg.near_dedup, source_priorities(build.cfg), build.excerpt_chars, stats,
                         build.earlier)
