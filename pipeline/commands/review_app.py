"""``mdfs review``: the local review web application (Flask, served by
werkzeug's threaded server).

Security: bound to 127.0.0.1 unless ``--host`` says otherwise (an address
beyond this machine only with ``--allow-host``); every request
needs the random token printed with the URL (query ``token`` or header
``X-Review-Token``, compared in constant time) and a ``Host`` header naming
the bound address (against DNS rebinding); the only files served are the two
bundled assets, by fixed name; page text reaches the browser as JSON and is
put into the page with ``textContent`` under a Content-Security-Policy that
allows no inline script, so a document holding ``<script>`` stays text.
"""
from __future__ import annotations

import hmac
import re
import secrets
import time
from pathlib import Path

from .review import VERDICTS, LabelStore, ReviewError, latest, load_sample, read_labels

ASSETS = Path(__file__).resolve().parents[1] / "resources" / "review"
STATIC = {"review.js": "application/javascript", "review.css": "text/css"}
JUDGEMENT_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
# A judgement is under 1 KB (ids, a verdict, a label name); 64 KiB leaves room and keeps one request
# from holding much memory (a 200 MB post once grew the server from 60 to 639 MB).
MAX_BODY = 64 * 1024


def _json_body(request):
    """The request's JSON, or None for a body that is not JSON (deeply nested JSON included:
    Python's parser raises RecursionError on it)."""
    import json

    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        return None

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mdfs review: {{ run }}</title>
<meta name="referrer" content="no-referrer">
<link rel="stylesheet" href="/static/review.css?token={{ token }}"></head>
<body><nav id="cells"><h3>progress per cell</h3>
<p class="legend">judged by you / sampled &middot; documents in the run &middot; cell (source / outcome / stage /
reason); click a cell to go to it</p><ul id="celllist"></ul></nav>
<main id="app" data-token="{{ token }}" data-reviewer="{{ reviewer }}">
<div id="bar">
<div class="row"><b>mdfs review</b> <span id="position"></span> &middot; <span id="judged"></span>
<span id="alldone" hidden></span></div>
<div id="decision"></div>
<div class="row actions"><button data-verdict="correct"><kbd>c</kbd> correct</button>
<button data-verdict="wrong"><kbd>w</kbd> wrong</button> <button data-verdict="unsure"><kbd>u</kbd> unsure</button>
<span id="meaning"></span></div>
<div class="row"><span id="label" class="label"></span> &middot; class label keys: <span id="labels"></span>,
<kbd>0</kbd> none &middot; <kbd>n</kbd>/<kbd>&rarr;</kbd> next, <kbd>p</kbd>/<kbd>&larr;</kbd> previous</div>
<div id="status" role="status" aria-live="polite"></div>
</div>
<div id="meta"></div>
<p id="note" class="note" hidden></p>
<div id="text"></div>
<div id="removed"></div>
<h4>signals and scores</h4><table class="kv" id="signals"></table>
<p class="help">A verdict (<kbd>c</kbd>/<kbd>w</kbd>/<kbd>u</kbd>) saves the class label shown in the bar with it and
moves to the next item you have not judged.  On an item you judged before, the bar shows your earlier label: a
verdict keeps it unless you press <kbd>0</kbd> (no label) or another label key first.  For a dropped document,
correct means it was rightly dropped and wrong that it should have been kept; for a kept document, correct means
it rightly stays in the corpus and wrong that it should have been dropped.</p>
<script src="/static/review.js?token={{ token }}"></script>
</main></body></html>
"""


# Sent with every answer: no inline script, no framing, no caching of labels or page text.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _guard(app, token: str, allowed_hosts: set[str]) -> None:
    """Every request needs a ``Host`` the server was bound for (against DNS
    rebinding) and the token; every answer carries SECURITY_HEADERS."""
    from flask import Response, abort, request

    @app.before_request
    def guard():
        host = request.host.rsplit(":", 1)[0].strip("[]") if request.host else ""
        if host not in allowed_hosts:
            abort(403)
        if request.path == "/favicon.ico" and request.method == "GET":
            return Response(status=204)  # browsers ask without the token; an empty answer, not an error
        given = request.args.get("token") or request.headers.get("X-Review-Token") or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            abort(403)

    @app.after_request
    def headers(resp):
        for name, value in SECURITY_HEADERS.items():
            resp.headers[name] = value
        return resp


def reviewer_state(run_dir: str, items: list[dict], meta: dict, reviewer: str, labels: list[str]) -> dict:
    """What the page needs to show one reviewer: the items, this reviewer's
    latest judgements, and per cell how many of its sampled items are judged."""
    mine = {item: {"verdict": j["verdict"], "label": j.get("label")}
            for (who, item), j in latest(read_labels(run_dir)).items() if who == reviewer}
    cells = []
    for c in meta["cells"]:
        members = [it["item"] for it in items if it["cell"] == c["cell"]]
        cells.append({"cell": c["cell"], "population": c["population"], "sampled": len(members),
                      "done": sum(m in mine for m in members)})
    return {"items": [{k: it[k] for k in ("item", "cell", "outcome", "stage", "reason")} for it in items],
            "labels": labels, "reviewer": reviewer, "done": mine, "cells": cells,
            "candidates": bool(meta.get("candidates"))}


def judged_item(body, by_item: dict, labels: list[str]) -> dict | None:
    """The sampled item a posted judgement is about, or None when the body is not
    a well-formed judgement (unknown item or verdict, bad judgement id, a label
    that is not one of the names)."""
    if not isinstance(body, dict):
        return None
    item = by_item.get(body.get("item")) if isinstance(body.get("item"), str) else None
    judgement, label = body.get("judgement"), body.get("label")
    # no label is null (or absent); anything else must be one of the names: 0, false or "" are refused,
    # not read as "no label"
    if (item is None or body.get("verdict") not in VERDICTS or not isinstance(judgement, str)
            or not JUDGEMENT_ID.match(judgement) or (label is not None and label not in labels)):
        return None
    return item


def create_app(run_dir: str, token: str, reviewer: str, labels: list[str], allowed_hosts: set[str]):
    from flask import Flask, Response, abort, jsonify, render_template_string, request

    items, meta = load_sample(run_dir)
    by_item = {it["item"]: it for it in items}
    store = LabelStore(run_dir)
    app = Flask("mdfs-review", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY  # werkzeug answers 413 past it, before reading the rest
    _guard(app, token, allowed_hosts)

    def state() -> dict:
        return reviewer_state(run_dir, items, meta, reviewer, labels)

    @app.get("/")
    def page():
        return render_template_string(PAGE, token=token, reviewer=reviewer, run=meta["run"])

    @app.get("/static/<name>")
    def asset(name):
        if name not in STATIC:  # fixed names only: nothing else on disk is reachable
            abort(404)
        return Response((ASSETS / name).read_bytes(), mimetype=STATIC[name])

    @app.get("/api/ping")
    def api_ping():  # the page polls it, so that a stopped server shows at once, not at the next save
        return jsonify({"ok": True})

    @app.get("/api/state")
    def api_state():
        return jsonify(state())

    @app.get("/api/item/<int:n>")
    def api_item(n):
        if not 0 <= n < len(items):
            abort(404)
        return jsonify(items[n])

    @app.post("/api/label")
    def api_label():
        body = _json_body(request)
        item = judged_item(body, by_item, labels)
        if item is None:
            abort(400)
        written = store.add({"judgement": body["judgement"], "item": item["item"], "id": item["id"],
                             "source": item["source"], "outcome": item["outcome"], "stage": item["stage"],
                             "reason": item["reason"], "verdict": body["verdict"], "label": body.get("label"),
                             "reviewer": reviewer, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return jsonify({"written": written, "state": state()})

    return app


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, allow: list[str] | tuple = ()) -> set[str]:
    """The names a browser may use for this server (the ``Host`` check).  A loopback
    bind needs nothing more; any other bind (``0.0.0.0`` or a network address) is
    refused unless ``allow`` (``--allow-host``) names the addresses or names other
    machines' browsers will use: the port must not be open to the network without
    the operator saying who reaches it, and then those names must work."""
    if not _loopback(host) and not allow:
        raise ReviewError(f"--host {host} would listen beyond this machine: add --allow-host NAME[,NAME] with "
                          "the address or name browsers will use (docs/REVIEW.md), or keep the default 127.0.0.1")
    names = {host} | set(allow)
    if host in ("127.0.0.1", "localhost"):
        names |= {"localhost", "127.0.0.1"}
    return names - {"0.0.0.0", "::", ""}


def _handler():
    """werkzeug's request handler without the ``Server: Werkzeug/x Python/y`` version banner."""
    from werkzeug.serving import WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        def version_string(self) -> str:
            return "mdfs-review"

    return Handler


def serve(run_dir: str, host: str = "127.0.0.1", port: int = 0, reviewer: str = "reviewer",
          labels: list[str] | None = None, token: str | None = None, allow: list[str] | tuple = ()) -> None:
    """Serve until interrupted; prints the URL (with its token) first."""
    import logging
    import socket

    from werkzeug.serving import make_server

    names = allowed_hosts(host, allow)
    token = token or secrets.token_urlsafe(24)
    app = create_app(run_dir, token, reviewer, list(labels or ("high", "low", "ad")), names)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:  # werkzeug reports a busy port on its own and exits: check first, for one clear line
        socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET).close()
        server = make_server(host, port, app, threaded=True, request_handler=_handler())
    except (OSError, OverflowError, SystemExit) as exc:  # a port in use, an address this machine does not have
        raise ReviewError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    shown = host if host not in ("0.0.0.0", "::") else allow[0]  # a wildcard is no address to browse to
    shown = f"[{shown}]" if ":" in shown else shown
    print(f"mdfs review: http://{shown}:{server.server_port}/?token={token}", flush=True)
    print("(labels are written to review/labels.jsonl as you give them; Ctrl-C stops the server)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
