"""How safe is the language gate?  Every real page we have, gate vs. the
post-extraction language ID.

  python bench/eval_language_gate.py [--shared ../shared/data]

Pages: every distinct HTML page under ../shared/data (magic-html,
trafilatura-eval, and the HTML responses of the sample WARCs; see
bench/e2e.py ``gather_pages``).  For each page: Common Crawl's CLD2 verdict
computed the way Common Crawl does (bench/ccmeta.py), the cheap text and its
fastText verdict (pipeline/io/language_gate.py), and the decision mdfs takes
after extraction (trafilatura, then the coarse stage's language ID: the
language must be kept and score at least ``min_language_score``).  A gate
drop is a *loss* when the post-extraction language ID would have kept the
page.  Two tasks: keep Chinese (``[zh]``) and the default ``[zh, en]``.
Each gate parameter is swept; the defaults must lose no Chinese page and at
most 0.5 % of all pages.  Also checks bench/ccmeta.py against every real
Common Crawl metadata record in the sample WARCs.

Writes docs/LANGUAGE_GATE.md and the ``language_gate`` section of
bench/results.json (bench/results.py merges sections).
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

SHARES = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]
CONFIDENCES = [0.5, 0.7, 0.8, 0.9, 0.95]
MAX_BYTES = [16384, 65536]
TASKS = {"zh": ["zh"], "zh+en": ["zh", "en"]}


def real_cc_agreement(shared: Path) -> dict:
    """bench/ccmeta.py against Common Crawl's own metadata records."""
    from ccmeta import cld2_verdict
    from warcio.archiveiterator import ArchiveIterator

    rows = []
    for name in ("cc-main-2020-34_sample_resiliparse.warc.gz", "cc-main-2024-22_whirlwind.warc.gz"):
        responses = {}
        with open(shared / "warc" / name, "rb") as fh:
            for r in ArchiveIterator(fh):
                if r.rec_type == "response":
                    ctype = r.http_headers.get_header("Content-Type") if r.http_headers else None
                    responses[r.rec_headers.get_header("WARC-Record-ID")] = (
                        r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read(), ctype)
                elif r.rec_type == "metadata":
                    body = r.content_stream().read().decode("utf-8", "replace")
                    line = next((x for x in body.splitlines() if x.startswith("languages-cld2:")), None)
                    resp = responses.get(r.rec_headers.get_header("WARC-Concurrent-To"))
                    if line is None or resp is None:
                        continue
                    real = json.loads(line.split(":", 1)[1])
                    from mdfs.pipeline.io.payload import charset_from_content_type

                    ours = cld2_verdict(resp[1], charset_from_content_type(resp[2] or ""), resp[0])
                    rows.append((real, ours))
    top_same = sum(1 for real, ours in rows if ours and real["languages"] and ours["languages"]
                   and real["languages"][0]["code-iso-639-3"] == ours["languages"][0]["code-iso-639-3"])
    bytes_same = sum(1 for real, ours in rows if ours and real["text-bytes"] == ours["text-bytes"])
    rel_same = sum(1 for real, ours in rows if ours and real["reliable"] == ours["reliable"])
    diffs = [abs(real["languages"][0]["text-covered"] - ours["languages"][0]["text-covered"])
             for real, ours in rows if ours and real["languages"] and ours["languages"]
             and real["languages"][0]["code-iso-639-3"] == ours["languages"][0]["code-iso-639-3"]]
    return {"records": len(rows), "same_top_language": top_same, "same_text_bytes": bytes_same,
            "same_reliable": rel_same, "max_top_share_difference": round(max(diffs, default=0.0), 3)}


def page_facts(pages) -> list[dict]:
    from ccmeta import cld2_verdict

    from mdfs.classifiers.langid import DEFAULT_LID_MODEL, FastTextLangID, fasttext_predict
    from mdfs.pipeline.io import language_gate as lg
    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.stages.extract_worker import extract_text, extraction_options
    from mdfs.pipeline.io.payload import charset_from_content_type, decode_html

    cfg = load_config()
    opts = extraction_options(cfg.extract)
    lid_doc = FastTextLangID(DEFAULT_LID_MODEL, cfg.coarse.langid.max_chars)
    model = FastTextLangID(DEFAULT_LID_MODEL, lg.CHEAP_TEXT_MAX_CHARS).model
    facts, t_cheap, t_extract = [], 0.0, 0.0
    for url, body, ctype in pages:
        charset = charset_from_content_type(ctype)
        verdict = cld2_verdict(body, charset, url)
        cld2 = lg.parse_cc_metadata(b"languages-cld2: " + json.dumps(verdict).encode()) if verdict else None
        cheap = {}
        for mb in MAX_BYTES:
            t0 = time.perf_counter()
            text = lg.cheap_text(body, charset, mb)
            ranked = fasttext_predict(model, text[:lg.CHEAP_TEXT_MAX_CHARS], 3) if text else []
            t_cheap += time.perf_counter() - t0
            cheap[mb] = (len(text), ranked)
        t0 = time.perf_counter()
        try:
            main = extract_text(decode_html(body, charset, 0.01).text, url, opts) or ""
        except Exception:  # noqa: BLE001 - a page trafilatura cannot read is not kept either way
            main = ""
        t_extract += time.perf_counter() - t0
        lang, score = lid_doc.predict(main) if main.strip() else ("und", 0.0)
        facts.append({"url": url, "cld2": cld2, "cheap": cheap, "after": (lang, score), "has_text": bool(main.strip())})
    n = max(len(pages), 1)
    return facts, {"cheap_ms": round(t_cheap / n / len(MAX_BYTES) * 1000, 3), "extract_ms": round(t_extract / n * 1000, 2)}


def decide(f: dict, wanted: frozenset, mode: str, share: float, conf: float, mb: int):
    """(gate keeps?, evidence) for one page; mode: metadata | fasttext | metadata+fasttext."""
    from mdfs.pipeline.io import language_gate as lg

    d = None
    if mode in ("metadata", "metadata+fasttext"):
        d = lg.decide_on_cld2(f["cld2"], wanted, share)
    if d is None and mode in ("fasttext", "metadata+fasttext"):
        length, ranked = f["cheap"][mb]
        if length >= lg.MIN_CHEAP_TEXT_CHARS and ranked:
            prob, label = ranked[0]
            keep = lg.iso639_3(label) in wanted or prob < conf
            d = lg.Decision(keep, "fasttext")
    return (True, "none") if d is None else (d.keep, d.evidence)


def evaluate(facts, languages, mode, share, conf, mb, min_score=0.5) -> dict:
    from mdfs.pipeline.io import language_gate as lg

    wanted = lg.wanted_iso3(languages)
    drops = losses = zh_losses = zh_kept_after = 0
    lost = []
    for f in facts:
        lang, score = f["after"]
        kept_after = f["has_text"] and lang in languages and score >= min_score
        zh_kept_after += kept_after and lang == "zh"
        keep, _ = decide(f, wanted, mode, share, conf, mb)
        if not keep:
            drops += 1
            if kept_after:
                losses += 1
                zh_losses += lang == "zh"
                lost.append(f"{f['url']} ({lang} {score:.2f})")
    n = len(facts)
    return {"pages": n, "gate_drops": drops, "losses": losses, "loss_share": round(losses / n, 4),
            "zh_losses": zh_losses, "zh_kept_after_extraction": zh_kept_after, "lost": lost[:10]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    from e2e import gather_pages
    from results import merge_section

    from mdfs.pipeline.config import load_config

    defaults = load_config().read
    pages = gather_pages(args.shared)
    facts, cost = page_facts(pages)
    res = {"date": datetime.date.today().isoformat(), "pages": len(pages), "cost_ms_per_page": cost,
           "cc_metadata_emulation": real_cc_agreement(args.shared), "defaults": {}, "sweep": {}}
    d_share, d_conf, d_mb = (defaults.language_gate_min_share, defaults.language_gate_min_confidence,
                             defaults.language_gate_max_bytes)
    for task, langs in TASKS.items():
        res["defaults"][task] = {mode: evaluate(facts, langs, mode, d_share, d_conf, d_mb)
                                 for mode in ("metadata", "fasttext", "metadata+fasttext")}
        sweep = []
        for share in SHARES:
            r = evaluate(facts, langs, "metadata", share, d_conf, d_mb)
            sweep.append({"mode": "metadata", "min_share": share, **{k: r[k] for k in ("gate_drops", "losses", "zh_losses")}})
        for conf in CONFIDENCES:
            for mb in MAX_BYTES:
                r = evaluate(facts, langs, "fasttext", d_share, conf, mb)
                sweep.append({"mode": "fasttext", "min_confidence": conf, "max_bytes": mb,
                              **{k: r[k] for k in ("gate_drops", "losses", "zh_losses")}})
        res["sweep"][task] = sweep
    merge_section("language_gate", res)
    write_doc(res, defaults)
    print(json.dumps(res["defaults"], indent=1)[:3000])


def write_doc(res: dict, defaults: dict) -> None:
    emu = res["cc_metadata_emulation"]
    L = ["# The language gate, measured", "",
         "Generated by `python bench/eval_language_gate.py` on " + res["date"] + " (needs `pip install -e '.[bench]'` "
         "for pycld2). The gate itself is described in `pipeline/io/language_gate.py` and the README.", "",
         f"**Pages:** {res['pages']} distinct real HTML pages (every one under ../shared/data: magic-html, "
         "trafilatura-eval, the HTML responses of the sample WARCs). For each, the gate's decision is compared "
         "with what mdfs decides after extraction (trafilatura, then the coarse stage's fastText language ID: "
         "language kept and score >= `min_language_score` 0.5). A gate drop of a page that the post-extraction "
         "language ID would keep is a **loss**.", "",
         f"**Common Crawl's verdicts, emulated.** Pages without a Common Crawl metadata record get one from "
         f"`bench/ccmeta.py` (pycld2, HTML mode, TLD hint, Chinese scripts merged as Common Crawl does). Against "
         f"the {emu['records']} real Common Crawl metadata records in the sample WARCs: same top language "
         f"{emu['same_top_language']}/{emu['records']}, same `text-bytes` {emu['same_text_bytes']}/{emu['records']}, "
         f"same `reliable` {emu['same_reliable']}/{emu['records']}, top language's `text-covered` within "
         f"{emu['max_top_share_difference']}.", "",
         f"**Cost per page:** cheap text + fastText {res['cost_ms_per_page']['cheap_ms']} ms; trafilatura "
         f"{res['cost_ms_per_page']['extract_ms']} ms (the work a gate drop saves).", "",
         f"## Defaults (`language_gate_min_share` {defaults.language_gate_min_share}, "
         f"`language_gate_min_confidence` {defaults.language_gate_min_confidence}, "
         f"`language_gate_max_bytes` {defaults.language_gate_max_bytes})", "",
         "| task | evidence | gate drops | losses | loss share | Chinese pages lost | Chinese pages kept after extraction |",
         "|---|---|---:|---:|---:|---:|---:|"]
    names = {"metadata": "Common Crawl metadata only", "fasttext": "fastText cheap text only (no metadata)",
             "metadata+fasttext": "metadata, else fastText"}
    for task, modes in res["defaults"].items():
        for mode, r in modes.items():
            L.append(f"| keep {task} | {names[mode]} | {r['gate_drops']} | {r['losses']} | {r['loss_share']:.2%} | "
                     f"{r['zh_losses']} | {r['zh_kept_after_extraction']} |")
    lost = [(task, mode, u) for task, modes in res["defaults"].items() for mode, r in modes.items() for u in r["lost"]]
    if lost:
        L += ["", "Pages lost with the defaults (post-extraction language and score in brackets):", ""]
        L += [f"- keep {t}, {names[m]}: {u}" for t, m, u in lost]
    L += ["", "## Sweeps", "", "Metadata rule: drop when CLD2 is reliable and no kept language covers `min_share` of "
          "the text.", "", "| task | min_share | gate drops | losses | Chinese lost |", "|---|---:|---:|---:|---:|"]
    for task, rows in res["sweep"].items():
        for r in rows:
            if r["mode"] == "metadata":
                L.append(f"| keep {task} | {r['min_share']} | {r['gate_drops']} | {r['losses']} | {r['zh_losses']} |")
    L += ["", "fastText rule: drop when the top language of the cheap text is not kept with probability >= "
          "`min_confidence` (texts under 100 characters are no evidence).", "",
          "| task | min_confidence | max_bytes | gate drops | losses | Chinese lost |", "|---|---:|---:|---:|---:|---:|"]
    for task, rows in res["sweep"].items():
        for r in rows:
            if r["mode"] == "fasttext":
                L.append(f"| keep {task} | {r['min_confidence']} | {r['max_bytes']} | {r['gate_drops']} | "
                         f"{r['losses']} | {r['zh_losses']} |")
    (REPO / "docs" / "LANGUAGE_GATE.md").write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
