"""Human screening: stratified samples, the review page (in a real headless
Chromium), labels, the summary's numbers, the training export, and the HTML
report, with hostile page text planted in the run."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from mdfs.pipeline import review

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "pipeline" / "samples"
XSS = ['<script>window.__xss = 1</script>', '<img src=x onerror="window.__xss = 2">',
       '<a href="javascript:window.__xss = 3">点这里</a>', '\u202egnp.exe', '<svg onload="window.__xss = 4">']


def _mdfs(*args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A run over real articles with hostile markup planted in them (kept and dropped ones), candidates on."""
    work = tmp_path_factory.mktemp("review")
    texts = [json.loads(line)["text"] for line in gzip.open(SAMPLES / "news" / "news_sample.jsonl.gz", "rt",
                                                            encoding="utf-8")]
    rows = []
    for i, t in enumerate(texts[:24]):
        rows.append({"id": f"doc{i}", "text": t[:600] + "\n" + XSS[i % len(XSS)] + "\n" + t[600:3000],
                     "url": "javascript:window.__xss = 5" if i % 4 == 0 else f"https://example.org/{i}"})
    rows += [{"id": f"short{i}", "text": x} for i, x in enumerate(XSS)]  # dropped: too short
    (work / "hostile.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                        encoding="utf-8")
    run = work / "run"
    r = _mdfs("run", "--output", run, "--source", f"t={work / 'hostile.jsonl'}", "--set", "output.candidates=true",
              cwd=work)
    assert r.returncode == 0, r.stderr
    r = _mdfs("sample", run, "--per-cell", 4, "--seed", 1, cwd=work)
    assert r.returncode == 0, r.stderr
    return run


# --- sampling ---------------------------------------------------------------------------

def test_sample_is_stratified_reproducible_and_full_text(hostile_run, tmp_path):
    items, meta = review.load_sample(str(hostile_run))
    funnel = json.loads((hostile_run / "funnel.json").read_text())["sources"]["t"]
    assert sum(c["population"] for c in meta["cells"]) == funnel["kept"] + funnel["dropped"]
    for c in meta["cells"]:  # every cell, at most per_cell of it
        members = [i for i in items if i["cell"] == c["cell"]]
        assert len(members) == min(4, c["population"]) == c["sampled"]
    kept_cells = {tuple(c["cell"]) for c in meta["cells"] if c["cell"][1] == "kept"}
    assert kept_cells == {("t", "kept", "kept", "unscored")}
    short = [i for i in items if i["id"].startswith("short")]
    assert short and all(i["text"] in XSS for i in short)
    # dropped by the rules: the candidate store's text; by language ID (before the rules): the excerpt
    assert all(i["text_origin"] == ("excerpt" if i["reason"] == "language" else "candidates") for i in short)
    assert any(i["text_origin"] == "candidates" for i in short)
    assert all(i["text_origin"] == "kept" for i in items if i["outcome"] == "kept")
    copy = tmp_path / "copy"
    shutil.copytree(hostile_run, copy)
    assert review.draw_sample(str(copy), 4, 1)["items"] == meta["items"]
    assert (copy / "review" / "sample.jsonl").read_text() == (hostile_run / "review" / "sample.jsonl").read_text()
    review.draw_sample(str(copy), 4, 2)
    assert (copy / "review" / "sample.jsonl").read_text() != (hostile_run / "review" / "sample.jsonl").read_text()


def test_a_run_without_candidates_shows_excerpts_and_says_so(tmp_path):
    run = tmp_path / "run"
    assert _mdfs("run", "--output", run, "--source", f"news={SAMPLES / 'news' / '*.jsonl.gz'}",
                 cwd=tmp_path).returncode == 0
    meta = review.draw_sample(str(run), 3, 0)
    items, _ = review.load_sample(str(run))
    dropped = [i for i in items if i["outcome"] == "dropped"]
    assert not meta["candidates"] and dropped and all(i["text_origin"] == "excerpt" for i in dropped)
    assert all(len(i["text"]) <= 200 for i in dropped)


# --- labels and what they say -------------------------------------------------------------

def _fake_run(tmp_path: Path) -> Path:
    """A sample with known cells and populations, for hand-computed numbers."""
    run = tmp_path / "fake"
    (run / "review").mkdir(parents=True)
    items = [{"item": f"s/d{i}", "id": f"d{i}", "source": "s", "outcome": "dropped", "stage": "coarse",
              "reason": "too_short", "cell": ["s", "dropped", "coarse", "too_short"], "text": f"text {i}",
              "text_origin": "candidates"} for i in range(12)]
    items += [{"item": f"s/k{i}", "id": f"k{i}", "source": "s", "outcome": "kept", "stage": "kept",
               "reason": band, "cell": ["s", "kept", "kept", band], "text": f"kept {i}", "text_origin": "kept"}
              for i, band in enumerate(["p<0.1"] * 4 + ["p>=0.5"] * 4)]
    (run / "review" / "sample.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    cells = [{"cell": ["s", "dropped", "coarse", "too_short"], "population": 500, "sampled": 12},
             {"cell": ["s", "kept", "kept", "p<0.1"], "population": 900, "sampled": 4},
             {"cell": ["s", "kept", "kept", "p>=0.5"], "population": 100, "sampled": 4}]
    (run / "review" / "sample.json").write_text(json.dumps({"run": str(run), "cells": cells, "candidates": True}))
    return run


def _judge(item, verdict, reviewer="alice", label=None, t="2026-12-01T10:00:00", jid=None):
    return {"judgement": jid or str(uuid.uuid4()), "item": item, "verdict": verdict, "label": label,
            "reviewer": reviewer, "time": t}


def test_summary_numbers_match_hand_computation(tmp_path):
    run = _fake_run(tmp_path)
    store = review.LabelStore(str(run))
    # alice: d0..d7 correct, d8 d9 wrong, d10 unsure; d9 first judged correct, then corrected to wrong
    store.add(_judge("s/d9", "correct", t="2026-12-01T09:00:00"))
    for i in range(8):
        store.add(_judge(f"s/d{i}", "correct"))
    store.add(_judge("s/d8", "wrong"))
    store.add(_judge("s/d9", "wrong"))
    again = _judge("s/d10", "unsure", jid="fixed-judgement-id")
    assert store.add(again) and not store.add(again)  # a resubmission is not written twice
    # kept: p<0.1 cell 3 high + 1 low; p>=0.5 cell 1 high + 3 ad
    for i, lab in enumerate(["high", "high", "high", "low", "high", "ad", "ad", "ad"]):
        store.add(_judge(f"s/k{i}", "correct", label=lab))
    # bob on d0..d5: agrees on 4, disagrees on 2
    for i, v in enumerate(["correct"] * 4 + ["wrong"] * 2):
        store.add(_judge(f"s/d{i}", v, reviewer="bob"))
    s = review.summary(str(run))
    d = s["drops"]["coarse/too_short"]
    # judgements: alice 11 (8 correct, 2 wrong, 1 unsure) + bob 6 (4 correct, 2 wrong)
    assert (d["judged"], d["correct"], d["wrong"], d["unsure"]) == (17, 12, 4, 1)
    assert d["precision"] == pytest.approx(12 / 16)
    # Wilson 95 % for 12/16: centre (p + z^2/2n) / (1 + z^2/n), by hand
    z, n, p = 1.959964, 16, 12 / 16
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    assert d["ci95"] == pytest.approx([centre - half, centre + half])
    assert d["ci95"] == pytest.approx([0.5050, 0.8982], abs=1e-3)
    # weighted kept shares: high = (900*3/4 + 100*1/4) / 1000
    assert s["kept_label_shares"] == pytest.approx({"high": 0.7, "low": 0.225, "ad": 0.075})
    # kappa alice/bob over d0..d5: alice all correct; bob 4 correct, 2 wrong -> po 4/6, pe = 1*4/6 -> kappa 0
    (a,) = s["agreement"]
    assert a["reviewers"] == ["alice", "bob"] and a["items"] == 6 and a["kappa_verdict"] == pytest.approx(0.0)
    assert review.cohen_kappa([("a", "a"), ("b", "b"), ("a", "b"), ("b", "b")]) == pytest.approx(0.5)
    r = _mdfs("review", run, "--summary", "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["drops"] == json.loads(json.dumps(s["drops"]))


def test_torn_last_line_is_skipped(tmp_path):
    run = _fake_run(tmp_path)
    review.LabelStore(str(run)).add(_judge("s/d0", "correct"))
    with open(run / "review" / "labels.jsonl", "a") as fh:
        fh.write('{"judgement": "x", "item": "s/d1", "verd')  # a crash while writing
    assert [j["item"] for j in review.read_labels(str(run))] == ["s/d0"]


def test_export_training_rows_feed_train_classifier(tmp_path):
    from mdfs.classifiers.data import read_jsonl

    run = _fake_run(tmp_path)
    store = review.LabelStore(str(run))
    for i, lab in enumerate(["high", "low", "ad", "high"]):
        store.add(_judge(f"s/k{i}", "correct", label=lab))
    store.add(_judge("s/k0", "correct", reviewer="bob", label="low"))  # disagreement: left out
    r = review.export_training(str(run), str(tmp_path / "train.jsonl"))
    assert (r["rows"], r["conflicting"]) == (3, 1)
    data = read_jsonl(str(tmp_path / "train.jsonl"))
    assert sorted(data.texts) == ["kept 1", "kept 2", "kept 3"]


# --- the server --------------------------------------------------------------------------

def _client(run, token="t0ken-abcdefgh"):
    from mdfs.pipeline.review_app import create_app

    app = create_app(str(run), token, "alice", ["high", "low", "ad"], {"127.0.0.1", "localhost"})
    return app.test_client(), token


def test_server_needs_the_token_and_its_own_host_and_serves_no_files(hostile_run):
    c, token = _client(hostile_run)
    base = {"base_url": "http://127.0.0.1:5000"}
    assert c.get("/", **base).status_code == 403
    assert c.get("/?token=wrong", **base).status_code == 403
    ok = c.get(f"/?token={token}", **base)
    assert ok.status_code == 200 and "script-src 'self'" in ok.headers["Content-Security-Policy"]
    assert c.get(f"/?token={token}", base_url="http://evil.example:5000").status_code == 403  # DNS rebinding
    for path in ("/static/../funnel.json", "/static/..%2Ffunnel.json", "/static/sample.jsonl", "/funnel.json",
                 "/review/labels.jsonl"):
        assert c.get(f"{path}?token={token}", **base).status_code == 404, path
    assert c.get(f"/static/review.js?token={token}", **base).status_code == 200
    item = c.get("/api/item/0", headers={"X-Review-Token": token}, **base).get_json()
    assert item["item"]
    bad = c.post("/api/label", json={"judgement": "j-12345678", "item": item["item"], "verdict": "maybe"},
                 headers={"X-Review-Token": token}, **base)
    assert bad.status_code == 400


def test_concurrent_submissions_are_all_kept_once(hostile_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(hostile_run, run)
    items, _ = review.load_sample(str(run))
    errors = []

    def worker(n):
        c, token = _client(run)
        for k in range(10):
            jid = f"w{n:02d}-{k:02d}-{uuid.uuid4().hex[:8]}"
            body = {"judgement": jid, "item": items[(n * 10 + k) % len(items)]["item"], "verdict": "correct"}
            for _ in range(2):  # every submission sent twice (a retry)
                r = c.post("/api/label", json=body, headers={"X-Review-Token": token},
                           base_url="http://127.0.0.1:5000")
                if r.status_code != 200:
                    errors.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (run / "review" / "labels.jsonl").read_text().splitlines()
    assert not errors and len(lines) == 120 and len({json.loads(x)["judgement"] for x in lines}) == 120


# --- in a real browser ---------------------------------------------------------------------

def _browser():
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("MDFS_REQUIRE_BROWSER"):
            pytest.fail("MDFS_REQUIRE_BROWSER is set but chromium / chromedriver are missing")
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver (CI installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture()
def server(hostile_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(hostile_run, run)
    proc = subprocess.Popen([sys.executable, "-m", "mdfs.pipeline.cli", "review", str(run), "--reviewer", "alice"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    while line and "http://" not in line:
        line = proc.stdout.readline()
    assert "http://127.0.0.1:" in line and "?token=" in line, line
    yield run, line.split(": ", 1)[1].strip()
    proc.terminate()
    proc.wait(10)


def _wait(drv, cond, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if drv.execute_script(cond):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {cond}")


def test_review_page_in_chromium_keyboard_resume_and_inert_text(server):
    from selenium.webdriver.common.action_chains import ActionChains

    run, url = server
    drv = _browser()
    try:
        drv.get(url)
        _wait(drv, "return document.getElementById('app').dataset.ready === '1'")
        total = len(review.load_sample(str(run))[0])
        seen_hostile = 0
        for k in range(total):  # walk every item: hostile markup must show as text and never run
            text = drv.find_element("id", "text").text
            seen_hostile += any(x.replace("\u202e", "[U+202E]") in text for x in XSS)
            assert drv.execute_script("return window.__xss === undefined"), f"script ran at item {k}"
            ActionChains(drv).send_keys("n").perform()
            time.sleep(0.05)
        assert seen_hostile >= 5
        assert "[U+202E]" in drv.page_source or seen_hostile
        drv.get(url)  # back to the start: label three items with the keyboard
        _wait(drv, "return document.getElementById('app').dataset.ready === '1'")
        first = drv.find_element("id", "position").text
        for keys in ("1c", "w", "3u"):
            before = drv.find_element("id", "position").text
            ActionChains(drv).send_keys(keys).perform()
            _wait(drv, f"return document.getElementById('position').textContent !== {json.dumps(before)}")
        judged = [json.loads(x) for x in (run / "review" / "labels.jsonl").read_text().splitlines()]
        assert [(j["verdict"], j["label"], j["reviewer"]) for j in judged] == [
            ("correct", "high", "alice"), ("wrong", None, "alice"), ("unsure", "ad", "alice")]
        assert {"id", "source", "outcome", "stage", "reason", "time", "judgement"} <= set(judged[0])
        drv.refresh()  # reviewing resumes where it stopped
        _wait(drv, "return document.getElementById('app').dataset.ready === '1'")
        assert first == "item 1 of %d" % total
        assert drv.find_element("id", "position").text == "item 4 of %d" % total
        assert "3 of %d judged by alice" % total in drv.find_element("id", "judged").text
        assert drv.execute_script("return window.__xss === undefined")
    finally:
        drv.quit()


def test_html_report_opens_from_disk_with_hostile_text_inert(hostile_run):
    html = (hostile_run / "report" / "index.html").read_text()
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html and "<script>" not in html
    assert "\u202e" not in html and "[U+202E]" in html
    assert 'href="javascript' not in html
    drv = _browser()
    try:
        drv.get((hostile_run / "report" / "index.html").as_uri())
        body = drv.find_element("tag name", "body").text
        assert "<script>window.__xss = 1</script>" in body and "What became of each source" in body
        time.sleep(0.3)
        assert drv.execute_script("return window.__xss === undefined")
    finally:
        drv.quit()


def test_a_port_in_use_is_one_clear_line(hostile_run, tmp_path):
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        r = _mdfs("review", hostile_run, "--port", busy.getsockname()[1], cwd=tmp_path)
    finally:
        busy.close()
    assert r.returncode == 2 and r.stderr.strip().startswith("mdfs review: cannot listen on 127.0.0.1:")
    assert "Traceback" not in r.stderr
    from mdfs.pipeline.review_app import allowed_hosts

    assert "localhost" in allowed_hosts("0.0.0.0") and allowed_hosts("10.0.0.5") == {"10.0.0.5"}
