"""However the sources are named (--source, a --config file, --set), `mdfs
config` shows the same sources, and no bundled sample joins them."""
from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdfs.pipeline.commands import cli

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
GLOBS = st.tuples(st.sampled_from(["d", "/data/x", "some dir"]), st.sampled_from(["*", "part-?", "a[0-9]"]),
                  st.sampled_from([".jsonl", ".jsonl.gz", ".parquet", ".warc.gz"])).map(lambda t: f"{t[0]}/{t[1]}{t[2]}")
SETUPS = st.dictionaries(NAMES, st.lists(GLOBS, min_size=1, max_size=3, unique=True), min_size=1, max_size=3)


def _config_sources(argv, capsys) -> dict:
    assert cli.main(["config", *argv]) == 0
    return yaml.safe_load(capsys.readouterr().out)["sources"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setup=SETUPS)
def test_three_ways_of_naming_sources_agree(setup, tmp_path, capsys):
    by_flag = [f"--source={name}={g}" for name, globs in setup.items() for g in globs]
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump({"sources": {n: {"paths": g} for n, g in setup.items()}}))
    by_set = [f"--set=sources.{n}.paths={json.dumps(g)}" for n, g in setup.items()]
    seen = [_config_sources(argv, capsys) for argv in (by_flag, ["--config", str(file)], by_set)]
    assert seen[0] == seen[1] == seen[2]
    assert set(seen[0]) == set(setup)  # the samples never join
    assert {n: s["paths"] for n, s in seen[0].items()} == setup


def test_tuning_a_sample_source_keeps_the_samples(capsys):
    samples = _config_sources([], capsys)
    tuned = _config_sources(["--set", "sources.news.languages=[zh]"], capsys)
    assert set(tuned) == set(samples) and tuned["news"]["languages"] == ["zh"]
    mine = _config_sources(["--set", "sources.mine.paths=[m.parquet]", "--set", "sources.mine.fields={text: body}"],
                           capsys)
    assert list(mine) == ["mine"] and mine["mine"]["fields"]["text"] == "body"
    assert cli.main(["config", "--set", "sources.newz.languages=[zh]"]) == 2
    assert "sources.newz: no such source (did you mean news?)" in capsys.readouterr().err
