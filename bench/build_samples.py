"""Build the bundled sample corpus in ``pipeline/samples/`` from ``../shared/data``.

Only files whose upstream repository is Apache-2.0 are used (see
``pipeline/samples/NOTICE.md``).  The Chinese pages from opendatalab/magic-html are
wrapped into a WARC with warcio so that Chinese HTML goes through the same WARC
path as Common Crawl.  Rerunning this script reproduces the files byte for byte
(fixed WARC dates and record ids).

    python bench/build_samples.py [--shared ../shared/data]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "pipeline" / "samples"

# Real WARC/WET files copied unchanged (all Apache-2.0 upstream, see NOTICE.md).
WARC_FILES = [
    "cc-main-2020-34_sample_resiliparse.warc.gz",
    "cc-main-2024-22_whirlwind.warc.gz",
    "wget_sample-0001_dolma.warc.gz",
    "revisit-example_warcio.warc.gz",
    "truncated-record_resiliparse.warc.gz",
    "brotli-payload_ukwa.warc.gz",
]
WET_FILES = ["cc-main-2024-22_whirlwind.warc.wet.gz"]
MAX_PAGE_BYTES = 150_000  # keep the repo small: skip the largest pages


def _rows(index: Path):
    with open(index, encoding="utf-8") as fh:
        yield from csv.DictReader(fh, delimiter="\t")


def build_zh_warc(shared: Path) -> int:
    """Wrap Chinese magic-html pages (articles and forums) into one WARC.gz."""
    out = OUT / "web_zh" / "magic-html_zh_pages.warc.gz"
    n = 0
    with open(out, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for kind in ("article", "forum"):
            base = shared / "html" / "magic-html"
            rows = [r for r in _rows(base / f"{kind}_index.tsv") if r["lang_detected_on_groundtruth"] == "zh"]
            rows.sort(key=lambda r: r["file"])
            for i, row in enumerate(rows):
                html = gzip.decompress((base / kind / row["file"]).read_bytes())
                if len(html) > MAX_PAGE_BYTES and "yahoo" not in row["url"]:
                    continue  # hk.yahoo is kept: Traditional Chinese
                # Alternate how the charset is announced, so that all three paths
                # (HTTP header, <meta>, detection) are exercised by real pages.
                ctype = "text/html; charset=utf-8" if i % 3 == 0 else "text/html"
                http = StatusAndHeaders("200 OK", [("Content-Type", ctype),
                                                   ("Content-Length", str(len(html)))], protocol="HTTP/1.1")
                rid = "<urn:uuid:%s>" % hashlib.md5(row["file"].encode()).hexdigest()
                rec = writer.create_warc_record(
                    row["url"], "response", payload=io.BytesIO(html), http_headers=http,
                    warc_headers_dict={"WARC-Date": "2024-05-20T00:00:00Z", "WARC-Record-ID": rid},
                )
                writer.write_record(rec)
                n += 1
    return n


def build_news_jsonl(shared: Path) -> int:
    """News source: English CCNet docs (dolma, Apache-2.0) as they are, plus the
    human ground-truth text of the large Chinese magic-html articles left out of
    the WARC (so the two sources do not overlap)."""
    out = OUT / "news" / "news_sample.jsonl.gz"
    base = shared / "html" / "magic-html"
    gt = json.loads(gzip.decompress((base / "article_groundtruth.json.gz").read_bytes()))
    n = 0
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for name in ("ccnet_en_head-0091_dolma.jsonl.gz", "ccnet_en_head-0174_dolma.jsonl.gz"):
            with gzip.open(shared / "text" / name, "rt", encoding="utf-8") as src:
                for line in src:
                    d = json.loads(line)
                    fh.write(json.dumps({"id": d["id"], "text": d["text"], "url": d["id"],
                                         "date": d.get("created")}, ensure_ascii=False) + "\n")
                    n += 1
        rows = sorted((r for r in _rows(base / "article_index.tsv")
                       if r["lang_detected_on_groundtruth"] == "zh" and int(r["html_bytes"]) > MAX_PAGE_BYTES),
                      key=lambda r: r["file"])
        for r in rows:
            key = r["file"].removesuffix(".html.gz")
            text = gt.get(key, {}).get("content") or ""
            # no "id": the pipeline derives one, as for any feed without ids
            fh.write(json.dumps({"text": text, "url": r["url"], "date": "2024-05-20"}, ensure_ascii=False) + "\n")
            n += 1
    return n


def build_forum_parquet(shared: Path) -> int:
    """Forum/Q&A source as Parquet: human ground truth of magic-html forum pages."""
    base = shared / "html" / "magic-html"
    gt = json.loads(gzip.decompress((base / "forum_groundtruth.json.gz").read_bytes()))
    rows = sorted(_rows(base / "forum_index.tsv"), key=lambda r: r["file"])
    ids, texts, urls = [], [], []
    for r in rows:
        key = r["file"].removesuffix(".html.gz")
        if key in gt:
            ids.append(key[:16])
            texts.append(gt[key].get("content") or "")
            urls.append(r["url"])
    table = pa.table({"id": ids, "text": texts, "url": urls, "date": [None] * len(ids)},
                     schema=pa.schema([("id", pa.string()), ("text", pa.string()),
                                       ("url", pa.string()), ("date", pa.string())]))
    pq.write_table(table, OUT / "forum" / "magic-html_forum.parquet", compression="zstd")
    return len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    for sub in ("warc", "web_zh", "wet", "news", "forum"):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
    for name in WARC_FILES:
        shutil.copyfile(args.shared / "warc" / name, OUT / "warc" / name)
    for name in WET_FILES:
        shutil.copyfile(args.shared / "warc" / name, OUT / "wet" / name)
    print("zh pages wrapped:", build_zh_warc(args.shared))
    print("news rows:", build_news_jsonl(args.shared))
    print("forum rows:", build_forum_parquet(args.shared))


if __name__ == "__main__":
    main()
