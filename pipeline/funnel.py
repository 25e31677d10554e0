"""The per-source funnel, counted from the collections themselves.

Counts are a ``CombinePerKey(sum)`` over small keys ``(source, kind, ...)``,
then one ``CombineGlobally`` of the few hundred totals into ``funnel.json``.
This is exact on every runner (Beam counters may report only committed values).
"""
from __future__ import annotations

import sys

import apache_beam as beam

from .sinks import WriteJson


def build_funnel(totals: list, stage_order: list[str], source_order: list[str]) -> dict:
    """``totals``: [((source, kind, *rest), n), ...] -> the funnel dict."""
    sources: dict[str, dict] = {}

    def entry(src):
        return sources.setdefault(src, {
            "read": 0, "kept": 0, "dropped": 0, "failed": 0, "skipped_records": {},
            "unknown_size_stretches": 0, "decoded_with_replacement": 0, "replacement_chars_removed": 0,
            "passed_unscored": {},
            "after_stage": {s: 0 for s in stage_order}, "dropped_by_reason": {}, "failed_by_error": {}})

    for s in source_order:
        entry(s)
    for key, n in totals:
        src, kind, rest = key[0], key[1], key[2:]
        e = entry(src)
        if kind == "read":
            e["read"] += n
        elif kind == "kept":
            e["kept"] += n
        elif kind == "skipped":
            e["skipped_records"][rest[0]] = e["skipped_records"].get(rest[0], 0) + n
        elif kind in ("unknown_size_stretches", "decoded_with_replacement", "replacement_chars_removed"):
            e[kind] += n
        elif kind == "passed_unscored":
            e[kind][rest[0]] = e[kind].get(rest[0], 0) + n
        elif kind == "after":
            e["after_stage"][rest[0]] = e["after_stage"].get(rest[0], 0) + n
        elif kind == "dropped":
            e["dropped"] += n
            k = f"{rest[0]}/{rest[1]}"
            e["dropped_by_reason"][k] = e["dropped_by_reason"].get(k, 0) + n
        elif kind == "failed":
            e["failed"] += n
            k = f"{rest[0]}/{rest[1]}"
            e["failed_by_error"][k] = e["failed_by_error"].get(k, 0) + n
    for e in sources.values():
        e["dropped_by_reason"] = dict(sorted(e["dropped_by_reason"].items()))
        e["failed_by_error"] = dict(sorted(e["failed_by_error"].items()))
        e["invariant_ok"] = e["read"] == e["kept"] + e["dropped"] + e["failed"]
    total = {k: sum(e[k] for e in sources.values()) for k in ("read", "kept", "dropped", "failed", "unknown_size_stretches")}
    total["invariant_ok"] = all(e["invariant_ok"] for e in sources.values())
    return {"stages": stage_order, "sources": dict(sorted(sources.items())), "total": total}


class WriteFunnel(beam.PTransform):
    """Flattened (key, 1) events -> ``funnel.json`` at ``path``."""

    def __init__(self, path: str, stage_order: list[str], source_order: list[str]):
        super().__init__()
        self.path = path
        self.stage_order = stage_order
        self.source_order = source_order

    def expand(self, events):
        path, stages, sources = self.path, self.stage_order, self.source_order
        return (events
                | "Sum" >> beam.CombinePerKey(sum)
                | "Gather" >> beam.combiners.ToList()  # a few hundred (key, n) pairs
                | "Write" >> WriteJson(path, lambda totals: build_funnel(totals, stages, sources)))


def render_funnel(funnel: dict, console=None) -> None:
    """Print the funnel as terminal tables (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 132)
    stages = funnel["stages"]
    t = Table(title="mdfs funnel: documents per source (read, left after each stage, outcome)")
    for col in ["source", "read", *stages, "kept", "dropped", "failed", "skipped", "read=k+d+f"]:
        t.add_column(col, justify="left" if col == "source" else "right")
    for name, e in funnel["sources"].items():
        t.add_row(name, str(e["read"]), *[str(e["after_stage"].get(s, 0)) for s in stages], str(e["kept"]),
                  str(e["dropped"]), str(e["failed"]), str(sum(e["skipped_records"].values())),
                  "[green]yes[/]" if e["invariant_ok"] else "[red]NO[/]")
    tot = funnel["total"]
    t.add_row("[b]total[/]", str(tot["read"]), *[""] * len(stages), str(tot["kept"]), str(tot["dropped"]),
              str(tot["failed"]), "", "[green]yes[/]" if tot["invariant_ok"] else "[red]NO[/]")
    console.print(t)
    r = Table(title="why documents were dropped or failed (stage/reason)")
    r.add_column("source")
    r.add_column("outcome")
    r.add_column("stage/reason")
    r.add_column("count", justify="right")
    for name, e in funnel["sources"].items():
        for k, n in e["dropped_by_reason"].items():
            r.add_row(name, "dropped", k, str(n))
        for k, n in e["failed_by_error"].items():
            r.add_row(name, "[red]failed[/]", k, str(n))
    if r.row_count:
        console.print(r)
    for name, why in (funnel.get("skipped_stages") or {}).items():
        console.print(f"[yellow]stage {name} was skipped[/]: {why}")
