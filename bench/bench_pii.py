"""PII stage: accuracy on the planted set and cost against extraction on real pages.

  python bench/bench_pii.py [--shared ../shared/data] [--accuracy-only]

Accuracy: the planted set of tests/test_pii.py (valid entities in Chinese and
English sentences, and more decoys than entities: invalid check digits,
Luhn-invalid card-like numbers, ISBNs, dates, prices, order and tracking
numbers, private IPs, versions, comma-grouped statistics): recall per type
and the share of decoys altered.  Then the grouped set (``planted_grouped``): ID
numbers grouped 6-8-4 and 3-3-8-4, cards 4-4-4-4, 4-4-4-4-3 and 6-13, with
space, hyphen, dot, U+3000, no-break space or two spaces between groups, in
half- and full-width digits; landlines with bracketed area codes, split
subscriber numbers and extensions, +86 with spaces inside; and decoys in the
same groupings.  A grouped entity counts as found only when the redacted
sentence is exactly the expected one (the whole number, extension included,
is the placeholder and nothing else changed); recall per type and per form,
decoys altered per class.  Cost: every distinct real HTML page under
../shared/data is extracted (trafilatura, mdfs's settings) and redacted;
milliseconds per document for each, best of 3 passes.

Writes the ``pii`` section of bench/results.json and docs/PII.md's
"Measured" section.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))


def accuracy() -> dict:
    from test_pii import ALL_ON, planted

    from mdfs.pipeline.stages.pii import PiiRedactor

    r = PiiRedactor(ALL_ON)
    pos, neg = planted(200, seed=5)
    found, expected = {}, {}
    for text, want in pos:
        counts = r.redact(text)[1]
        for t, n in want.items():
            expected[t] = expected.get(t, 0) + n
            found[t] = found.get(t, 0) + min(counts.get(t, 0), n)
    altered = [t for t in neg if r.redact(t)[0] != t]
    return {"grouped": grouped(r), "entities": expected, "recall": {t: round(found.get(t, 0) / n, 4) for t, n in expected.items()},
            "decoys": len(neg), "decoys_altered": len(altered), "decoys_altered_share": round(len(altered) / len(neg), 4),
            "altered_examples": altered[:5]}


def grouped(r) -> dict:
    from test_pii import planted_grouped

    pos, neg = planted_grouped(200, seed=5)
    per_type, per_form, per_style, per_class = {}, {}, {}, {}
    for text, want, t, form, style in pos:
        ok = r.redact(text)[0] == want
        for key, table in ((t, per_type), (form, per_form), (style, per_style)):
            table.setdefault(key, [0, 0])
            table[key][0] += ok
            table[key][1] += 1
    altered = []
    for text, c in neg:
        per_class.setdefault(c, [0, 0])
        per_class[c][1] += 1
        if r.redact(text)[0] != text:
            per_class[c][0] += 1
            altered.append(text)
    return {"entities": {t: n for t, (_, n) in per_type.items()},
            "recall": {t: round(k / n, 4) for t, (k, n) in per_type.items()},
            "recall_per_form": {f: round(k / n, 4) for f, (k, n) in per_form.items()},
            "recall_per_separator": {f: round(k / n, 4) for f, (k, n) in per_style.items()},
            "decoys": len(neg), "decoys_altered": len(altered),
            "decoys_per_class": {c: n for c, (_, n) in per_class.items()},
            "altered_per_class": {c: k for c, (k, _) in per_class.items()}, "altered_examples": altered[:5]}


def cost(shared: Path) -> dict:
    from e2e import gather_pages

    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.extract_worker import extract_text, extraction_options
    from mdfs.pipeline.io.payload import charset_from_content_type, decode_html
    from mdfs.pipeline.stages.pii import PiiRedactor

    cfg = load_config()
    opts = extraction_options(cfg.extract)
    r = PiiRedactor(cfg.pii.types.model_dump(), cfg.pii.phone_regions)
    pages = gather_pages(shared)
    htmls = []
    for url, body, ctype in pages:
        try:
            htmls.append((url, decode_html(body, charset_from_content_type(ctype), 0.01).text))
        except UnicodeError:
            continue
    texts, t_extract = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        texts = [extract_text(h, u, opts) or "" for u, h in htmls]
        t_extract.append(time.perf_counter() - t0)
    t_pii, found = [], {}
    for _ in range(3):
        t0 = time.perf_counter()
        results = [r.redact(t) for t in texts]
        t_pii.append(time.perf_counter() - t0)
    for _, counts in results:
        for k, v in counts.items():
            found[k] = found.get(k, 0) + v
    n = len(htmls)
    ex, pi = min(t_extract) / n * 1000, min(t_pii) / n * 1000
    return {"pages": n, "extract_ms": round(ex, 3), "pii_ms": round(pi, 3), "pii_over_extract": round(pi / ex, 4),
            "replaced_on_real_pages": found, "mean_text_chars": int(sum(map(len, texts)) / max(n, 1)),
            "grouped_in_real_pages": in_pages(r, texts)}


def in_pages(r, texts: list[str]) -> dict:
    """The grouped set planted into the real pages' text: each sentence goes in on a line of its own
    at a random line break of a page (round robin); found = the page redacts to what the two halves
    redact to with the expected sentence between them, so nothing else on the page changes either."""
    import random

    from test_pii import planted_grouped

    pos, neg = planted_grouped(200, seed=5)
    rnd = random.Random(3)
    pages = [t for t in texts if "\n" in t]
    found, altered = {}, 0
    for i, (sentence, want) in enumerate([(p[0], p[1]) for p in pos] + [(d[0], d[0]) for d in neg]):
        page = pages[i % len(pages)]
        k = rnd.choice([j for j, c in enumerate(page) if c == "\n"]) + 1
        left, right = page[:k], page[k:]
        ok = r.redact(left + sentence + "\n" + right)[0] == r.redact(left)[0] + want + "\n" + r.redact(right)[0]
        if i < len(pos):
            t = pos[i][2]
            found.setdefault(t, [0, 0])
            found[t][0] += ok
            found[t][1] += 1
        else:
            altered += not ok
    return {"pages": len(pages), "entities": {t: n for t, (_, n) in found.items()},
            "recall": {t: round(k / n, 4) for t, (k, n) in found.items()}, "decoys": len(neg), "decoys_altered": altered}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--accuracy-only", action="store_true", help="print the planted-set figures; write nothing")
    args = ap.parse_args(argv)
    from results import merge_section

    if not args.accuracy_only and not (args.shared / "html").is_dir() and not (args.shared / "warc").is_dir():
        ap.exit(2, f"bench_pii: no html/ or warc/ under {args.shared} (pass --shared DIR)\n")
    if args.accuracy_only:
        print(json.dumps(accuracy(), indent=1, ensure_ascii=False))
        return
    res = {"date": datetime.date.today().isoformat(), "accuracy": accuracy(), "cost": cost(args.shared)}
    merge_section("pii", res)
    write_doc(res)
    print(json.dumps(res, indent=1, ensure_ascii=False))


def write_doc(r: dict) -> None:
    doc = REPO / "docs" / "PII.md"
    text = doc.read_text(encoding="utf-8")
    a, c = r["accuracy"], r["cost"]
    L = ["## Measured", "", f"`python bench/bench_pii.py` on {r['date']}.", "",
         f"**Planted set** (tests/test_pii.py's generator, 200 rounds): {sum(a['entities'].values()):,} entities, "
         f"{a['decoys']:,} decoys.", "", "| type | entities | recall |", "|---|---:|---:|"]
    for t, n in sorted(a["entities"].items()):
        L.append(f"| {t} | {n} | {a['recall'][t]:.2%} |")
    g = a["grouped"]
    L += ["", f"Decoys altered: {a['decoys_altered']} of {a['decoys']} ({a['decoys_altered_share']:.2%}; target <= 1 %).",
          "", f"**Grouped set** (`planted_grouped`, 200 rounds; found = the redacted sentence is exactly the expected "
          f"one): {sum(g['entities'].values()):,} entities, {g['decoys']:,} decoys in the same groupings.", "",
          "| type | entities | recall |", "|---|---:|---:|"]
    L += [f"| {t} | {n} | {g['recall'][t]:.2%} |" for t, n in sorted(g["entities"].items())]
    L += ["", "| form | recall |", "|---|---:|"] + [f"| {f} | {v:.2%} |" for f, v in g["recall_per_form"].items()]
    L += ["", "| separator, width of digits, hyphen and dot (the entities of the rounds that use it) | recall |", "|---|---:|"]
    L += [f"| {f} | {v:.2%} |" for f, v in g["recall_per_separator"].items()]
    L += ["", "| decoy class | decoys | altered |", "|---|---:|---:|"]
    L += [f"| {c} | {n} | {g['altered_per_class'][c]} |" for c, n in g["decoys_per_class"].items()]
    L += ["", f"Grouped decoys altered: {g['decoys_altered']} of {g['decoys']} (target 0; recall target >= 98 %).",
          "", "The same grouped set planted into the real pages below (each sentence on a line of its own at a random "
          "line break; found = the page redacts to what its two halves redact to with the expected sentence between "
          "them): " + ", ".join(f"{t} {v:.2%}" for t, v in sorted(c["grouped_in_real_pages"]["recall"].items()))
          + f"; decoys altered {c['grouped_in_real_pages']['decoys_altered']} of {c['grouped_in_real_pages']['decoys']}.",
          "", f"**Cost** on {c['pages']} real pages (mean {c['mean_text_chars']:,} characters of main text): "
          f"redaction {c['pii_ms']} ms per document against {c['extract_ms']} ms of extraction, "
          f"**{c['pii_over_extract']:.2%}** of extraction (target <= 5 %). Found on those pages: "
          + (", ".join(f"{k} {v}" for k, v in sorted(c["replaced_on_real_pages"].items())) or "nothing") + "."]
    head = text.split("## Measured")[0].rstrip()
    doc.write_text(head + "\n\n" + "\n".join(L) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
