"""The per-source funnel, counted from the collections themselves.

Counts are a ``CombinePerKey(sum)`` over small keys ``(source, kind, ...)``,
then one ``CombineGlobally`` of the few hundred totals into ``funnel.json``.
This is exact on every runner (Beam counters may report only committed values).
"""
from __future__ import annotations

import sys

import apache_beam as beam

from .io.sinks import WriteJson


# what the read stage (the source, not a declared stage) adds to every entry: event kind -> (entry, shape)
READ_FIELDS = {"skipped": ("skipped_records", "by_name"), "unknown_size_stretches": ("unknown_size_stretches", "count")}


def build_funnel(totals: list, stage_order: list[str], source_order: list[str], fields: dict | None = None) -> dict:
    """``totals``: [((source, kind, *rest), n), ...] -> the funnel dict.
    ``fields``: the declared stages' funnel entries ({kind: "count" | "by_name"};
    all declared stages' when None), filled from events of that kind."""
    if fields is None:
        from .stages import funnel_fields

        fields = funnel_fields()
    shapes = {**READ_FIELDS, **{k: (k, shape) for k, shape in fields.items()}}
    sources: dict[str, dict] = {}

    def entry(src):
        if src not in sources:
            sources[src] = {"read": 0, "kept": 0, "dropped": 0, "failed": 0,
                            **{key: ({} if shape == "by_name" else 0) for key, shape in shapes.values()},
                            "after_stage": {s: 0 for s in stage_order}, "dropped_by_reason": {},
                            "failed_by_error": {}}
        return sources[src]

    for s in source_order:
        entry(s)
    for key, n in totals:
        src, kind, rest = key[0], key[1], key[2:]
        e = entry(src)
        if kind in ("read", "kept"):
            e[kind] += n
        elif kind in shapes:
            field, shape = shapes[kind]
            if shape == "by_name":
                e[field][rest[0]] = e[field].get(rest[0], 0) + n
            else:
                e[field] += n
        elif kind == "after":
            e["after_stage"][rest[0]] = e["after_stage"].get(rest[0], 0) + n
        elif kind in ("dropped", "failed"):
            e[kind] += n
            by = e["dropped_by_reason" if kind == "dropped" else "failed_by_error"]
            k = f"{rest[0]}/{rest[1]}"
            by[k] = by.get(k, 0) + n
        else:
            raise ValueError(f"funnel event of an undeclared kind {kind!r} (declare it in the stage's funnel_fields)")
    for e in sources.values():
        e["dropped_by_reason"] = dict(sorted(e["dropped_by_reason"].items()))
        e["failed_by_error"] = dict(sorted(e["failed_by_error"].items()))
        e["invariant_ok"] = e["read"] == e["kept"] + e["dropped"] + e["failed"]
    total = {k: sum(e[k] for e in sources.values()) for k in ("read", "kept", "dropped", "failed", "unknown_size_stretches")}
    total["invariant_ok"] = all(e["invariant_ok"] for e in sources.values())
    return {"stages": stage_order, "sources": dict(sorted(sources.items())), "total": total}


def totals_json(totals: list) -> dict:
    """Summed events as JSON (``WriteFunnel(raw=True)``); ``totals_from_json`` reads them back."""
    return {"totals": [[list(key), n] for key, n in totals]}


def totals_from_json(obj: dict) -> list:
    return [(tuple(key), n) for key, n in obj["totals"]]


class WriteFunnel(beam.PTransform):
    """Flattened (key, 1) events -> ``funnel.json`` at ``path``; with ``raw``, the
    summed events themselves (``totals_json``): several jobs' totals, added up,
    give ``build_funnel`` what one job over all their records gives it."""

    def __init__(self, path: str, stage_order: list[str], source_order: list[str], fields: dict | None = None,
                 raw: bool = False):
        super().__init__()
        self.path = path
        self.raw = raw
        self.stage_order = stage_order
        self.source_order = source_order
        self.fields = fields

    def expand(self, events):
        path, stages, sources, fields = self.path, self.stage_order, self.source_order, self.fields
        build = totals_json if self.raw else (lambda totals: build_funnel(totals, stages, sources, fields))
        return (events
                | "Sum" >> beam.CombinePerKey(sum)
                | "Gather" >> beam.combiners.ToList()  # a few hundred (key, n) pairs
                | "Write" >> WriteJson(path, build))




def stage_headers() -> dict[str, str]:
    """Short stage headers (``Stage.header``): every stage column fits 80 columns
    beside a 16-character source name (common_crawl_wet), never broken mid-word."""
    from .stages import STAGES

    return {s.name: s.header for s in STAGES if s.header}

SOURCE_MIN_WIDTH = 20


def terminal_console():
    """A console as wide as the terminal (at least 80 columns); 100 when not a terminal."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 100, soft_wrap=False)


def render_funnel(funnel: dict, console=None) -> None:
    """Print the funnel as terminal tables that fit 80 columns: outcomes per
    source, documents left after each stage, then the reasons.  Source names
    are never shortened (they wrap), so two sources with a common prefix stay
    apart; each column is explained once under its table."""
    from rich.table import Table

    console = console or terminal_console()
    stages = funnel["stages"]

    t = Table(title="mdfs funnel: what became of each source's records", title_justify="left")
    t.add_column("source", overflow="fold", min_width=8)
    for col in ("read", "kept", "dropped", "failed", "ok", "non-doc"):
        t.add_column(col, justify="right", no_wrap=True)
    for name, e in funnel["sources"].items():
        t.add_row(name, str(e["read"]), str(e["kept"]), str(e["dropped"]), str(e["failed"]),
                  "[green]yes[/]" if e["invariant_ok"] else "[red]NO[/]", str(sum(e["skipped_records"].values())))
    tot = funnel["total"]
    t.add_row("[b]total[/]", str(tot["read"]), str(tot["kept"]), str(tot["dropped"]), str(tot["failed"]),
              "[green]yes[/]" if tot["invariant_ok"] else "[red]NO[/]", "")
    t.caption = ("read: records the source offered; ok: read = kept + dropped + failed; non-doc: WARC request, "
                 "metadata and warcinfo records, which never carry a document (not a skipped stage)")
    t.caption_justify = "left"
    console.print(t)
    if stages:
        headers = stage_headers()
        s = Table(title="documents left after each stage", title_justify="left")
        longest = max((len(n) for n in funnel["sources"]), default=8)
        s.add_column("source", overflow="fold", min_width=min(max(longest, 8), SOURCE_MIN_WIDTH))
        for stage in stages:
            s.add_column(headers.get(stage, stage.replace("_", " ")), justify="right", no_wrap=True)
        for name, e in funnel["sources"].items():
            s.add_row(name, *[str(e["after_stage"].get(st, 0)) for st in stages])
        short = [f"{headers[st]}: {st.replace('_', ' ')}" for st in stages if st in headers]
        s.caption, s.caption_justify = ("; ".join(short) if short else None), "left"
        console.print(s)
    r = Table(title="why records were dropped or failed", title_justify="left")
    r.add_column("source", overflow="fold", min_width=8)
    r.add_column("outcome", no_wrap=True)
    r.add_column("stage/reason", overflow="fold")
    r.add_column("count", justify="right", no_wrap=True)
    for name, e in funnel["sources"].items():
        for k, n in e["dropped_by_reason"].items():
            r.add_row(name, "dropped", k, str(n))
        for k, n in e["failed_by_error"].items():
            r.add_row(name, "[red]failed[/]", k, str(n))
    if r.row_count:
        console.print(r)
    for name, e in funnel["sources"].items():
        by = e.get("fine_decided_by") or {}
        if by:
            console.print(f"fine stage, {name}: fastText decided {by.get('fasttext', 0)} documents alone, "
                          f"BERT {by.get('bert', 0)} (the cascade; kept and dropped)")
    for name, why in (funnel.get("skipped_stages") or {}).items():
        console.print(f"[yellow]stage {name} was skipped[/]: {why}")
