"""``report/index.html``: the run's report as one static page that opens from
disk: the outcome table, the plots, the training-mix table, the drop reasons
with a few sampled examples each, decontamination and human review where
present.  Rendered with Jinja2's autoescaping, so page text (excerpts of
dropped documents, URLs, ids) is always text: ``<script>`` and
``onerror=`` arrive as characters, links are never made from page URLs,
and bidirectional control characters are shown as visible ``[U+202E]``
markers.  The page carries a Content-Security-Policy that forbids scripts."""
from __future__ import annotations

import re

BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
EXAMPLES_PER_REASON = 3

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self'; style-src 'unsafe-inline'">
<title>mdfs report</title>
<style>
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; max-width: 70em; margin: 1em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; } td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; }
td, th, code, p { overflow-wrap: anywhere; } /* a 5,000-character URL wraps instead of widening the page */
table.reasons { table-layout: fixed; width: 100%; } table.reasons col.ex { width: 60%; }
td.n { text-align: right; }
.ex { white-space: pre-wrap; font-size: 0.85em; color: #444; margin: 0 0 0.6em; padding: 0 0 0.4em; border-bottom: 1px dashed #ccc; }
.ex:last-child { border-bottom: none; margin-bottom: 0; } .ex code { display: block; color: #555; }
img { max-width: 100%; } .bad { color: #a00; font-weight: bold; }
</style></head><body>
<h1>mdfs report</h1>
<p>Run: <code>{{ run }}</code>. Tokens counted with <code>{{ rep.tokenizer }}</code>.</p>

<h2>What became of each source's records</h2>
<table><tr><th>source</th><th>read</th><th>kept</th><th>dropped</th><th>failed</th><th>read = kept + dropped + failed</th></tr>
{% for s, d in rep.sources.items() %}<tr><td>{{ s }}</td><td class="n">{{ d.funnel.read }}</td><td class="n">{{ d.funnel.kept }}</td>
<td class="n">{{ d.funnel.dropped }}</td><td class="n">{{ d.funnel.failed }}</td>
<td>{% if d.funnel.read == d.funnel.kept + d.funnel.dropped + d.funnel.failed %}yes
{% else %}<span class="bad">NO</span>{% endif %}</td></tr>
{% endfor %}</table>

{% for p in plots %}<p><img src="{{ p }}" alt="{{ p }}"></p>{% endfor %}

<h2>Training mix (GPT-3 Table 2.2 style)</h2>
<p>Budget: {{ "{:,.0f}".format(rep.mix.budget_tokens) }} tokens ({{ rep.mix.budget_basis }}).</p>
<table><tr><th>source</th><th>tokens</th><th>weight</th><th>epochs at budget</th></tr>
{% for r in rep.mix.rows %}<tr><td>{{ r.source }}</td><td class="n">{{ "{:,.0f}".format(r.tokens) }}</td>
<td class="n">{{ "{:.1%}".format(r.weight) }}</td><td class="n">{{ "{:.2f}".format(r.epochs) }}</td></tr>{% endfor %}
</table>
{% for w in rep.mix.warnings %}<p class="bad">warning: {{ w }}</p>{% endfor %}

<h2>Why documents were dropped, with examples</h2>
<table class="reasons"><col><col><col style="width: 7em"><col class="ex">
<tr><th>source</th><th>stage/reason</th><th>documents</th><th>examples (excerpt, detail)</th></tr>
{% for row in reasons %}<tr><td>{{ row.source }}</td><td>{{ row.reason }}</td><td class="n">{{ row.count }}</td><td>
{% for ex in row.examples %}<div class="ex"><b>{{ ex.id }}</b>{% if ex.detail %} ({{ ex.detail }}){% endif %}
{% if ex.url %} <code>{{ ex.url }}</code>{% endif %}
{{ ex.excerpt }}</div>{% endfor %}</td></tr>
{% endfor %}</table>

{% if decontamination %}<h2>Evaluation sets found in the corpus</h2>
<table><tr><th>set</th><th>action</th><th>items</th><th>too short</th><th>found</th><th>found per source</th></tr>
{% for name, s in decontamination.sets.items() %}<tr><td>{{ name }}</td><td>{{ s.action }}</td><td class="n">{{ s['items'] }}</td>
<td class="n">{{ s.too_short|length }}</td><td class="n">{{ s.found_items_total }}</td>
<td>{% for src, n in s.found_items.items() %}{{ src }} {{ n }} {% endfor %}</td></tr>{% endfor %}</table>{% endif %}

{% if review %}<h2>Human review</h2>
<p>{{ review.judgements }} judgements by {{ review.reviewers|join(", ") }} on a sample of {{ review.sample_items }}.
Precision = correct / (correct + wrong), with its 95 % Wilson interval; "in run" = documents the rule dropped
(the band held) in the run.</p>
{% for title, first, rows in [("Dropped documents", "stage/reason", review.drops),
                              ("Kept documents (correct = rightly kept)", "score band", review.kept)] %}{% if rows %}
<h3>{{ title }}</h3>
<table><tr><th>{{ first }}</th><th>in run</th><th>judged</th><th>correct</th><th>wrong</th><th>unsure</th>
<th>precision</th><th>95 % CI</th></tr>
{% for k, d in rows.items() %}<tr><td>{{ k }}</td><td class="n">{{ "{:,}".format(d.in_run or 0) }}</td><td class="n">{{ d.judged }}</td>
<td class="n">{{ d.correct }}</td><td class="n">{{ d.wrong }}</td><td class="n">{{ d.unsure }}</td>
<td class="n">{% if d.precision is not none %}{{ "{:.2f}".format(d.precision) }}{% else %}-{% endif %}</td>
<td>{% if d.ci95 %}{{ "{:.2f}".format(d.ci95[0]) }}-{{ "{:.2f}".format(d.ci95[1]) }}{% else %}-{% endif %}</td></tr>{% endfor %}
</table>{% endif %}{% endfor %}
{% for line in review_notes %}<p{% if line.startswith("rules whose") %} class="bad"{% endif %}>{{ line }}</p>{% endfor %}
{% endif %}
</body></html>
"""


def visible_bidi(text):
    if text is None:
        return None
    return BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", str(text))


def excerpt(text: str | None, whole_length: int | None) -> str | None:
    """A stored excerpt for reading: when it is shorter than the document, cut back to the
    last space in its final 20 characters (text with spaces; CJK text has none and keeps
    every character) and end it with an ellipsis, so it never ends mid-word unmarked."""
    if not text or not whole_length or whole_length <= len(text):
        return text
    cut = text.rstrip()
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= len(cut) - 20 and space > 0:
        cut = cut[:space].rstrip()
    return cut + " \u2026"


def _examples(root: str, per_reason: int = EXAMPLES_PER_REASON) -> dict:
    """(source, stage/reason) -> up to ``per_reason`` dropped rows (the first met)."""
    import os

    import pyarrow.dataset as ds

    out: dict = {}
    folder = f"{root}/dropped"
    if not os.path.isdir(folder):
        return out
    for batch in ds.dataset(folder, format="parquet").to_batches(
            columns=["id", "source", "stage", "reason", "detail", "url", "excerpt", "char_count"]):
        for r in batch.to_pylist():
            key = (r["source"], f"{r['stage']}/{r['reason']}")
            lst = out.setdefault(key, [])
            if len(lst) < per_reason:
                r["excerpt"] = excerpt(r["excerpt"], r["char_count"])
                lst.append({k: visible_bidi(r[k]) for k in ("id", "detail", "url", "excerpt")})
    return out


def write_html(root: str, rep: dict, plots: list[str]) -> str:
    from jinja2 import Environment

    examples = _examples(root)
    reasons = [{"source": s, "reason": k, "count": n, "examples": examples.get((s, k), [])}
               for s, d in rep["sources"].items() for k, n in sorted(d["dropped_by_reason"].items(),
                                                                      key=lambda kv: -kv[1])]
    env = Environment(autoescape=True)
    notes = []
    if rep.get("review"):
        from .review_summary import notes as review_notes

        notes = review_notes(rep["review"])
    # the review summary and decontamination.json are in ``rep`` already (report.build)
    html = env.from_string(TEMPLATE).render(run=root, rep=rep, plots=plots, reasons=reasons, review=rep.get("review"),
                                            decontamination=rep.get("decontamination"), review_notes=notes)
    path = f"{root}/report/index.html"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(html)
    return path
