"""Read-back surfaces (issue #39): what each hostile case gives, and what the
checks cost against a peer measured in the same run.  Writes
bench/read_back_results.json and the "Read-back surfaces" section of
docs/HOSTILE_INPUT.md (bench/hostile.py keeps it when it rewrites the page).

  python bench/read_back.py
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "read_back_results.json"
DOC = REPO / "docs" / "HOSTILE_INPUT.md"
HEADING = "## Read-back surfaces"


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def paths(tmp: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from test_read_back import HOSTILE_NAMES

    from mdfs.pipeline.io.readback import PathEscape, confine

    root, outside = tmp / "root", tmp / "outside"
    for d in (root, outside):
        d.mkdir()
        (d / "f.warc.gz").write_bytes(b"x")
    os.symlink(outside / "f.warc.gz", root / "link.warc.gz")
    os.symlink(outside, root / "linkdir")
    m = {"root": root, "outside": outside}
    refused = 0
    for make in HOSTILE_NAMES:
        try:
            confine(str(root), make(m))
        except PathEscape:
            refused += 1
    from test_cc_index import CC_SAMPLE, REL, sample_index

    from mdfs.pipeline.config import load_config
    from mdfs.pipeline.io.readers import FetchIndexedDoFn
    from mdfs.pipeline.io.readers import cc_index as cci

    (root / REL).parent.mkdir(parents=True)
    shutil.copy(CC_SAMPLE, root / REL)
    n = 5_000
    per_row = _best(lambda: [confine(str(root), REL) for _ in range(n)]) / n
    cfg = load_config(sets=["sources.cc.format=cc_index", f"sources.cc.paths={root}/index.parquet",
                            f"sources.cc.warc_root={root}", "sources.cc.languages=[]"])
    fn = FetchIndexedDoFn("cc", cfg.sources["cc"], cfg.read)
    fn.setup()
    rows = [cci.IndexRow("cc", "i.parquet", i, r["url"], REL, r["warc_record_offset"], r["warc_record_length"])
            for i, r in enumerate(sample_index()[0])]
    fetch = _best(lambda: [list(fn.process(r)) for r in rows]) / len(rows)
    return {"hostile_names": len(HOSTILE_NAMES), "refused": refused, "confine_us_per_row": round(per_row * 1e6, 1),
            "fetch_us_per_row": round(fetch * 1e6, 1), "share_of_fetch": round(per_row / fetch, 3)}


def loops(tmp: Path) -> dict:
    from mdfs.pipeline.io.readers import expand_pattern

    (tmp / "d").mkdir()
    (tmp / "d" / "a.jsonl").write_text('{"text": "x"}\n')
    os.symlink("..", tmp / "d" / "loop")
    entries = len(glob.glob(f"{tmp}/**/*.jsonl", recursive=True))
    files, unreadable = expand_pattern(f"{tmp}/**/*.jsonl")
    return {"glob_entries": entries, "files_read": len(files), "unreadable": len(unreadable)}


def models(tmp: Path) -> dict:
    import fasttext

    from mdfs.classifiers.data import read_jsonl
    from mdfs.classifiers.fasttext_model import FastTextClassifier, train
    from mdfs.classifiers.integrity import digest

    data = read_jsonl(str(REPO / "tests" / "data" / "sms_spam_train.jsonl"))
    model = Path(train(data.texts, data.labels, str(tmp / "ft"), data.label_names, epoch=5))
    fasttext.FastText.eprint = lambda *a, **k: None
    load = _best(lambda: fasttext.load_model(str(model)))
    sha = _best(lambda: digest(model))
    meta = json.loads((tmp / "ft" / "labels.json").read_text())
    meta.pop("files")
    shutil.copytree(tmp / "ft", tmp / "foreign")
    (tmp / "foreign" / "labels.json").write_text(json.dumps(meta))
    unrecorded = _best(lambda: FastTextClassifier(str(tmp / "foreign")))
    recorded = _best(lambda: FastTextClassifier(str(tmp / "ft")))
    return {"model_bytes": model.stat().st_size, "load_s": round(load, 4), "sha256_s": round(sha, 4),
            "recorded_load_s": round(recorded, 4), "unrecorded_load_s": round(unrecorded, 4)}


def stores(tmp: Path) -> dict:
    """check_parquet (opens, types, nulls, every row group decoded) against
    reading the same file with pyarrow, on the sample run's candidates x copies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mdfs.pipeline.commands.cli import main as mdfs_main
    from mdfs.pipeline.io.readback import check_parquet
    from mdfs.schemas import SCHEMAS

    run = tmp / "run"
    assert mdfs_main(["run", "--output", str(run), "--set", "output.candidates=true"]) == 0
    table = pq.read_table(sorted((run / "candidates" / "documents").glob("*.parquet"))[0])
    big = pa.concat_tables([table] * max(1, 20_000 // table.num_rows))
    path = tmp / "candidates.parquet"
    pq.write_table(big, path, row_group_size=4096)
    check = _best(lambda: check_parquet(str(path), SCHEMAS["candidates"]))
    read = _best(lambda: pq.read_table(path))
    return {"rows": big.num_rows, "file_mb": round(path.stat().st_size / 1e6, 1), "check_s": round(check, 3),
            "read_s": round(read, 3), "ratio": round(check / read, 2)}


def pii(tmp: Path) -> dict:
    import re

    sys.path.insert(0, str(tmp))
    (tmp / "bench_validators.py").write_text("import time\ndef block(t):\n    time.sleep(3600)\n")
    from helpers import real_en_texts, real_zh_texts

    from mdfs.pipeline.stages.pii_custom import CUSTOM_BUDGET_S, CustomScanner, CustomTimeout

    texts = (real_zh_texts() + real_en_texts()) * 100
    entries = [{"type": "emp", "pattern": r"EMP-\d{6}"}]
    pattern = re.compile(entries[0]["pattern"])
    scanner = CustomScanner(entries)
    scanner.find("warm up")
    child = _best(lambda: [scanner.find(t) for t in texts], 1)
    inproc = _best(lambda: [list(pattern.finditer(t)) for t in texts], 1)
    scanner.close()
    out = {"docs": len(texts), "child_ms_per_doc": round(child / len(texts) * 1e3, 3),
           "in_process_ms_per_doc": round(inproc / len(texts) * 1e3, 4), "budget_s": CUSTOM_BUDGET_S}
    for name, entry, text in (("blocking", {"type": "b", "pattern": "EMP-\\d{6}",
                                            "validator": "bench_validators:block"}, "EMP-123456"),
                              ("backtracking", {"type": "a", "pattern": "(a|aa)+$"}, "a" * 40 + "!")):
        s = CustomScanner([entry])
        s.find("warm up")
        t0 = time.perf_counter()
        try:
            s.find(text)
            outcome = "finished"
        except CustomTimeout:
            outcome = "pii_timeout"
        out[name] = {"outcome": outcome, "seconds": round(time.perf_counter() - t0, 2)}
        s.close()
    return out


def yaml_bomb(tmp: Path) -> dict:
    from mdfs.pipeline.io.readback import ReadBackError, load_yaml

    text = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (tmp / "config.yaml").write_text(text)
    t0 = time.perf_counter()
    try:
        load_yaml(str(tmp / "config.yaml"))
        outcome = "read"
    except ReadBackError:
        outcome = "refused"
    return {"bytes": len(text), "expanded_nodes": 9 ** 9, "outcome": outcome,
            "seconds": round(time.perf_counter() - t0, 4)}


def section(r: dict) -> list[str]:
    p, lo, m, s, pi, y = r["paths"], r["loops"], r["models"], r["stores"], r["pii"], r["yaml_bomb"]
    return [
        HEADING, "",
        "Besides the corpus, mdfs reads back index rows, an earlier run's `dedup_state/`, candidate store, "
        "`dropped/` and `failed/`, `funnel.json`, statistics and `config.yaml` (`mdfs refilter`, `--dedup-against`, "
        "`mdfs report`), classifier models, evaluation sets and user PII patterns and validators. The rules:", "",
        "* **A path from data stays inside its root** (`pipeline/io/readback.py`, `confine`): a `warc_filename` may "
        "not be absolute, carry a URL scheme, a `..` or `.` segment, a backslash or NUL, plainly or "
        "percent-encoded (up to 4 rounds of decoding); on a local root the path is then resolved (links "
        "followed) and must still lie inside the resolved root, and the resolved path is the one opened. "
        "Files inside a run directory must resolve inside it.",
        "* **Every artifact read back is checked at preflight**, before anything is written: JSON and YAML "
        "for the shape the command reads (YAML aliases counted on the node graph), the configuration against "
        "the schema, every Parquet file opened and every row group decoded against the schema mdfs writes "
        "it with (types, no nulls in non-null fields, each MinHash signature `num_perm` x 4 bytes). A damaged "
        "one is refused in one line naming the file and what is wrong, exit 2.",
        "* **Models**: training records each weight file's size and SHA-256 (`labels.json`, "
        "`mdfs_classifier.json`, under `files`), checked before the file is parsed; a model without that "
        "record must load completely and is reported unverified.",
        "* **User patterns and validators are bounded**: nested quantifiers with nothing between iterations "
        "are refused at preflight; at run time a record's custom patterns and validators run in one child "
        "process that is killed past 2 s (`pipeline/stages/pii_custom.py`, `CUSTOM_BUDGET_S`): that record is a "
        "`pii_timeout` dead letter and the next one gets a fresh child.",
        "* **Counting**: an index batch's rows are given out only once the whole batch decoded, so a damaged "
        "batch is one dead letter for the rest of its row group, never counted twice; `**` matches are "
        "taken once per real path.", "",
        f"Generated by `python bench/read_back.py` on {r['date']} (a loaded, shared 2-core machine: ratios are "
        "against a peer measured in the same run). The planted cases are in `tests/test_read_back.py`.", "",
        "| surface | hostile input | outcome | measured |", "|---|---|---|---|",
        f"| `cc_index` rows | {p['hostile_names']} names that leave `warc_root` (`..`, absolute, `file://`, `s3://`, "
        "`https://`, `C:/`, `%2e%2e`, `%2F`, double-encoded, backslashes, a file link and a folder link pointing "
        f"out, empty) | {p['refused']} of {p['hostile_names']} refused: one `path_outside_root` dead letter naming "
        f"the index row; the file is never opened | {p['confine_us_per_row']} µs per row, "
        f"{p['share_of_fetch'] * 100:.1f} % of fetching and classifying a row of the sample from a local "
        f"root ({p['fetch_us_per_row']} µs) |",
        f"| `**` globs | a link loop (`d/loop -> ..`) | Python's `**` returns {lo['glob_entries']} paths; "
        f"{lo['files_read']} file read (by real path), {lo['unreadable']} dead letters | |",
        f"| fastText model ({m['model_bytes'] / 1e6:.1f} MB) | cut short, changed, random bytes | refused in one "
        "line naming the file (size, SHA-256 recorded at training; fastText's own magic-number check) | "
        f"SHA-256 {m['sha256_s']} s vs parse {m['load_s']} s; load with the check {m['recorded_load_s']} s |",
        f"| fastText model mdfs did not train | cut short by 10 bytes (loads without complaint in fastText) | "
        "refused: saved again it is larger than the file | load with the full-load check "
        f"{m['unrecorded_load_s']} s (reported unverified) |",
        "| BERT (safetensors) | cut short, changed | refused (recorded size/SHA-256; unrecorded: safetensors "
        "refuses a header that does not cover the file) | |",
        f"| candidate store, dropped/, failed/, dedup state | truncated, a column removed, a type changed, nulls, "
        f"a signature of the wrong length, a link out of the run | refused at preflight in one line naming the "
        f"file and column | every row group decoded: {s['check_s']} s for {s['rows']:,} candidates "
        f"({s['file_mb']} MB) vs {s['read_s']} s to read them ({s['ratio']}x) |",
        f"| saved `config.yaml` | an alias bomb ({y['bytes']} bytes, {y['expanded_nodes']:,} nodes expanded) | "
        f"{y['outcome']} in {y['seconds']} s (aliases counted on the node graph, limit 200,000) | |",
        "| `funnel.json`, `pipeline_stats.json`, `_params.json` | truncated, reshaped, a wrong type | refused in one "
        "line naming the file and the key | |",
        "| `pii.custom` | `(a+)+`, `(\\w+\\s?)*`, `(.*a){20}` | refused at preflight (nested quantifier) | |",
        f"| `pii.custom` | `(a\\|aa)+$` (not caught at preflight) on 40 a's | {pi['backtracking']['outcome']} "
        f"after {pi['backtracking']['seconds']} s (budget {pi['budget_s']:g} s per record); the next record gets "
        "a fresh child | |",
        f"| `pii.custom` validator | `time.sleep(3600)` | {pi['blocking']['outcome']} after "
        f"{pi['blocking']['seconds']} s | |",
        f"| `pii.custom` cost | `EMP-\\d{{6}}` over {pi['docs']:,} real pages | | child process "
        f"{pi['child_ms_per_doc']} ms per page vs {pi['in_process_ms_per_doc']} ms in process |",
        "| evaluation sets | a CSV field of 200,000 characters, binary, GBK, a cut gzip, a cut Parquet | read "
        "(limit 20 MB, `read.max_decompressed_bytes`); the rest refused naming the file | |",
        "",
        "A property test (`tests/test_read_back.py`, 25 examples) tampers a real run directory at random "
        "(truncates a file, removes a column or key, changes a type) and calls the checks of `mdfs refilter`, "
        "`--dedup-against` and `mdfs report` in-process: each either goes on or refuses in one line.",
    ]


def write_section(r: dict) -> None:
    text = DOC.read_text(encoding="utf-8")
    lines = section(r)
    if HEADING in text:
        head, _, rest = text.partition(HEADING)
        nxt = rest.find("\n## ")
        text = head + "\n".join(lines) + ("\n" + rest[nxt + 1:] if nxt >= 0 else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    DOC.write_text(text, encoding="utf-8")


def main() -> None:
    r = {"date": datetime.date.today().isoformat()}
    for name, fn in (("paths", paths), ("loops", loops), ("models", models), ("yaml_bomb", yaml_bomb),
                     ("pii", pii), ("stores", stores)):
        with tempfile.TemporaryDirectory() as tmp:
            r[name] = fn(Path(tmp))
            print(name, r[name], flush=True)
    RESULTS.write_text(json.dumps(r, indent=2, ensure_ascii=False) + "\n")
    write_section(r)


if __name__ == "__main__":
    main()
