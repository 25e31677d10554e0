"""Long fuzz run: mutated real WARC files, gzip trailers, JSONL with lone
surrogates, random bytes and generated HTML through the reader and the
extractor; counts outcomes and reports any unhandled exception, any input
whose records are not all accounted for, and any output row that could not
be written (there must be none of each).

  python bench/fuzz.py [--inputs 10000] [--seed 0]

Families of inputs:

* mutations of the bundled sample WARCs: truncation at random offsets, random
  byte flips, inserted garbage, duplicated or deleted header lines, gzip
  members spliced, pure random bytes and random HTML-ish text;
* trailer damage: random bytes of the 8-byte trailer (CRC-32, length) of one
  to three complete gzip members of a sample WARC, so the data inflates and
  the check fails; the records must match the undamaged file's count exactly;
* JSONL lines from the bundled news sample with lone surrogates (JSON escapes
  such as ``\\ud800``, or their CESU-8 bytes) at any position of any field
  (id, url, date, text, a field map's target, a key), plain or gzipped in
  members of which some have a damaged trailer; one outcome per line exactly.

A fifth of the inputs are written under a file name that is not UTF-8.  Every
input is read with the pipeline's reader DoFn; every outcome is turned into
the row it would be written as, and each text value must encode as strict
UTF-8 (what Parquet and Beam's coders require); the first payload the reader
emits is decoded and extracted in-process.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    if kind == 0 and data:
        return data[: rng.randrange(len(data))]
    if kind == 1 and data:
        b = bytearray(data)
        for _ in range(rng.randrange(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 2:
        i = rng.randrange(len(data) + 1)
        return data[:i] + os.urandom(rng.randrange(1, 500)) + data[i:]
    if kind == 3:
        try:
            raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        except (EOFError, OSError):  # the truncated sample: mutate its bytes as they are
            raw = data
        lines = raw.split(b"\r\n")
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(len(lines) + 1)
            if lines and i < len(lines) and rng.random() < 0.5:
                del lines[i]
            else:
                lines.insert(
                    i,
                    rng.choice(
                        [
                            b"Content-Length: 999999",
                            b"WARC-Type: response",
                            b"Content-Type: text/html",
                            b"Content-Encoding: gzip",
                            b"Transfer-Encoding: chunked",
                            b"",
                            b":::",
                        ]
                    ),
                )
        return b"\r\n".join(lines)
    if kind == 4:
        return os.urandom(rng.randrange(0, 3000))
    if kind == 5:
        tags = [
            "<div>",
            "</div>",
            "<p>",
            "</p>",
            "<script>",
            "</script>",
            "<meta charset=gbk>",
            "<!--",
            "-->",
            "中文内容。",
            "text ",
            "&amp;",
            "&#x4e2d;",
            "<table><tr><td>",
            "\x00",
        ]
        html = "".join(rng.choice(tags) for _ in range(rng.randrange(1, 400)))
        from warcio.statusandheaders import StatusAndHeaders
        from warcio.warcwriter import WARCWriter
        import io

        buf = io.BytesIO()
        w = WARCWriter(buf, gzip=rng.random() < 0.5)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        w.write_record(
            w.create_warc_record(
                "http://fuzz/", "response", payload=io.BytesIO(html.encode("utf-8", "surrogatepass")), http_headers=http
            )
        )
        return buf.getvalue()
    return data + data[: rng.randrange(len(data) + 1)]


def member_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each gzip member that inflates and checks whole, in order."""
    import zlib

    spans, pos = [], 0
    while data[pos:pos + 2] == b"\x1f\x8b":
        d = zlib.decompressobj(31)
        try:
            d.decompress(data[pos:])
        except zlib.error:
            break
        if not d.eof:
            break
        end = len(data) - len(d.unused_data)
        spans.append((pos, end))
        pos = end
    return spans


def damage_trailers(data: bytes, rng: random.Random) -> bytes:
    """Random bytes of the trailers of 1-3 complete members changed."""
    spans = member_spans(data)
    b = bytearray(data)
    for _, end in rng.sample(spans, min(len(spans), rng.randint(1, 3))):
        for at in rng.sample(range(8), rng.randint(1, 8)):
            b[end - 8 + at] ^= rng.randrange(1, 256)
    return bytes(b)


def with_surrogate(value: str, rng: random.Random) -> str:
    """A lone surrogate (high, low, or a reversed pair) at the start, in the middle, at the end, or alone."""
    bad = rng.choice([chr(rng.randrange(0xD800, 0xDC00)), chr(rng.randrange(0xDC00, 0xE000)), "\udc00\ud800"])
    where = rng.randrange(4)
    if where == 3 or not value:
        return bad
    i = [0, rng.randrange(len(value) + 1), len(value)][where]
    return value[:i] + bad + value[i:]


def jsonl_input(rng: random.Random, rows: tuple) -> tuple[bytes, str, int, dict]:
    """(bytes, suffix, lines offered, source fields) of one JSONL input."""
    text_field = rng.choice(["text", "content"])
    fields = {"id": "id", "text": text_field, "url": "url", "date": "date"}
    lines = []
    for n in range(rng.randint(1, 30)):
        row = {"id": str(n), "url": f"http://fuzz/{n}", "date": "2020-01-01", text_field: rng.choice(rows)["text"][:800]}
        for key in rng.sample(list(row), rng.randint(0, len(row))):
            row[key] = with_surrogate(row[key], rng)
        if rng.random() < 0.05:  # in a key: reaches a row only through a message
            row[with_surrogate("extra", rng)] = "x"
        if rng.random() < 0.1:  # the surrogates as bytes (CESU-8): not UTF-8, one dead letter
            lines.append(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
        else:
            lines.append(json.dumps(row).encode() + b"\n")
    if rng.random() < 0.5:
        return b"".join(lines), ".jsonl", len(lines), fields
    per = rng.randint(1, len(lines))
    data = b"".join(gzip.compress(b"".join(lines[i:i + per]), mtime=0) for i in range(0, len(lines), per))
    return (damage_trailers(data, rng) if rng.random() < 0.5 else data), ".jsonl.gz", len(lines), fields


def input_path(tmp: Path, i: int, suffix: str, rng: random.Random) -> str:
    """A fifth of the names hold bytes that are not UTF-8 (shown escaped in the outputs)."""
    if rng.random() < 0.2:
        name = b"f%d-" % (i % 50) + bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randint(1, 4)))
        return os.fsdecode(os.path.join(os.fsencode(str(tmp)), name + suffix.encode()))
    return str(tmp / f"f{i % 50}{suffix}")


def outcome_count(out: dict) -> int:
    """Records read, one per outcome (skipped WARC record types count too)."""
    return (len(out["records"]) + len(out["dropped"]) + sum(1 for f in out["failed"] if f.records is not None)
            + sum(s.count for s in out["skipped"] if s.record_type != "blank_line"))


def unwritable(out: dict) -> int:
    """Outcomes with a text value that strict UTF-8 refuses: records as the
    reader emits them, dead letters and drops as their rows are written."""
    rows = [vars(r) for r in out["records"]] + [x.to_row() for x in out["dropped"] + out["failed"]]
    return sum(1 for row in rows if not all(_utf8(v) for v in row.values() if isinstance(v, str)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import apache_beam as beam

    from helpers import news_sample_rows, read_file
    from mdfs.pipeline.config import SAMPLES_DIR, load_config
    from mdfs.pipeline.stages.extract import ExtractDoFn

    import logging

    logging.disable(logging.CRITICAL)  # warcio/trafilatura complain loudly about every broken input
    rng = random.Random(args.seed)
    seeds = [p.read_bytes() for p in sorted((SAMPLES_DIR / "warc").glob("*.warc.gz")) if p.stat().st_size < 300_000]
    rows = news_sample_rows()
    fn = ExtractDoFn(
        load_config().extract.model_copy(update={"isolation": "inprocess"}), load_config().read.max_invalid_utf8_share
    )
    fn.setup()
    outcomes, crashes, families = collections.Counter(), [], collections.Counter()
    unaccounted, unwritable_rows = [], 0
    tmp = Path(tempfile.mkdtemp(prefix="mdfs-fuzz-"))
    baseline: dict[int, int] = {}  # outcome count of each undamaged seed
    t0 = time.time()
    for i in range(args.inputs):
        family, r = None, rng.random()
        source, offered = None, None
        if r < 0.6:
            family, data, suffix = "warc_mutation", mutate(rng.choice(seeds), rng), ".warc.gz"
        elif r < 0.75:
            k = rng.randrange(len(seeds))
            family, data, suffix = "gzip_trailer", damage_trailers(seeds[k], rng), ".warc.gz"
            if k not in baseline:
                (tmp / "seed.warc.gz").write_bytes(seeds[k])
                baseline[k] = outcome_count(read_file(tmp / "seed.warc.gz"))
            offered = baseline[k]
        else:
            data, suffix, offered, fields = jsonl_input(rng, rows)
            family, source = "jsonl_surrogates", {"fields": fields}
        families[family] += 1
        path = input_path(tmp, i, suffix, rng)
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            out = read_file(path, source)
            if offered is not None and outcome_count(out) != offered:
                unaccounted.append(f"{family} input {i}: {outcome_count(out)} outcomes for {offered} records")
            unwritable_rows += unwritable(out)
            for tag in ("dropped", "failed"):
                for x in out[tag]:
                    outcomes[f"read/{tag}/{getattr(x, 'reason', None) or getattr(x, 'error_kind', None)}"] += 1
            for rec in out["records"][:1]:  # extraction is the slow part: one payload per input
                for o in fn.process(rec):
                    if isinstance(o, beam.pvalue.TaggedOutput):
                        outcomes[f"extract/{o.tag}/{getattr(o.value, 'reason', None) or o.value.error_kind}"] += 1
                    else:
                        unwritable_rows += not all(_utf8(v) for v in vars(o).values() if isinstance(v, str))
                        outcomes["extract/kept"] += 1
        except Exception:  # noqa: BLE001 - the finding this run exists to report
            crashes.append(traceback.format_exc(limit=3))
        finally:
            os.remove(path)
    res = {
        "inputs": args.inputs,
        "families": dict(families.most_common()),
        "seconds": round(time.time() - t0, 1),
        "unhandled_exceptions": len(crashes),
        "unaccounted_inputs": len(unaccounted),
        "unwritable_rows": unwritable_rows,
        "outcomes": dict(outcomes.most_common()),
    }
    print(json.dumps(res, indent=2))
    (REPO / "bench" / "fuzz_results.json").write_text(
        json.dumps({**res, "command": f"python bench/fuzz.py --inputs {args.inputs} --seed {args.seed}"}, indent=2)
    )
    for c in crashes[:5] + unaccounted[:5]:
        print(c)
    return 1 if crashes or unaccounted or unwritable_rows else 0


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


if __name__ == "__main__":
    sys.exit(main())
