// The live journal page of deepseek-mock. No build step, no library, nothing from elsewhere.
// Every value a client sent is drawn with textContent: nothing reaches the page as HTML.
"use strict";

(() => {
  const MAX_ROWS = 2000; // rows kept on the page; the oldest go first
  const token = new URLSearchParams(location.search).get("token");
  const auth = token ? { Authorization: "Bearer " + token } : {};
  const query = token ? "?token=" + encodeURIComponent(token) : "";

  const $ = (selector) => document.querySelector(selector);
  const tbody = $("#rows tbody");
  const filterBox = $("#filter");
  const detail = $("#detail");
  const rows = new Map(); // seq -> {tr, fields}, oldest first
  let selected = null;
  let terms = [];

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function pad(n, width) {
    return String(n).padStart(width, "0");
  }

  function clock(epochSeconds) {
    const d = new Date(epochSeconds * 1000);
    return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(d.getMilliseconds(), 3)}`;
  }

  function ms(value) {
    return value === null || value === undefined ? "" : value.toFixed(1);
  }

  function statusClass(status) {
    if (status === null) return "s-none";
    if (status >= 500) return "s-5xx";
    if (status >= 400) return "s-4xx";
    return "s-2xx";
  }

  function ruleAndFault(row) {
    // A fault asked by X-Mock-Fault is already in the rule's name.
    if (!row.fault || (row.rule || "").includes(row.fault)) return row.rule ?? "";
    return [row.rule, row.fault].filter(Boolean).join(" · ");
  }

  // The columns, as shown; a filter term names one as field:value (method and path too).
  const COLUMNS = [
    ["seq", (r) => r.seq],
    ["time", (r) => clock(r.started)],
    ["dialect", (r) => r.dialect ?? ""],
    ["request", (r) => `${r.method} ${r.path}`],
    ["model", (r) => r.model ?? ""],
    ["rule", ruleAndFault],
    ["status", (r) => r.status ?? "—"],
    ["stream", (r) => (r.stream ? "stream" : "")],
    ["end", (r) => r.end],
    ["bytes", (r) => r.bytes],
    ["ttfb", (r) => ms(r.ttfb_ms)],
    ["ms", (r) => ms(r.elapsed_ms)],
  ];
  const NUMERIC = new Set(["bytes", "ttfb", "ms"]);
  const EXTRA = ["method", "path", "fault", "prompt"]; // filter fields without a column of their own

  function drawRow(row) {
    const tr = el("tr");
    tr.dataset.seq = String(row.seq);
    tr.classList.add(statusClass(row.status));
    const fields = {};
    for (const name of EXTRA) fields[name] = String(row[name] ?? "").toLowerCase();
    for (const [name, show] of COLUMNS) {
      const text = String(show(row));
      const td = el("td", text, "c-" + name);
      td.title = text;
      if (NUMERIC.has(name)) td.classList.add("num");
      if (name === "end" && text !== "complete") td.classList.add("bad");
      tr.append(td);
      fields[name] = text.toLowerCase();
    }
    tr.addEventListener("click", () => open(row.seq));
    return { tr, fields };
  }

  // ------------------------------------------------------------------ the filter

  function parseFilter(text) {
    return text
      .toLowerCase()
      .split(/\s+/)
      .filter(Boolean)
      .map((term) => {
        const colon = term.indexOf(":");
        const field = colon > 0 ? term.slice(0, colon) : null;
        if (field && (EXTRA.includes(field) || COLUMNS.some(([n]) => n === field))) {
          return { field, value: term.slice(colon + 1) };
        }
        return { field: null, value: term };
      });
  }

  function matches(fields) {
    return terms.every(({ field, value }) =>
      field ? fields[field].includes(value) : Object.values(fields).some((v) => v.includes(value)),
    );
  }

  function applyFilter() {
    terms = parseFilter(filterBox.value);
    for (const { tr, fields } of rows.values()) tr.hidden = !matches(fields);
    counts();
  }

  function counts() {
    let shown = 0;
    for (const { tr } of rows.values()) shown += tr.hidden ? 0 : 1;
    $("#count").textContent = terms.length ? `${shown} of ${rows.size}` : `${rows.size}`;
    $("#empty").hidden = rows.size > 0;
  }

  // ------------------------------------------------------------------ rows from the stream

  function clearRows() {
    for (const { tr } of rows.values()) tr.remove();
    rows.clear();
    closeDetail();
  }

  function addRows(entries) {
    const fragment = document.createDocumentFragment();
    for (let i = entries.length - 1; i >= 0; i--) {
      const row = entries[i];
      const drawn = drawRow(row);
      drawn.tr.hidden = !matches(drawn.fields);
      const old = rows.get(row.seq);
      if (old) {
        old.tr.remove();
        rows.delete(row.seq);
      }
      rows.set(row.seq, drawn);
      fragment.append(drawn.tr);
      if (row.seq === selected) drawn.tr.classList.add("selected");
    }
    tbody.insertBefore(fragment, tbody.firstChild); // the newest on top
    while (rows.size > MAX_ROWS) {
      const [seq, oldest] = rows.entries().next().value;
      oldest.tr.remove();
      rows.delete(seq);
    }
    counts();
  }

  // ------------------------------------------------------------------ the status panel

  function drawStatus(status) {
    const rules = $("#rules tbody");
    rules.replaceChildren();
    for (const rule of status.rules) {
      const tr = el("tr");
      tr.append(el("td", rule.name));
      const used = rule.times === null ? `${rule.uses}` : `${rule.uses} / ${rule.times}`;
      const td = el("td", used, "num");
      if (rule.times !== null && rule.uses >= rule.times) td.classList.add("spent");
      tr.append(td);
      rules.append(tr);
    }
    if (!status.rules.length) {
      const tr = el("tr");
      const td = el("td", "none: every answer is generated");
      td.colSpan = 2;
      tr.append(td);
      rules.append(tr);
    }
    const limits = status.limits;
    const facts = [
      ["open streams", status.open_streams],
      ["in flight", limits.concurrent === null ? limits.in_flight : `${limits.in_flight} / ${limits.concurrent}`],
      ["rate limit", limits.per_window === null ? "none" : `${limits.per_window} per ${limits.window} s`],
      ["balance", status.balance.left === null ? "unlimited" : `${status.balance.left} of ${status.balance.initial} tokens`],
      ["journal", `${status.journal} kept`],
      ["pages open", status.pages],
    ];
    const list = $("#server");
    list.replaceChildren();
    for (const [name, value] of facts) list.append(el("dt", name), el("dd", value));
  }

  // ------------------------------------------------------------------ the detail view

  function closeDetail() {
    selected = null;
    detail.hidden = true;
    detail.replaceChildren();
  }

  function section(parts, title) {
    const part = el("section", undefined, "part");
    part.append(el("h3", title));
    parts.append(part);
    return part;
  }

  function table(headings, lines, className) {
    const t = el("table", undefined, className);
    const head = el("tr");
    for (const h of headings) head.append(el("th", h));
    t.append(el("thead"));
    t.tHead.append(head);
    const body = el("tbody");
    for (const line of lines) {
      const tr = el("tr");
      for (const cell of line) tr.append(cell instanceof Node ? cell : el("td", cell));
      body.append(tr);
    }
    t.append(body);
    return t;
  }

  function pretty(json, text) {
    if (json !== null && json !== undefined) return JSON.stringify(json, null, 2);
    if (!text) return "(empty)";
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }

  function headersTable(headers) {
    const fold = el("details", undefined, "headers");
    fold.append(el("summary", `headers (${Object.keys(headers).length})`));
    fold.append(table(["header", "value"], Object.entries(headers)));
    return fold;
  }

  function drawDetail(data) {
    detail.replaceChildren();
    const s = data.summary;
    const top = el("div", undefined, "detail-top");
    top.append(el("h2", `#${s.seq} ${s.method} ${s.path}${data.query ? "?" + data.query : ""}`));
    const close = el("button", "Close");
    close.type = "button";
    close.addEventListener("click", () => {
      const row = rows.get(selected);
      if (row) row.tr.classList.remove("selected");
      closeDetail();
    });
    top.append(close);
    detail.append(top);
    const facts = el("p", undefined, "facts");
    const said = [
      `status ${s.status ?? "none"}`,
      s.stream ? "stream" : "single answer",
      s.end,
      `rule ${s.rule ?? "none"}`,
      `${s.bytes} bytes`,
      `TTFB ${ms(s.ttfb_ms)} ms`,
      `${ms(s.elapsed_ms)} ms in all`,
    ];
    facts.textContent = said.join(" · ");
    detail.append(facts);
    if (data.fault) detail.append(el("p", `fault: ${data.fault}`, "fault"));

    const parts = el("div", undefined, "parts");
    detail.append(parts);
    const request = section(parts, "Request");
    request.append(headersTable(data.request.headers));
    const note = data.request.truncated ? ` (${data.request.body_bytes} bytes sent, cut when kept)` : "";
    request.append(el("h4", "body" + note));
    request.append(el("pre", pretty(data.request.json, data.request.text), "body"));

    const response = section(parts, "Response");
    response.append(headersTable(data.response.headers));
    if (data.usage) {
      response.append(el("h4", "usage"));
      const lines = Object.entries(data.usage).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v]);
      response.append(table(["figure", "value"], lines, "usage"));
    }
    if (data.timeline.length) {
      const dropped = data.response.frames_dropped ? `, ${data.response.frames_dropped} frames not kept` : "";
      response.append(el("h4", `stream: ${data.timeline.length} frames${dropped}`));
      const lines = data.timeline.map((f) => {
        const text = el("td", f.says, "frame-text");
        text.title = f.text; // the frame as it was sent
        const noteCell = el("td", f.note ?? "", f.note ? "frame-note" : "");
        return [f.n ?? "", f.at_ms.toFixed(1), f.bytes, f.kind, noteCell, text];
      });
      const frames = table(["#", "at ms", "bytes", "kind", "fault", "says"], lines, "timeline");
      for (const [i, f] of data.timeline.entries()) {
        frames.tBodies[0].rows[i].classList.add("k-" + f.kind.replace(/\W/g, ""));
      }
      response.append(frames);
    } else {
      const cut = !data.response.kept
        ? " not kept: more than 256 exchanges were open at once"
        : data.response.truncated ? " (the first 64 KiB)" : "";
      response.append(el("h4", "body" + cut));
      response.append(el("pre", pretty(null, data.response.body), "body"));
    }
    detail.hidden = false;
  }

  async function open(seq) {
    const before = rows.get(selected);
    if (before) before.tr.classList.remove("selected");
    selected = seq;
    const row = rows.get(seq);
    if (row) row.tr.classList.add("selected");
    const answer = await fetch(`ui/entry/${seq}${query}`, { headers: auth });
    if (selected !== seq) return; // another row was opened meanwhile
    if (!answer.ok) {
      detail.replaceChildren(el("p", `exchange ${seq}: ${answer.status} ${await answer.text()}`, "fault"));
      detail.hidden = false;
      return;
    }
    drawDetail(await answer.json());
  }

  // ------------------------------------------------------------------ admin actions

  async function admin(method, path, done) {
    const answer = await fetch(path, { method, headers: auth });
    const notice = $("#notice");
    notice.hidden = answer.ok;
    if (!answer.ok) notice.textContent = `${method} ${path}: ${answer.status} ${await answer.text()}`;
    else if (done) done();
  }

  $("#clear").addEventListener("click", () => admin("DELETE", "journal"));
  $("#reset").addEventListener("click", () => admin("POST", "reset"));
  filterBox.addEventListener("input", applyFilter);

  // ------------------------------------------------------------------ the live stream

  function state(name, text) {
    const badge = $("#state");
    badge.dataset.state = name;
    badge.textContent = text;
  }

  // EventSource reconnects by itself and sends the id of the last event it had
  // (Last-Event-ID): the server answers with what came after, or with a clear.
  const source = new EventSource("ui/events" + query);
  source.addEventListener("open", () => state("live", "live"));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) state("closed", "disconnected: reload the page");
    else state("connecting", "reconnecting…");
  });
  source.addEventListener("entries", (event) => {
    const batch = JSON.parse(event.data);
    if (batch.cleared) clearRows();
    addRows(batch.entries);
    state("live", "live");
  });
  source.addEventListener("status", (event) => drawStatus(JSON.parse(event.data)));
  counts();
})();
