"""Long fuzz run: mutated real WARC files, random bytes and generated HTML
through the reader and the extractor; counts outcomes and reports any
unhandled exception (there must be none).

  python bench/fuzz.py [--inputs 10000] [--seed 0]

Mutations of the bundled sample WARCs: truncation at random offsets, random
byte flips, inserted garbage, duplicated or deleted header lines, gzip
members spliced; plus pure random bytes and random HTML-ish text.  Every
input is written as a file and read with the pipeline's reader DoFn; the
first payload the reader emits is decoded and extracted in-process.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import apache_beam as beam

    from helpers import read_file
    from mdfs.pipeline.config import SAMPLES_DIR, load_config
    from mdfs.pipeline.extract import ExtractDoFn

    import logging

    logging.disable(logging.CRITICAL)  # warcio/trafilatura complain loudly about every broken input
    rng = random.Random(args.seed)
    seeds = [p.read_bytes() for p in sorted((SAMPLES_DIR / "warc").glob("*.warc.gz")) if p.stat().st_size < 300_000]
    fn = ExtractDoFn(
        {**load_config()["extract"], "isolation": "inprocess"}, load_config()["read"]["max_invalid_utf8_share"]
    )
    fn.setup()
    outcomes, crashes = collections.Counter(), []
    tmp = Path(tempfile.mkdtemp(prefix="mdfs-fuzz-"))
    t0 = time.time()
    for i in range(args.inputs):
        data = mutate(rng.choice(seeds), rng)
        path = tmp / f"f{i % 50}.warc.gz"
        path.write_bytes(data)
        try:
            out = read_file(path)
            for tag in ("dropped", "failed"):
                for x in out[tag]:
                    outcomes[f"read/{tag}/{getattr(x, 'reason', None) or getattr(x, 'error_kind', None)}"] += 1
            for rec in out["records"][:1]:  # extraction is the slow part: one payload per input
                for o in fn.process(rec):
                    if isinstance(o, beam.pvalue.TaggedOutput):
                        outcomes[f"extract/{o.tag}/{getattr(o.value, 'reason', None) or o.value.error_kind}"] += 1
                    else:
                        outcomes["extract/kept"] += 1
        except Exception:  # noqa: BLE001 - the finding this run exists to report
            crashes.append(traceback.format_exc(limit=3))
    res = {
        "inputs": args.inputs,
        "seconds": round(time.time() - t0, 1),
        "unhandled_exceptions": len(crashes),
        "outcomes": dict(outcomes.most_common()),
    }
    print(json.dumps(res, indent=2))
    (REPO / "bench" / "fuzz_results.json").write_text(
        json.dumps({**res, "command": f"python bench/fuzz.py --inputs {args.inputs} --seed {args.seed}"}, indent=2)
    )
    for c in crashes[:5]:
        print(c)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
