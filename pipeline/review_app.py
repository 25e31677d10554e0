"""``mdfs review``: the local review web application (Flask, served by
werkzeug's threaded server).

Security: bound to 127.0.0.1 unless ``--host`` says otherwise; every request
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

ASSETS = Path(__file__).resolve().parent / "resources" / "review"
STATIC = {"review.js": "application/javascript", "review.css": "text/css"}
JUDGEMENT_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mdfs review: {{ run }}</title>
<meta name="referrer" content="no-referrer">
<link rel="stylesheet" href="/static/review.css?token={{ token }}"></head>
<body><nav id="cells"></nav>
<main id="app" data-token="{{ token }}" data-reviewer="{{ reviewer }}">
<h2>mdfs review <small id="position"></small></h2>
<div id="judged"></div>
<div id="decision"></div>
<div id="meta"></div>
<p id="note" class="note" hidden></p>
<div id="text"></div>
<div id="removed"></div>
<h4>signals and scores</h4><table class="kv" id="signals"></table>
<p class="keys"><kbd>c</kbd> correct &nbsp; <kbd>w</kbd> wrong &nbsp; <kbd>u</kbd> unsure &nbsp;
<kbd>n</kbd>/<kbd>&rarr;</kbd> next &nbsp; <kbd>p</kbd>/<kbd>&larr;</kbd> previous &nbsp; class label (before the
verdict): <span id="labels"></span> &nbsp; <span id="label">label: -</span></p>
<p><button data-verdict="correct">correct</button> <button data-verdict="wrong">wrong</button>
<button data-verdict="unsure">unsure</button></p>
<div id="status"></div>
<script src="/static/review.js?token={{ token }}"></script>
</main></body></html>
"""


def create_app(run_dir: str, token: str, reviewer: str, labels: list[str], allowed_hosts: set[str]):
    from flask import Flask, Response, abort, jsonify, render_template_string, request

    items, meta = load_sample(run_dir)
    by_item = {it["item"]: it for it in items}
    store = LabelStore(run_dir)
    app = Flask("mdfs-review", static_folder=None)

    def state() -> dict:
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

    @app.before_request
    def guard():
        host = request.host.rsplit(":", 1)[0].strip("[]") if request.host else ""
        if host not in allowed_hosts:
            abort(403)
        given = request.args.get("token") or request.headers.get("X-Review-Token") or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            abort(403)

    @app.after_request
    def headers(resp):
        resp.headers["Content-Security-Policy"] = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                                   "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                                                   "form-action 'none'; frame-ancestors 'none'")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def page():
        return render_template_string(PAGE, token=token, reviewer=reviewer, run=meta["run"])

    @app.get("/static/<name>")
    def asset(name):
        if name not in STATIC:  # fixed names only: nothing else on disk is reachable
            abort(404)
        return Response((ASSETS / name).read_bytes(), mimetype=STATIC[name])

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
        body = request.get_json(silent=True) or {}
        item = by_item.get(body.get("item"))
        judgement = body.get("judgement")
        label = body.get("label") or None
        if (item is None or body.get("verdict") not in VERDICTS or not isinstance(judgement, str)
                or not JUDGEMENT_ID.match(judgement) or (label is not None and label not in labels)):
            abort(400)
        written = store.add({"judgement": judgement, "item": item["item"], "id": item["id"],
                             "source": item["source"], "outcome": item["outcome"], "stage": item["stage"],
                             "reason": item["reason"], "verdict": body["verdict"], "label": label,
                             "reviewer": reviewer, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return jsonify({"written": written, "state": state()})

    return app


def allowed_hosts(host: str) -> set[str]:
    """The names a browser may use for this server (the ``Host`` check): the bound
    address, and for a wildcard bind this machine's names and addresses."""
    import socket

    names = {host, "localhost", "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {host}
    if host in ("0.0.0.0", "::", ""):
        name = socket.gethostname()
        names |= {"localhost", "127.0.0.1", name, socket.getfqdn()}
        try:
            names |= set(socket.gethostbyname_ex(name)[2])
        except OSError:
            pass
    return names


def serve(run_dir: str, host: str = "127.0.0.1", port: int = 0, reviewer: str = "reviewer",
          labels: list[str] | None = None, token: str | None = None) -> None:
    """Serve until interrupted; prints the URL (with its token) first."""
    import logging

    from werkzeug.serving import make_server

    token = token or secrets.token_urlsafe(24)
    app = create_app(run_dir, token, reviewer, list(labels or ("high", "low", "ad")), allowed_hosts(host))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    import socket

    try:  # werkzeug reports a busy port on its own and exits: check first, for one clear line
        socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET).close()
        server = make_server(host, port, app, threaded=True)
    except (OSError, OverflowError, SystemExit) as exc:  # a port in use, an address this machine does not have
        raise ReviewError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    shown = f"[{host}]" if ":" in host else host
    print(f"mdfs review: http://{shown}:{server.server_port}/?token={token}", flush=True)
    print("(labels are written to review/labels.jsonl as you give them; Ctrl-C stops the server)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
