"""Checks for everything mdfs reads back that is not the corpus: paths named
by data (index rows), an earlier run's dedup state, candidate store, dropped/
and failed/ files, funnel, stats and saved configuration.

Each check raises ``ReadBackError`` with one line that names the file and
what is wrong, so a command refuses a damaged artifact before anything is
written (exit 2), never with a traceback and never in a job that has started.
Parquet files are opened and every row group decoded here (bounded memory:
one batch at a time), because a file whose footer is intact but whose pages
are not would otherwise stop the job after it started.
"""
from __future__ import annotations

import functools
import json
import os
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

if TYPE_CHECKING:
    from ..schema import MdfsConfig


class ReadBackError(ValueError):
    """A read-back artifact is damaged or not what mdfs wrote (one line)."""


class PathEscape(ValueError):
    """A path named by data would leave its configured root."""


# --- paths named by data -------------------------------------------------------------------

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")  # file:, s3:, http:, c: ... ; a data name carries none
MAX_UNQUOTE = 4  # %252e%252e is ".." after two rounds; any depth a filesystem might decode is checked


def _lexical_problem(name: str) -> str | None:
    if not isinstance(name, str) or not name:
        return "empty or not a string"
    forms, seen = [name], name
    for _ in range(MAX_UNQUOTE):  # percent-encoded separators and dots, however often encoded
        decoded = unquote(seen)
        if decoded == seen:
            break
        forms.append(decoded)
        seen = decoded
    for form in forms:
        if "\x00" in form:
            return "holds a NUL byte"
        if _SCHEME.match(form):
            return f"names a URL scheme ({form.split(':', 1)[0]}:)"
        if form.startswith(("/", "\\")):
            return "is an absolute path"
        if "\\" in form:
            return "holds a backslash (a separator on some filesystems)"
        if any(part in ("..", ".") for part in form.split("/")):
            return "climbs out with a '..' (or '.') segment"
        if form.count("/") > name.count("/"):
            return "holds a percent-encoded separator"
    return None


def confine(root: str, name: str) -> str:
    """``root/name`` when ``name`` (from data) stays inside ``root``; raises PathEscape.

    The name may not be absolute, carry a URL scheme, a ``..`` or ``.`` segment, a
    backslash or NUL, plainly or percent-encoded.  On a local root the joined path
    is then resolved (symlinks followed) and must still lie inside the resolved
    root; the resolved path is returned, so the file checked is the file opened."""
    why = _lexical_problem(name)
    if why:
        raise PathEscape(f"{name!r} {why}; a path from data must be relative to warc_root")
    joined = root.rstrip("/") + "/" + name
    if "://" in root:
        return joined
    real_root = _real_root(root)
    # the folder resolved once per worker (rows of one WARC file share it), the file itself every time
    real = os.path.join(_real_root(os.path.dirname(joined)), os.path.basename(joined))
    if os.path.islink(real):
        real = os.path.realpath(real)
    if os.path.commonpath([real_root, real]) != real_root:
        raise PathEscape(f"{name!r} resolves to {real}, outside warc_root {real_root} (a symlink points out)")
    return real


@functools.lru_cache(maxsize=4096)
def _real_root(folder: str) -> str:
    return os.path.realpath(folder)


# --- JSON and YAML read back ---------------------------------------------------------------

MAX_YAML_NODES = 200_000  # a saved configuration has a few hundred nodes; an alias bomb has billions


def _expanded_nodes(node, memo: dict, limit: int) -> int:
    import yaml

    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = limit + 1  # a node inside itself (a recursive alias) never ends: over the limit
    n = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            n += _expanded_nodes(child, memo, limit)
            if n > limit:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            n += _expanded_nodes(k, memo, limit) + _expanded_nodes(v, memo, limit)
            if n > limit:
                break
    memo[key] = n
    return n


def load_yaml(path: str, max_nodes: int = MAX_YAML_NODES):
    """A YAML file read back: safe types only, and refused when its aliases expand
    past ``max_nodes`` nodes (a "billion laughs" document is a few hundred bytes)."""
    import yaml

    text = read_text(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ReadBackError(f"{path}: not YAML ({_first_line(exc)})") from None
    if node is None:
        raise ReadBackError(f"{path}: empty")
    if _expanded_nodes(node, {}, max_nodes) > max_nodes:
        raise ReadBackError(f"{path}: its aliases expand past {max_nodes:,} nodes (an alias bomb?); "
                            "mdfs never writes such a file")
    return yaml.safe_load(text)


def load_json(path: str):
    text = read_text(path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ReadBackError(f"{path}: not JSON ({exc})") from None


def read_text(path: str) -> str:
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            raw = fh.read()
    except Exception as exc:  # noqa: BLE001 - missing, no permission, a directory
        raise ReadBackError(f"{path}: cannot be read ({type(exc).__name__}: {_first_line(exc)})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadBackError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def expect(path: str, value, shape, where: str = "") -> None:
    """``value`` against ``shape``: a type, a tuple of types, ``{key: shape}`` (keys
    required; ``"*"``: every value), or ``[shape]`` (every item)."""
    here = where or "the top level"
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise ReadBackError(f"{path}: {here} is {type(value).__name__}, not a mapping")
        for key, sub in shape.items():
            if key == "*":
                for k, v in value.items():
                    expect(path, v, sub, f"{where}.{k}" if where else str(k))
            elif key not in value:
                raise ReadBackError(f"{path}: {here} has no {key!r}")
            else:
                expect(path, value[key], sub, f"{where}.{key}" if where else key)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise ReadBackError(f"{path}: {here} is {type(value).__name__}, not a list")
        for i, v in enumerate(value):
            expect(path, v, shape[0], f"{where}[{i}]")
    elif not isinstance(value, shape) or (isinstance(value, bool) and bool not in _types(shape)):
        names = "/".join(t.__name__ for t in _types(shape))
        raise ReadBackError(f"{path}: {here} is {json.dumps(value)[:60]}, not {names}")


def _types(shape) -> tuple:
    return shape if isinstance(shape, tuple) else (shape,)


# --- Parquet read back ----------------------------------------------------------------------

def check_parquet(path: str, schema, columns=None, row_check=None, decode: bool = True) -> int:
    """Rows of one Parquet file, after checking that it opens, has ``columns``
    (default: every field of ``schema``) with their types, no null in a field
    the schema makes non-null, and that every row group decodes.  ``row_check``
    (batch, its first row -> problem or None) checks each batch further.
    Without ``decode`` only the footer is read (nulls from its statistics)."""
    import pyarrow.parquet as pq

    wanted = [schema.field(c) for c in (columns or schema.names)]
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
            pf = pq.ParquetFile(raw)
            have = pf.schema_arrow
            for f in wanted:
                if f.name not in have.names:
                    raise ReadBackError(f"{path}: no column {f.name!r} (not a file mdfs wrote, or damaged)")
                got = have.field(f.name).type
                if not got.equals(f.type):
                    raise ReadBackError(f"{path}: column {f.name!r} is {got}, mdfs writes {f.type}")
            if not decode:
                _footer_nulls(path, pf, wanted)
                return pf.metadata.num_rows
            rows = 0
            for batch in pf.iter_batches(batch_size=4096, columns=[f.name for f in wanted]):
                for f in wanted:
                    if not f.nullable and batch.column(f.name).null_count:
                        raise ReadBackError(f"{path}: column {f.name!r} holds nulls (row {rows + _first_null(batch.column(f.name))})")
                problem = row_check(batch, rows) if row_check else None
                if problem:
                    raise ReadBackError(f"{path}: {problem}")
                rows += batch.num_rows
            if rows != pf.metadata.num_rows:
                raise ReadBackError(f"{path}: {rows} rows decoded, the footer says {pf.metadata.num_rows}")
            return rows
    except ReadBackError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated, not Parquet, a damaged page
        raise ReadBackError(f"{path}: unreadable Parquet ({type(exc).__name__}: {_first_line(exc)})") from None


def _footer_nulls(path: str, pf, wanted) -> None:
    meta = pf.metadata
    leaf = {meta.schema.column(i).path: i for i in range(meta.num_columns)}  # flat columns are their own leaf
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for f in wanted:
            if f.nullable or pa_is_nested(f.type) or f.name not in leaf:
                continue
            stats = group.column(leaf[f.name]).statistics
            if stats is not None and stats.has_null_count and stats.null_count:
                raise ReadBackError(f"{path}: column {f.name!r} holds nulls (row group {g})")


def pa_is_nested(t) -> bool:  # a nested column's leaves are not the field: its statistics do not say
    import pyarrow.types as pt

    return pt.is_nested(t)


def _first_null(column) -> int:
    import pyarrow.compute as pc

    return pc.index(pc.is_null(column), True).as_py()


def parquet_files(folder: str, root: str | None = None) -> list[str]:
    """The Parquet files of a folder; with ``root`` (a run directory), each must
    resolve inside it (a link in a run directory may not point elsewhere)."""
    try:
        paths = sorted(m.path for m in FileSystems.match([f"{folder.rstrip('/')}/*.parquet"])[0].metadata_list)
    except Exception:  # noqa: BLE001 - no such folder
        return []
    for path in paths if root else []:
        inside(root, path)
    return paths


def inside(root: str, path: str) -> str:
    """``path`` when, on a local filesystem, it resolves inside ``root``; raises ReadBackError."""
    if "://" in root:
        return path
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise ReadBackError(f"{path}: resolves to {real}, outside the run directory {real_root} (a link points out)")
    return path


# --- an earlier run's files (refilter, report) ------------------------------------------------

NUM = (int, float)
FUNNEL_SHAPE = {"sources": {"*": {"read": int, "skipped_records": {"*": int}}}}
STATS_SHAPE = {"stages": {"*": {"*": {"documents": int, "bytes": int, "chars": int, "tokens": (int, type(None))}}}}
CONFIG_SHAPE = {"sources": {"*": dict}, "coarse": dict, "stats": {"tokenizer": (str, type(None))}, "output": dict,
                "fine": dict}


def load_funnel(path: str, root: str | None = None) -> dict:
    funnel = load_json(inside(root, path) if root else path)
    expect(path, funnel, FUNNEL_SHAPE)
    for name, e in funnel["sources"].items():
        if "decoded_with_replacement" in e:
            expect(path, e["decoded_with_replacement"], int, f"sources.{name}.decoded_with_replacement")
    return funnel


def load_stats(path: str, root: str | None = None) -> dict:
    stats = load_json(inside(root, path) if root else path)
    expect(path, stats, STATS_SHAPE)
    return stats


def load_config_file(path: str, root: str | None = None) -> dict:
    cfg = load_yaml(inside(root, path) if root else path)
    expect(path, cfg, CONFIG_SHAPE)
    return cfg


def check_stores(root: str, rejects: dict, with_scores: bool) -> None:
    """An earlier run's candidate store (and scores) and its dropped/ and failed/
    files, each opened and decoded against the schema mdfs writes it with."""
    from mdfs.schemas import SCHEMAS

    root = root.rstrip("/")
    folders = [("candidates", f"{root}/candidates/documents")]
    if with_scores:
        folders.append(("candidate_scores", f"{root}/candidates/scores"))
    for kind, folder in folders:
        for path in parquet_files(folder, root):
            check_parquet(path, SCHEMAS[kind])
    for kind, by_prefix in rejects.items():
        for paths in by_prefix.values():
            for path in paths:
                check_parquet(inside(root, path), SCHEMAS[kind])


# what ``mdfs report`` reads of a run, beyond what a refilter does
REPORT_FUNNEL = {"stages": [str], "sources": {"*": {
    "read": int, "kept": int, "dropped": int, "failed": int, "dropped_by_reason": {"*": int},
    "failed_by_error": {"*": int}, "pii_replaced": {"*": int}, "pii_documents": int, "fine_decided_by": dict}}}
REPORT_STATS = {"length_quantiles": {"*": [NUM]}, "languages": {"*": {"*": int}},
                "length_log2_histogram": {"*": {"*": int}}, "scores": dict}


DISPLAY_FUNNEL = {"total": {"read": int, "kept": int, "dropped": int, "failed": int, "invariant_ok": bool},
                  "sources": {"*": {"after_stage": {"*": int}, "invariant_ok": bool,
                                    "skipped_records": {"*": int}}}}


def load_funnel_for_display(root: str) -> dict:
    """``funnel.json`` with everything ``mdfs funnel`` and ``mdfs report`` print from it."""
    path = f"{root}/funnel.json"
    funnel = load_funnel(path, root)
    expect(path, funnel, REPORT_FUNNEL)
    expect(path, funnel, DISPLAY_FUNNEL)
    return funnel


def load_report_inputs(root: str) -> tuple[dict, dict, MdfsConfig]:
    """(funnel, stats, config) of a finished run for ``mdfs report``, each checked
    for what the report reads, with the Parquet columns it reads; the config as
    ``mdfs refilter`` rebuilds it (``checked_config``)."""
    from mdfs.schemas import SCHEMAS

    funnel, stats = load_funnel_for_display(root), load_stats(f"{root}/stats/pipeline_stats.json", root)
    expect(f"{root}/stats/pipeline_stats.json", stats, REPORT_STATS)
    cfg = checked_config(f"{root}/config.yaml", load_config_file(f"{root}/config.yaml", root))
    # footers and schemas only: the report reads these columns itself, and runs after every job
    if cfg.output.candidates:
        for path in parquet_files(f"{root}/candidates/documents", root):
            check_parquet(path, SCHEMAS["candidates"], ["source", "language", "signals", "token_count"], decode=False)
    for path in parquet_files(f"{root}/dropped", root):
        check_parquet(path, SCHEMAS["dropped"], ["source", "stage", "signals"], decode=False)
    return funnel, stats, cfg


def checked_config(path: str, cfg: dict) -> MdfsConfig:
    """An earlier run's configuration checked against the schema, as any
    configuration is (the effective one, as ``mdfs refilter`` rebuilds it)."""
    from ..config import as_given, load_config

    try:
        return load_config(None, None, base=as_given(cfg))
    except Exception as exc:  # noqa: BLE001 - ValueError from the schema, KeyError/TypeError from a reshaped file
        raise ReadBackError(f"{path}: not a configuration mdfs can read back ({type(exc).__name__}: "
                            f"{_first_line(exc) if str(exc) else ''})") from None
