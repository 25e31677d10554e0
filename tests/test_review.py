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

from mdfs.pipeline.commands import review, review_summary

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "pipeline" / "samples"
XSS = ['<script>window.__xss = 1</script>', '<img src=x onerror="window.__xss = 2">',
       '<a href="javascript:window.__xss = 3">点这里</a>', '\u202egnp.exe', '<svg onload="window.__xss = 4">']


def _mdfs(*args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "mdfs.pipeline.commands.cli", *map(str, args)], cwd=cwd,
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
    # dropped: too short, with a 5,000-character URL (must wrap in the report, not widen it)
    rows += [{"id": f"short{i}", "text": x, "url": "https://example.org/" + "x" * 5000} for i, x in enumerate(XSS)]
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
    s = review_summary.summary(str(run))
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
    assert review_summary.cohen_kappa([("a", "a"), ("b", "b"), ("a", "b"), ("b", "b")]) == pytest.approx(0.5)
    r = _mdfs("review", run, "--summary", "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["drops"] == json.loads(json.dumps(s["drops"]))


def test_summary_counts_kept_verdicts_coverage_rule_sizes_and_skips_bad_lines(tmp_path):
    run = _fake_run(tmp_path)
    store = review.LabelStore(str(run))
    for i in range(4):  # p<0.1 band: 3 rightly kept, 1 should have been dropped; labels only in this band
        store.add(_judge(f"s/k{i}", "wrong" if i == 3 else "correct", label="high"))
    store.add(_judge("s/k4", "correct"))  # p>=0.5 band: a verdict, no label
    for i in range(10):  # too_short: 2 of 10 correct -> interval 0.06-0.51, below 0.9
        store.add(_judge(f"s/d{i}", "correct" if i < 2 else "wrong"))
    with open(run / "review" / "labels.jsonl", "a") as fh:
        for bad in ({**_judge("s/d11", "correct"), "item": ["s/d11"]},  # a list as the item
                    {k: v for k, v in _judge("s/d11", "correct").items() if k != "verdict"},  # a key missing
                    {**_judge("s/d11", "correct"), "label": 0}, "just a string",
                    {**_judge("s/d11", "correct"), "judgement": ["j"]}, {**_judge("s/d11", "correct"), "id": [1]}):
            fh.write(json.dumps(bad) + "\n")
        fh.write(json.dumps(_judge("s/nope", "correct")) + "\n")  # an item not in the sample
    s = review_summary.summary(str(run))
    assert (s["malformed_lines"], s["unknown_items"]) == (6, 1)
    band = s["kept"]["p<0.1"]
    assert (band["judged"], band["correct"], band["wrong"], band["in_run"]) == (4, 3, 1, 900)
    assert band["precision"] == pytest.approx(0.75) and s["kept"]["p>=0.5"]["judged"] == 1
    d = s["drops"]["coarse/too_short"]
    assert d["in_run"] == 500 and d["ci95"][1] < 0.9
    assert s["min_precision"] == 0.9 and s["below_min_precision"] == ["coarse/too_short"]
    assert (s["kept_population_covered"], s["kept_population"]) == (900, 1000)
    r = _mdfs("review", run, "--summary", cwd=tmp_path, env={**os.environ, "COLUMNS": "160"})
    out = " ".join(r.stdout.split())
    assert r.returncode == 0, r.stderr
    assert "labels cover 900 of 1,000 kept documents" in out and "kept documents, per score band" in out
    assert "below precision 0.90 (review.min_precision): coarse/too_short" in out
    assert "skipped: 6 malformed line(s) in labels.jsonl, 1 judgement(s) of items not in the sample" in out
    md = "\n".join(review_summary.summary_markdown(s))
    assert "| p<0.1 | 900 | 4 | 3 | 1 | 0 | 0.75 |" in md and "| coarse/too_short | 500 | 10 | 2 | 8 |" in md


def test_html_report_review_section_has_kept_shares_kappa_and_rules_to_look_at(hostile_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(hostile_run, run)
    items, _ = review.load_sample(str(run))
    store = review.LabelStore(str(run))
    for it in items:
        for who in ("alice", "bob"):
            if it["outcome"] == "kept":
                store.add(_judge(it["item"], "correct", reviewer=who, label="high" if who == "alice" else "low"))
            else:
                store.add(_judge(it["item"], "wrong", reviewer=who))
    assert _mdfs("report", run, cwd=tmp_path).returncode == 0
    page = " ".join((run / "report" / "index.html").read_text().split())
    assert "Kept documents (correct = rightly kept)" in page and "kept corpus by class label" in page
    assert "labels cover" in page and "Cohen&#39;s kappa" in page and "agreement alice / bob" in page
    assert "rules whose 95% interval lies below precision 0.90" in page
    md = (run / "report" / "report.md").read_text()
    assert "Kept corpus by class label" in md and "Agreement alice / bob" in md


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
    from mdfs.pipeline.commands.review_app import create_app

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

def _browser(size=(1400, 1000)):
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("MDFS_REQUIRE_BROWSER"):
            pytest.fail("MDFS_REQUIRE_BROWSER is set but chromium / chromedriver are missing")
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver (CI installs them)")
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="mdfs-chromium-")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    # the window's size is not the page's (headless keeps some for its frame): the viewport exactly
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
    quit_ = drv.quit

    def quit_and_clean():
        quit_()
        shutil.rmtree(profile, ignore_errors=True)

    drv.quit = quit_and_clean
    return drv


def _start(run, *args):
    """``mdfs review RUN`` in a subprocess; (process, URL with token)."""
    proc = subprocess.Popen([sys.executable, "-m", "mdfs.pipeline.commands.cli", "review", str(run), "--reviewer", "alice",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    while line and "http://" not in line:
        line = proc.stdout.readline()
    assert "http://" in line and "?token=" in line, line
    return proc, line.split(": ", 1)[1].strip()


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
    proc.wait(10)


@pytest.fixture()
def server(hostile_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(hostile_run, run)
    proc, url = _start(run)
    assert url.startswith("http://127.0.0.1:")
    yield run, url, proc
    _stop(proc)


def _wait(drv, cond, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if drv.execute_script(cond):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {cond}")


def test_review_page_in_chromium_keyboard_resume_and_inert_text(server):
    from selenium.webdriver.common.action_chains import ActionChains

    run, url, _proc = server
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
        assert "x" * 5000 in html  # the 5,000-character URLs are there, and wrap: no sideways scroll
        assert drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
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
    from mdfs.pipeline.commands.review_app import allowed_hosts

    assert allowed_hosts("10.0.0.5", ["10.0.0.5"]) == {"10.0.0.5"} and "localhost" in allowed_hosts("127.0.0.1")


# --- durability: a torn last line, a killed server ----------------------------------------

def test_a_judgement_after_a_torn_line_is_not_lost(tmp_path):
    run = _fake_run(tmp_path)
    review.LabelStore(str(run)).add(_judge("s/d0", "correct"))
    with open(run / "review" / "labels.jsonl", "a") as fh:
        fh.write('{"judgement": "x", "item": "s/d1", "verd')  # a crash while writing
    store = review.LabelStore(str(run))
    assert store.add(_judge("s/d2", "wrong"))  # the page is told "written": it must be readable
    got, malformed = review.scan_labels(str(run))
    assert [j["item"] for j in got] == ["s/d0", "s/d2"] and malformed == 1 and store.torn_lines_ended == 1
    assert (run / "review" / "labels.jsonl").read_text().endswith("\n")


def _post(url, body, token=None, host=None, raw=None, timeout=10):
    """(status, headers, JSON or None) of a POST to /api/label of a running ``mdfs review``."""
    import urllib.error
    import urllib.parse
    import urllib.request

    u = urllib.parse.urlsplit(url)
    token = token or urllib.parse.parse_qs(u.query)["token"][0]
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(f"{u.scheme}://{u.netloc}/api/label", data=data, method="POST",
                                 headers={"X-Review-Token": token, "Content-Type": "application/json"})
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), None


def test_sigkill_between_posts_loses_no_judgement(hostile_run, tmp_path):
    import signal

    run = tmp_path / "run"
    shutil.copytree(hostile_run, run)
    items = [i["item"] for i in review.load_sample(str(run))[0]]
    proc, url = _start(run)
    try:
        assert _post(url, {"judgement": "first-judgement", "item": items[0], "verdict": "correct"})[0] == 200
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no clean shutdown: what was answered "saved" must be on disk
        proc.wait(10)
    path = run / "review" / "labels.jsonl"
    assert path.read_text().endswith("\n") and [j["judgement"] for j in review.read_labels(str(run))] == [
        "first-judgement"]
    with open(path, "a") as fh:  # what a kill in the middle of a write leaves
        fh.write('{"judgement": "torn-judgement", "item": "%s", "ver' % items[1])
    proc, url = _start(run)
    try:
        status, _headers, res = _post(url, {"judgement": "after-restart", "item": items[2], "verdict": "wrong"})
        assert status == 200 and res["written"] is True
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    got, malformed = review.scan_labels(str(run))
    assert [j["judgement"] for j in got] == ["first-judgement", "after-restart"] and malformed == 1
    assert _mdfs("review", run, "--summary", "--json", cwd=tmp_path).returncode == 0


# --- server edges --------------------------------------------------------------------------

def test_server_refuses_bad_bodies_with_400_and_big_ones_with_413(hostile_run):
    c, token = _client(hostile_run)
    base = {"base_url": "http://127.0.0.1:5000", "headers": {"X-Review-Token": token}}
    item = review.load_sample(str(hostile_run))[0][0]["item"]
    good = {"judgement": "j-12345678", "item": item, "verdict": "correct"}

    def post(**kw):
        return c.post("/api/label", **base, **kw).status_code

    assert post(data=b"x" * (65 * 1024), content_type="application/json") == 413
    for body in ([good], "correct", 7, None, True):  # JSON, but not an object
        assert post(json=body) == 400, body
    for bad in ([item], {"item": item}, 3):  # the item of the wrong type
        assert post(json={**good, "item": bad}) == 400, bad
    nested = b'{"item": ' + b"[" * 50000 + b"]" * 50000 + b"}"
    assert post(data=nested[:60000], content_type="application/json") == 400  # truncated
    assert post(data=b"[" * 30000 + b"]" * 30000, content_type="application/json") == 400  # too deep to parse
    for label in (0, False, "", "nonsense", ["high"]):  # refused, not read as "no label"
        assert post(json={**good, "label": label}) == 400, label
    assert not (hostile_run / "review" / "labels.jsonl").exists()
    r = c.get("/?token=" + token, base_url="http://127.0.0.1:5000")
    assert r.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert c.get("/favicon.ico", base_url="http://127.0.0.1:5000").status_code == 204  # no token: not an error


def test_a_non_loopback_bind_needs_an_allow_list_and_only_those_names_work(hostile_run, tmp_path):
    r = _mdfs("review", hostile_run, "--host", "0.0.0.0", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("mdfs review: --host 0.0.0.0 would listen beyond")
    assert len(r.stderr.strip().splitlines()) == 1
    from mdfs.pipeline.commands.review_app import allowed_hosts

    assert allowed_hosts("0.0.0.0", ["192.0.2.7"]) == {"192.0.2.7"}
    assert allowed_hosts("127.0.0.2") == {"127.0.0.2"}
    # on loopback: a second address named by --allow-host works, a third does not
    proc, url = _start(hostile_run, "--host", "127.0.0.1", "--allow-host", "127.0.0.2")
    try:
        item = review.load_sample(str(hostile_run))[0][0]["item"]
        body = {"judgement": "j-allowlist", "item": item, "verdict": "unsure"}
        status, headers, _ = _post(url, body, host="127.0.0.2")
        assert status == 200 and headers["Server"] == "mdfs-review"  # no Werkzeug/Python version banner
        assert _post(url, body, host="127.0.0.3")[0] == 403
    finally:
        _stop(proc)
        (hostile_run / "review" / "labels.jsonl").unlink(missing_ok=True)


# --- the page keeps the screener oriented (Chromium) ---------------------------------------

READY = "return document.getElementById('app').dataset.ready === '1'"
IN_VIEW = """const r = document.getElementById(arguments[0]).getBoundingClientRect();
return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth;"""
# the page's POSTs answered 400 ms late: a second key then lands while the first is in flight
SLOW_POSTS = """const f = window.fetch; window.fetch = (u, o) => (o && o.method === 'POST')
  ? new Promise(r => setTimeout(r, 400)).then(() => f(u, o)) : f(u, o);"""


def _labels(run):
    return review.read_labels(str(run))


def _text(drv, ident):
    return drv.execute_script(f"return document.getElementById('{ident}').textContent")


def _keys(drv, keys):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(drv).send_keys(keys).perform()


def test_a_fast_second_key_neither_rejudges_nor_skips(server):
    run, url, _proc = server
    drv = _browser()
    try:
        drv.get(url)
        _wait(drv, READY)
        drv.execute_script(SLOW_POSTS)
        first = drv.execute_script("return document.getElementById('position').textContent")
        _keys(drv, "cw")  # w arrives while c is still being saved
        _wait(drv, "return document.getElementById('status').textContent.startsWith('saved item 1')")
        judged = _labels(run)
        assert [(j["verdict"]) for j in judged] == ["correct"], judged
        assert first.startswith("item 1 of") and _text(drv, "position").startswith("item 2 of")  # item 2: not skipped
        time.sleep(0.6)
        assert len(_labels(run)) == 1 and _text(drv, "position").startswith("item 2 of")
    finally:
        drv.quit()


@pytest.mark.parametrize("size", [(1280, 800), (1400, 900)])
def test_actions_label_and_save_status_stay_in_view(server, size):
    run, url, _proc = server
    drv = _browser(size)
    try:
        drv.get(url)
        _wait(drv, READY)
        total = len(review.load_sample(str(run))[0])
        for k in range(total):
            drv.execute_script("document.getElementById('app').scrollTop = 1e6")  # read to the end of the item
            for ident in ("meaning", "label", "status", "position"):
                assert drv.execute_script(IN_VIEW, ident), (ident, k)
            for b in drv.find_elements("css selector", "button[data-verdict]"):
                assert drv.execute_script("const r = arguments[0].getBoundingClientRect();"
                                          "return r.top >= 0 && r.bottom <= window.innerHeight", b), k
            assert drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), k
            before = _text(drv, "position")
            _keys(drv, "n")
            if k < total - 1:
                _wait(drv, f"return document.getElementById('position').textContent !== {json.dumps(before)}")
    finally:
        drv.quit()


def test_a_stopped_server_shows_at_once_in_view(server):
    run, url, proc = server
    drv = _browser((1280, 800))
    try:
        drv.get(url)
        _wait(drv, READY)
        drv.execute_script("document.getElementById('app').scrollTop = 1e6")
        _stop(proc)
        start = time.time()  # without a key: the page notices by itself
        _wait(drv, "return document.getElementById('status').classList.contains('failed')", timeout=8)
        assert time.time() - start < 6 and "SERVER NOT REACHABLE" in _text(drv, "status")
        assert drv.execute_script(IN_VIEW, "status") and drv.execute_script("return window.innerHeight") == 800
        _keys(drv, "c")
        _wait(drv, "return document.getElementById('status').textContent.startsWith('NOT SAVED')", timeout=8)
        assert drv.execute_script(IN_VIEW, "status") and "not reachable" in _text(drv, "status")
        assert not _labels(run)
    finally:
        drv.quit()


def test_going_back_keeps_or_clears_the_label_as_the_page_says(server):
    run, url, _proc = server
    drv = _browser()
    try:
        drv.get(url)
        _wait(drv, READY)
        _keys(drv, "1c")
        _wait(drv, "return document.getElementById('position').textContent.startsWith('item 2 ')")
        assert "class label: none" in _text(drv, "label")
        for keys, label, says in (("w", "high", "your earlier label: a verdict keeps it"),
                                  ("0w", None, "cleared: a verdict saves no label")):
            _keys(drv, "p")
            _wait(drv, "return document.getElementById('position').textContent.startsWith('item 1 ')")
            assert "class label: high (your earlier label: a verdict keeps it; 0 clears it)" in _text(drv, "label")
            n = len(_labels(run))
            _keys(drv, keys[:-1])
            if keys[:-1]:
                assert says in _text(drv, "label")
            _keys(drv, keys[-1])
            _wait(drv, "return document.getElementById('status').textContent.startsWith('saved item 1: wrong')")
            j = _labels(run)[n]
            assert (j["verdict"], j["label"]) == ("wrong", label)
        help_text = " ".join(_text(drv, "app").split())
        assert "for a kept document, correct means it rightly stays in the corpus" in help_text
    finally:
        drv.quit()


def test_cells_are_clickable_and_the_sample_ends_in_an_all_done_state(hostile_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(hostile_run, run)
    review.draw_sample(str(run), 1, 1)  # one item per cell: few enough to judge them all
    items, meta = review.load_sample(str(run))
    # a 5,000-character URL and integer / large signals on the first item
    items[0]["url"] = "https://example.org/" + "y" * 5000
    items[0]["signals"] = {"lines": 9, "chars": 669100, "ratio": 0.28571428}
    (run / "review" / "sample.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    proc, url = _start(run)
    drv = _browser((1280, 800))
    try:
        drv.get(url)
        _wait(drv, READY)
        assert drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        sig = _text(drv, "signals")
        assert "lines9" in sig and "chars669,100" in sig and "ratio0.2857" in sig and "9.000" not in sig
        assert "judged by you / sampled" in _text(drv, "cells")
        lis = drv.find_elements("css selector", "#celllist li")
        assert len(lis) == len(meta["cells"]) and lis[0].text.startswith("0/1 \u00b7 ")
        lis[-1].click()
        _wait(drv, f"return document.getElementById('position').textContent.startsWith('item {len(items)} ')")
        assert "current" in drv.find_elements("css selector", "#celllist li")[-1].get_attribute("class")
        assert drv.execute_script("const li = document.querySelector('#celllist li.current').getBoundingClientRect();"
                                  "return li.top >= 0 && li.bottom <= window.innerHeight")
        for n in range(len(items)):
            _keys(drv, "u")
            _wait(drv, f"return document.getElementById('judged').textContent.startsWith('{n + 1} of')")
        _wait(drv, "return !document.getElementById('alldone').hidden")
        assert f"all {len(items)} items judged" in _text(drv, "alldone") and drv.execute_script(IN_VIEW, "alldone")
        assert len(_labels(run)) == len(items) == len({j["item"] for j in _labels(run)})
    finally:
        drv.quit()
        _stop(proc)


def test_report_excerpts_end_at_a_word_with_an_ellipsis():
    from mdfs.pipeline.commands.html_report import excerpt

    assert excerpt("The quick brown fox jumps over the la", 400) == "The quick brown fox jumps over the \u2026"
    assert excerpt("The quick brown fox", 19) == "The quick brown fox"  # the whole document: no mark
    assert excerpt("中文文本" * 10, 400) == "中文文本" * 10 + " \u2026"  # no spaces: every character kept
    assert excerpt(None, 10) is None


# --- the closed loop: labels -> model -> refilter -> review ---------------------------------

def _simulated_reviewer(run, reviewer="alice"):
    """Judges every sampled item (a fixed rule standing in for a person): drops are right and
    low quality (every third an advertisement), kept documents right and of high quality."""
    store = review.LabelStore(str(run))
    for n, it in enumerate(review.load_sample(str(run))[0]):
        label = "high" if it["outcome"] == "kept" else ("ad" if n % 3 == 0 else "low")
        store.add(_judge(it["item"], "correct", reviewer=reviewer, label=label))


def test_the_review_loop_retrains_and_refilters_the_same_run(tmp_path):
    """The README / docs/REVIEW.md sequence, on the bundled samples: sample, labels, export,
    train-classifier, refilter the same run with the new model, sample and summarise again."""
    out, new = tmp_path / "out", tmp_path / "out_reviewed"
    assert _mdfs("run", "--output", out, "--set", "output.candidates=true", cwd=tmp_path).returncode == 0
    assert _mdfs("sample", out, "--per-cell", 5, cwd=tmp_path).returncode == 0
    _simulated_reviewer(out)
    r = _mdfs("review", out, "--export-training", tmp_path / "reviewed.jsonl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "reviewed.jsonl").read_text().splitlines()]
    assert {x["label"] for x in rows} == {"low", "high", "ad"} and len(rows) >= 20
    r = _mdfs("train-classifier", "--train", tmp_path / "reviewed.jsonl", "--output", tmp_path / "models" / "reviewed",
              "--kind", "fasttext", "--labels", "high,low,ad", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _mdfs("refilter", out, "--output", new, "--set", f"fine.fasttext_model={tmp_path / 'models' / 'reviewed'}",
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    funnel = json.loads((new / "funnel.json").read_text())
    assert "fine" in funnel["stages"]
    scored = sum(sum(e.get("rescored", {}).values()) for e in funnel["sources"].values())
    assert scored > 0  # the new model scored the documents (the run had no stored scores to reuse)
    assert _mdfs("sample", new, "--per-cell", 5, cwd=tmp_path).returncode == 0
    _simulated_reviewer(new)
    r = _mdfs("review", new, "--summary", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["judgements"] == s["sample_items"] and s["kept"]
    earlier = json.loads(_mdfs("review", out, "--summary", "--json", cwd=tmp_path).stdout)
    assert s["run"] != earlier["run"] and earlier["judgements"] > 0
