// mdfs review page. Every piece of document text is put into the page with
// textContent (never innerHTML), so page text cannot execute; bidirectional
// control characters are shown as visible markers.
"use strict";
(function () {
  const root = document.getElementById("app");
  const token = root.dataset.token;
  const reviewer = root.dataset.reviewer;
  let state = null, index = 0, pendingLabel = null, current = null;
  const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;

  function api(path, body) {
    const opts = { headers: { "X-Review-Token": token } };
    if (body) { opts.method = "POST"; opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    return fetch(path, opts).then(r => { if (!r.ok) throw new Error(path + ": " + r.status); return r.json(); });
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

  function renderCells() {
    const box = document.getElementById("cells");
    box.replaceChildren(el("h3", "progress per cell"));
    const ul = el("ul");
    for (const c of state.cells) {
      const li = el("li", `${c.done}/${c.sampled} (of ${c.population}) ${cellKey(c.cell)}`);
      li.dataset.cell = cellKey(c.cell);
      if (current && cellKey(current.cell) === cellKey(c.cell)) li.className = "current";
      ul.appendChild(li);
    }
    box.appendChild(ul);
    document.getElementById("judged").textContent =
      `${Object.keys(state.done).length} of ${state.items.length} judged by ${reviewer}`;
  }

  function show(n) {
    index = Math.max(0, Math.min(n, state.items.length - 1));
    return api(`/api/item/${index}`).then(item => {
      current = item; pendingLabel = null;
      const prev = state.done[item.item];
      document.getElementById("position").textContent = `item ${index + 1} of ${state.items.length}`;
      const d = document.getElementById("decision");
      d.className = item.outcome;
      d.replaceChildren();
      inert(item.outcome === "kept" ? `kept (${item.reason})` : `dropped by ${item.stage}: ${item.reason}`
        + (item.detail ? ` (${item.detail})` : ""), d);
      const meta = document.getElementById("meta");
      meta.replaceChildren();
      const t = el("table"); t.className = "kv";
      for (const [k, v] of [["source", item.source], ["id", item.id], ["url", item.url || ""],
                             ["characters", String(item.char_count)]]) {
        const tr = el("tr"); tr.appendChild(el("td", k)); const td = el("td"); inert(v, td); tr.appendChild(td); t.appendChild(tr);
      }
      meta.appendChild(t);
      const note = document.getElementById("note");
      note.textContent = item.text_origin !== "excerpt" ? "" : (state.candidates
        ? "Dropped before the coarse rules, so not in the candidate store: only the stored excerpt is shown."
        : "This run has no candidate store (output.candidates: false): only the stored excerpt of this dropped document is shown.");
      note.hidden = item.text_origin !== "excerpt";
      const text = document.getElementById("text"); text.replaceChildren(); inert(item.text, text);
      const removed = document.getElementById("removed"); removed.replaceChildren();
      if (item.removed_lines.length) removed.appendChild(el("h4", "lines removed by line cleaning"));
      for (const [kind, line] of item.removed_lines) { const del = el("del"); inert(`${line}   [${kind}]`, del); removed.appendChild(del); }
      const sig = document.getElementById("signals"); sig.replaceChildren();
      for (const [k, v] of Object.entries(item.signals)) {
        const tr = el("tr"); tr.appendChild(el("td", k)); tr.appendChild(el("td", Number(v).toPrecision(4))); sig.appendChild(tr);
      }
      document.getElementById("status").textContent = prev
        ? `your judgement: ${prev.verdict}${prev.label ? ", label " + prev.label : ""}` : "not judged yet";
      document.getElementById("label").textContent = "label: -";
      renderCells();
    });
  }

  function nextOpen(from) {
    for (let i = from; i < state.items.length; i++) if (!state.done[state.items[i].item]) return i;
    return Math.min(from, state.items.length - 1);
  }

  function judge(verdict) {
    if (!current) return;
    const body = { judgement: crypto.randomUUID(), item: current.item, verdict: verdict, label: pendingLabel };
    const send = () => api("/api/label", body);
    return send().catch(() => send()).then(res => {  // a retry carries the same judgement id
      state = res.state;
      return show(nextOpen(index + 1));
    }).catch(err => { document.getElementById("status").textContent = "NOT SAVED: " + err.message; });
  }

  document.addEventListener("keydown", ev => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = ev.key;
    if (k === "c") judge("correct");
    else if (k === "w") judge("wrong");
    else if (k === "u") judge("unsure");
    else if (k === "n" || k === "ArrowRight") show(index + 1);
    else if (k === "p" || k === "ArrowLeft") show(index - 1);
    else if (/^[1-9]$/.test(k) && state.labels[Number(k) - 1]) {
      pendingLabel = state.labels[Number(k) - 1];
      document.getElementById("label").textContent = "label: " + pendingLabel;
    } else return;
    ev.preventDefault();
  });
  for (const b of document.querySelectorAll("button[data-verdict]")) b.addEventListener("click", () => judge(b.dataset.verdict));

  api("/api/state").then(s => {
    state = s;
    document.getElementById("labels").textContent = state.labels.map((l, i) => `${i + 1} ${l}`).join("   ");
    return show(nextOpen(0));
  }).then(() => { root.dataset.ready = "1"; });
})();
