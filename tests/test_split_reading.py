"""Splittable WARC reading: a file read in byte ranges gives exactly the
records of the file read whole, wherever the ranges are cut."""
from __future__ import annotations

import gzip
import io
import json
import os
import random

import apache_beam as beam
import pytest
from helpers import make_source, read_section, run_job
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdfs.pipeline.config import load_config
from mdfs.pipeline.io.readers import FileRange, FileRangeTracker, ReadFileDoFn, splittable_file

ZH = "国家统计局今天发布了最新的经济数据，显示今年前三个季度国内生产总值同比增长，消费和投资保持稳定。"
EN = ("The city council met on Tuesday evening to discuss the new budget for public schools and roads. "
      "Several residents spoke about the condition of the bridge near the river, closed since spring. ")


def cc_warc(path, n: int, damaged: tuple = ()) -> list[int]:
    """A Common Crawl-style file: warcinfo, then request, response, metadata per
    page, one gzip member each.  Returns the member start offsets.  Members
    whose index is in ``damaged`` get their middle bytes zeroed."""
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    starts = [0]
    w.write_record(w.create_warcinfo_record("t.warc.gz", {"software": "test"}))
    for i in range(n):
        zh = i % 3 == 0
        url = f"http://site{i}.example/page"
        body = (f"<html><body><p>{(ZH if zh else EN) * 4}</p><p>{i}</p></body></html>").encode()
        starts.append(buf.tell())
        w.write_record(w.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"),
                                            warc_content_type="application/http; msgtype=request"))
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        resp = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
        starts.append(buf.tell())
        w.write_record(resp)
        cld2 = {"reliable": True, "text-bytes": 900, "languages": [
            {"code": "zh" if zh else "en", "code-iso-639-3": "zho" if zh else "eng", "text-covered": 0.97}]}
        meta = ("languages-cld2: " + json.dumps(cld2) + "\r\n").encode()
        starts.append(buf.tell())
        w.write_record(w.create_warc_record(url, "metadata", payload=io.BytesIO(meta),
                                            warc_content_type="application/warc-fields",
                                            warc_headers_dict={"WARC-Concurrent-To":
                                                               resp.rec_headers.get_header("WARC-Record-ID")}))
    data = bytearray(buf.getvalue())
    ends = starts[1:] + [len(data)]
    for k in damaged:
        mid = (starts[k] + ends[k]) // 2
        data[mid:mid + 40] = b"\x00" * 40
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    return starts


def reader(languages=("zh",), **read):
    fn = ReadFileDoFn({"t": make_source(languages=list(languages))}, read_section(**read))
    fn.setup()
    return fn


def outcomes(fn, path, ranges=None) -> dict:
    """{kind: sorted (key, detail)} of the file read whole or range by range."""
    element = ("t", str(path), os.path.getsize(path))
    out = {"records": [], "dropped": [], "failed": [], "skipped": {}}
    for start, stop in ranges or [(None, None)]:
        # whole: the DoFn's own first restriction (one range, not splittable)
        rng = fn.initial_restriction(element) if start is None else FileRange(start, stop, True)
        tracker = fn.create_tracker(rng)
        items = list(fn.process(element, tracker=tracker))
        tracker.check_done()  # every range ends with its work claimed
        for item in items:
            if isinstance(item, beam.pvalue.TaggedOutput):
                if item.tag == "skipped":
                    out["skipped"][item.value.record_type] = out["skipped"].get(item.value.record_type, 0) \
                        + item.value.count
                elif item.tag == "dropped":
                    out["dropped"].append((item.value.key, item.value.reason, item.value.detail))
                else:
                    out["failed"].append((item.value.offset, item.value.error_kind))
            else:
                out["records"].append((item.key, item.url, item.offset))
    for k in ("records", "dropped", "failed"):
        out[k] = sorted(out[k])
    return out


def cut(points, size):
    points = sorted({p for p in points if 0 < p < size})
    return list(zip([0, *points], [*points, size]))


@pytest.fixture(scope="module")
def cc_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("split") / "cc.warc.gz"
    starts = cc_warc(path, 150)
    return path, starts


def test_split_at_every_member_boundary_gives_the_same_records(cc_file):
    path, starts = cc_file
    fn = reader()
    whole = outcomes(fn, path)
    assert len(whole["records"]) == 50 and len(whole["dropped"]) == 100  # the gate paired every response
    assert whole["skipped"] == {"warcinfo": 1, "request": 150, "metadata": 150}
    assert outcomes(fn, path, cut(starts, os.path.getsize(path))) == whole


def test_split_at_arbitrary_offsets_gives_the_same_records(cc_file):
    path, _ = cc_file
    size = os.path.getsize(path)
    fn = reader()
    whole = outcomes(fn, path)
    rnd = random.Random(7)
    for _ in range(5):
        points = [rnd.randrange(1, size) for _ in range(rnd.randrange(1, 40))]
        assert outcomes(fn, path, cut(points, size)) == whole
    assert outcomes(fn, path, cut(range(0, size, 977), size)) == whole  # ranges smaller than a member
    # a response and its metadata record in different ranges: the gate still sees the metadata
    gate_off = outcomes(reader(language_gate="metadata"), path, cut(range(0, size, 977), size))
    assert len(gate_off["dropped"]) == 100


def test_damaged_members_are_reported_once_whatever_the_split(tmp_path):
    path = tmp_path / "damaged.warc.gz"
    starts = cc_warc(path, 30, damaged=(5, 6, 40))
    size = os.path.getsize(path)
    fn = reader(languages=())
    whole = outcomes(fn, path)
    assert len(whole["failed"]) >= 2
    for points in (starts, [starts[5] + 10, starts[6] + 3, starts[40] - 1], range(0, size, 1500)):
        assert outcomes(fn, path, cut(points, size)) == whole


def test_only_multi_member_gzip_files_are_split(tmp_path, cc_file):
    path, _ = cc_file
    size = os.path.getsize(path)
    assert splittable_file(str(path), size, "warc", 65536)
    assert not splittable_file(str(path), size, "warc", size)  # one range is enough
    plain = tmp_path / "plain.warc"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    assert not splittable_file(str(plain), plain.stat().st_size, "warc", 65536)
    one_member = tmp_path / "whole.warc.gz"
    one_member.write_bytes(gzip.compress(plain.read_bytes()))
    assert not splittable_file(str(one_member), one_member.stat().st_size, "warc", 65536)
    fn = reader(split_bytes=65536)
    ranges = list(fn.split(("t", str(path), size), fn.initial_restriction(("t", str(path), size))))
    assert len(ranges) > 1 and all(r.splittable for r in ranges)
    assert [r.start for r in ranges][0] == 0 and ranges[-1].stop == size
    element = ("t", str(one_member), one_member.stat().st_size)
    one = list(fn.split(element, fn.initial_restriction(element)))
    assert len(one) == 1 and not one[0].splittable
    # a range of a file read whole refuses dynamic splits
    assert FileRangeTracker(FileRange(0, 100, False)).try_split(0.5) is None


def test_the_job_gives_the_same_funnel_split_or_not(tmp_path, cc_file):
    path, _ = cc_file
    common = ["sources.s.languages=[zh]", "near_dedup.enabled=false"]
    whole = run_job(tmp_path / "whole", sources=[f"s={path}"], sets=common)
    split = run_job(tmp_path / "split", sources=[f"s={path}"], sets=[*common, "read.split_bytes=65536"])
    assert whole["funnel"]["sources"] == split["funnel"]["sources"]
    assert sorted(r["id"] for r in whole["kept"]) == sorted(r["id"] for r in split["kept"])


def test_no_per_record_stream_reaches_a_multi_input_flatten(tmp_path, cc_file):
    """Local runners hold every multi-input Flatten in memory: only totals may meet, and
    the later stages' rejects (one sink per kind); nothing the reader emits."""
    from apache_beam.pipeline import PipelineVisitor

    from mdfs.pipeline.build import build_pipeline

    path, _ = cc_file
    cfg = load_config(sources=[f"a={path}", f"b={path.parent}/*.warc.gz"], sets=["sources.b.languages=[]"])
    p = beam.Pipeline()
    build_pipeline(p, cfg, str(tmp_path / "out"))

    class Flattens(PipelineVisitor):
        found = []

        def visit_transform(self, node):
            if isinstance(node.transform, beam.Flatten) and len(node.inputs) > 1:
                self.found.append((node.full_label, [pc.producer.full_label for pc in node.inputs]))

    v = Flattens()
    p.visit(v)
    assert v.found, "the funnel and statistics flatten their totals"
    for label, producers in v.found:
        if label in ("StageDropped", "StageFailed"):  # rejects after extraction: bounded by what was extracted
            assert not any(pr.startswith("Read") for pr in producers), producers
            continue
        for producer in producers:
            # per-bundle totals (Totals*), a combined total (Sum*), or the statistics' quantiles and details (Tag*)
            assert any(step.startswith(("Totals", "Sum", "Tag")) for step in producer.split("/")), (label, producer)
