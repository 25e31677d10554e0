// mdfs review page. Every piece of document text is put into the page with
// textContent (never innerHTML), so page text cannot execute; bidirectional
// control characters are shown as visible markers.
"use strict";
(function () {
  const root = document.getElementById("app");
  const token = root.dataset.token;
  const reviewer = root.dataset.reviewer;
  const $ = id => document.getElementById(id);
  let state = null, index = 0, pendingLabel = null, current = null;
  // One action at a time: from a key until the item it leads to is on screen, other keys are
  // refused (and the bar says so), so a fast second key can neither judge the item still shown
  // nor skip the next one.
  let busy = false, offline = false;
  const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
  const MEANING = {
    dropped: "correct: rightly dropped \u00b7 wrong: should have been kept \u00b7 unsure: cannot tell",
    kept: "correct: rightly kept, belongs in the corpus \u00b7 wrong: should have been dropped \u00b7 unsure: cannot tell",
  };

  function api(path, body) {
    const opts = { headers: { "X-Review-Token": token } };
    if (body) { opts.method = "POST"; opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    return fetch(path, opts).then(r => { if (!r.ok) throw new Error(path + ": HTTP " + r.status); return r.json(); });
  }
  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function inert(text, parent) {
    // text with bidi controls split out as visible, inert markers
    let last = 0;
    (text || "").replace(BIDI, (m, off) => {
      parent.appendChild(document.createTextNode(text.slice(last, off)));
      parent.appendChild(el("span", "[U+" + m.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + "]", "bidi"));
      last = off + m.length; return m;
    });
    parent.appendChild(document.createTextNode((text || "").slice(last)));
  }
  function cellKey(c) { return c.join(" / "); }
  function status(text, cls) { const s = $("status"); s.textContent = text; s.className = cls || ""; }
  function fmt(v) {
    // integers as integers with thousands separators; other numbers to 4 significant figures
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return v.toLocaleString("en-US");
    if (Math.abs(v) >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 1 });
    return String(Number(v.toPrecision(4)));
  }
  function setBusy(b) {
    busy = b;
    for (const btn of document.querySelectorAll("button[data-verdict]")) btn.disabled = b;
  }
  function showLabel(source) {
    const words = { none: "none", earlier: "(your earlier label: a verdict keeps it; 0 clears it)",
                    set: "(a verdict saves it)", cleared: "(cleared: a verdict saves no label)" };
    $("label").textContent = "class label: " + (pendingLabel || "none") + " " + (source === "none" ? "(1-" + state.labels.length + " to set one)" : words[source]);
  }

  function renderCells() {
    const ul = $("celllist");
    ul.replaceChildren();
    for (const c of state.cells) {
      const li = el("li", `${c.done}/${c.sampled} \u00b7 ${c.population.toLocaleString("en-US")} \u00b7 ${cellKey(c.cell)}`);
      li.dataset.cell = cellKey(c.cell);
      li.title = `${c.done} of ${c.sampled} sampled documents judged by you; ${c.population} documents in the run`;
      if (c.done === c.sampled) li.classList.add("complete");
      if (current && cellKey(current.cell) === cellKey(c.cell)) li.classList.add("current");
      li.addEventListener("click", () => goCell(c.cell));
      ul.appendChild(li);
    }
    const cur = ul.querySelector("li.current");
    if (cur) cur.scrollIntoView({ block: "nearest" });
    const done = Object.keys(state.done).length;
    $("judged").textContent = `${done} of ${state.items.length} judged by ${reviewer}`;
    const all = $("alldone");
    all.hidden = done < state.items.length;
    all.textContent = `all ${state.items.length} items judged: done (mdfs review RUN_DIR --summary shows what they say)`;
  }

  function goCell(cell) {
    const key = cellKey(cell);
    const members = state.items.map((it, i) => [it, i]).filter(([it]) => cellKey(it.cell) === key);
    const open = members.find(([it]) => !state.done[it.item]);
    navigate((open || members[0])[1]);
  }

  function render(item) {
    current = item;
    const prev = state.done[item.item];
    pendingLabel = prev ? prev.label : null;
    $("position").textContent = `item ${index + 1} of ${state.items.length}`;
    const d = $("decision");
    d.className = item.outcome;
    d.replaceChildren();
    inert(item.outcome === "kept" ? `kept (${item.reason})` : `dropped by ${item.stage}: ${item.reason}`
      + (item.detail ? ` (${item.detail})` : ""), d);
    $("meaning").textContent = MEANING[item.outcome] || "";
    const t = el("table"); t.className = "kv";
    for (const [k, v] of [["source", item.source], ["id", item.id], ["url", item.url || ""],
                           ["characters", fmt(item.char_count)]]) {
      const tr = el("tr"); tr.appendChild(el("td", k)); const td = el("td"); inert(v, td); tr.appendChild(td); t.appendChild(tr);
    }
    $("meta").replaceChildren(t);
    const note = $("note");
    note.textContent = item.text_origin !== "excerpt" ? "" : (state.candidates
      ? "Dropped before the coarse rules, so not in the candidate store: only the stored excerpt is shown."
      : "This run has no candidate store (output.candidates: false): only the stored excerpt of this dropped document is shown.");
    note.hidden = item.text_origin !== "excerpt";
    const text = $("text"); text.replaceChildren(); inert(item.text, text); text.scrollTop = 0;
    const removed = $("removed"); removed.replaceChildren();
    if (item.removed_lines.length) removed.appendChild(el("h4", "lines removed by line cleaning"));
    for (const [kind, line] of item.removed_lines) { const del = el("del"); inert(`${line}   [${kind}]`, del); removed.appendChild(del); }
    const sig = $("signals"); sig.replaceChildren();
    for (const [k, v] of Object.entries(item.signals)) {
      const tr = el("tr"); tr.appendChild(el("td", k)); tr.appendChild(el("td", fmt(v))); sig.appendChild(tr);
    }
    showLabel(prev && prev.label ? "earlier" : "none");
    root.scrollTop = 0;
    renderCells();
    return prev;
  }

  function show(n) {
    index = Math.max(0, Math.min(n, state.items.length - 1));
    return api(`/api/item/${index}`).then(render);
  }

  function navigate(n) {
    if (busy) return;
    setBusy(true);
    show(n).then(prev => {
      if (!offline) status(prev ? `your judgement: ${prev.verdict}${prev.label ? ", label " + prev.label : ""}` : "not judged yet");
    }).catch(err => status("could not load the item: " + err.message, "failed")).finally(() => setBusy(false));
  }

  function nextOpen(from) {
    // the next item not yet judged, after this one and then from the start; null when all are judged
    const n = state.items.length;
    for (let k = 0; k < n; k++) { const i = (from + k) % n; if (!state.done[state.items[i].item]) return i; }
    return null;
  }

  function judge(verdict, keyName) {
    if (!current) return;
    if (busy) { status(`still saving: "${keyName}" ignored; press it again once this item is saved`, "saving"); return; }
    setBusy(true);
    const shown = current, pos = index + 1;
    const body = { judgement: crypto.randomUUID(), item: shown.item, verdict: verdict, label: pendingLabel };
    status(`saving item ${pos}: ${verdict}${pendingLabel ? ", label " + pendingLabel : ""} ...`, "saving");
    const send = () => api("/api/label", body);
    // a network failure is retried once with the same judgement id (written once however often it arrives)
    return send().catch(err => err instanceof TypeError ? send() : Promise.reject(err)).then(res => {
      state = res.state;
      const saved = `saved item ${pos}: ${verdict}${body.label ? ", label " + body.label : ", no label"}`;
      const next = nextOpen(index + 1);
      if (next === null) { renderCells(); status(saved + ". All items judged.", "saved"); return; }
      return show(next).then(() => status(saved, "saved"));
    }).catch(err => {
      status(`NOT SAVED (item ${pos}, ${verdict}): ${err.message}. ` +
             (err instanceof TypeError ? "The review server is not reachable: is mdfs review still running?" : ""), "failed");
    }).finally(() => setBusy(false));
  }

  function ping() {
    api("/api/ping").then(() => {
      if (offline) { offline = false; status("the review server is reachable again", "saved"); }
    }).catch(err => {
      if (!offline) { offline = true; status("SERVER NOT REACHABLE (" + err.message + "): nothing can be saved until mdfs review runs again", "failed"); }
    });
  }

  document.addEventListener("keydown", ev => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || !state) return;
    const k = ev.key;
    if (k === "c") judge("correct", k);
    else if (k === "w") judge("wrong", k);
    else if (k === "u") judge("unsure", k);
    else if (k === "n" || k === "ArrowRight") navigate(index + 1);
    else if (k === "p" || k === "ArrowLeft") navigate(index - 1);
    else if (k === "0" && !busy) { pendingLabel = null; showLabel("cleared"); }
    else if (/^[1-9]$/.test(k) && state.labels[Number(k) - 1] && !busy) {
      pendingLabel = state.labels[Number(k) - 1];
      showLabel("set");
    } else return;
    ev.preventDefault();
  });
  for (const b of document.querySelectorAll("button[data-verdict]")) b.addEventListener("click", () => judge(b.dataset.verdict, b.dataset.verdict));

  api("/api/state").then(s => {
    state = s;
    $("labels").textContent = state.labels.map((l, i) => `${i + 1} ${l}`).join(", ");
    const first = nextOpen(0);
    return show(first === null ? 0 : first).then(prev => status(prev ? "all items judged; you can go back and change any" : "not judged yet"));
  }).then(() => { root.dataset.ready = "1"; setInterval(ping, 3000); })
    .catch(err => status("could not load the sample: " + err.message, "failed"));
})();
