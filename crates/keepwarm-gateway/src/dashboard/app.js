// keepwarm dashboard: reads GET /api/connections/stream with fetch (so the
// APIKEY travels as a header; an EventSource cannot send one) and renders
// each `stats` event. No build step, no dependencies.
"use strict";

const KEY_STORE = "keepwarm.apikey";
const $ = (sel, root = document) => root.querySelector(sel);
const svgNS = "http://www.w3.org/2000/svg";
let controller = null;
let lastIssues = "";
let seq = 0;

function key() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

function authHeaders() {
  const k = key();
  return k ? { "x-api-key": k } : {};
}

function setState(state, text) {
  const el = $("#conn-state");
  el.dataset.state = state;
  el.textContent = text;
}

function announce(text) {
  const el = $("#announce");
  el.textContent = "";
  // A fresh text node is announced even when the words repeat.
  window.setTimeout(() => { el.textContent = text; }, 50);
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const fmt = {
  int: (v) => String(v),
  pct: (v) => Number(v).toFixed(1) + "%",
  secs: (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(1) + " s"),
  ms: (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(1) + " ms"),
  rate: (v) => Number(v).toFixed(1) + "/s",
};

function set(root, field, text) {
  const node = root.querySelector(`[data-field="${field}"]`);
  if (node && node.textContent !== text) node.textContent = text;
}

function showKeyForm(message) {
  const form = $("#key-form");
  form.hidden = false;
  $("#key-error").textContent = message || "";
  setState("error", "Needs the APIKEY");
  $("#key-input").focus();
}

async function connect() {
  if (controller) controller.abort();
  controller = new AbortController();
  setState("connecting", "Connecting…");
  let resp;
  try {
    resp = await fetch("/api/connections/stream", {
      headers: authHeaders(), signal: controller.signal, cache: "no-store",
    });
  } catch (e) {
    if (e.name === "AbortError") return;
    return retry("cannot reach the gateway");
  }
  if (resp.status === 401) {
    const had = key();
    sessionStorage.removeItem(KEY_STORE);
    showKeyForm(had ? "That key was refused." : "");
    return;
  }
  if (!resp.ok || !resp.body) return retry(`the stream answered ${resp.status}`);
  $("#key-form").hidden = true;
  setState("live", "Live");
  announce("Connected: live numbers.");
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value.replace(/\r\n/g, "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        onFrame(frame);
      }
    }
  } catch (e) {
    if (e.name === "AbortError") return;
  }
  retry("the stream ended");
}

function retry(why) {
  setState("error", `Disconnected (${why}); retrying…`);
  announce(`Disconnected: ${why}.`);
  window.setTimeout(connect, 2000);
}

function onFrame(frame) {
  let event = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (event !== "stats" || data.length === 0) return;
  try {
    render(JSON.parse(data.join("\n")));
  } catch (e) {
    console.error("bad stats event", e);
  }
}

function render(msg) {
  const d = msg.data;
  const ov = $("#overview");
  set(ov, "totalRequests", fmt.int(d.totalRequests));
  set(ov, "overallReuseRate", fmt.pct(d.overallReuseRate));
  set(ov, "totalActiveConnections", fmt.int(d.totalActiveConnections));
  set(ov, "totalIdleConnections", fmt.int(d.totalIdleConnections));
  renderHealth(d.health);
  const list = $("#providers");
  const names = d.details.map((p) => p.provider);
  for (const sec of [...list.children]) {
    if (!names.includes(sec.dataset.provider)) sec.remove();
  }
  for (const p of d.details) {
    let sec = list.querySelector(`section[data-provider="${CSS.escape(p.provider)}"]`);
    if (!sec) {
      sec = providerSection(p.provider);
      list.appendChild(sec);
    }
    renderProvider(sec, p, d.health);
  }
  const t = $("#updated");
  t.dateTime = msg.timestamp;
  t.textContent = new Date(msg.timestamp).toLocaleTimeString();
  seq += 1;
  document.body.dataset.timestamp = msg.timestamp;
  document.body.dataset.seq = String(seq);
}

function renderHealth(h) {
  const box = $("#health");
  const text = h.issues.join("\n");
  if (text === lastIssues && box.childElementCount) return;
  lastIssues = text;
  box.replaceChildren();
  if (h.healthy) {
    box.appendChild(el("p", { class: "healthy" }, "Healthy: no issue found."));
  } else {
    box.appendChild(el("h3", {}, "Health issues"));
    const ul = el("ul");
    for (const i of h.issues) ul.appendChild(el("li", {}, i));
    box.appendChild(ul);
    announce(`Health: ${h.issues.length} issue${h.issues.length === 1 ? "" : "s"}. ${h.issues.join(". ")}`);
  }
}

const NUMBERS = [
  ["reuseRate", "Reuse rate"], ["totalRequests", "Requests"], ["reuseCount", "Reused"],
  ["active", "Active"], ["idle", "Idle"], ["connecting", "Connecting"],
  ["maxSockets", "maxSockets"], ["waiters", "Waiting"], ["tlsFull", "TLS full"],
  ["tlsResumed", "TLS resumed"], ["created", "Opened"], ["closed", "Closed"],
  ["stale", "Stale caught"], ["averageConnectionAge", "Mean age"],
];

function providerSection(name) {
  const id = "p-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
  const sec = el("section", { "data-provider": name, "aria-labelledby": id + "-h" });
  const head = el("div", { class: "provider-head" });
  const h = el("h2", { id: id + "-h" });
  h.appendChild(document.createTextNode(name));
  h.appendChild(el("span", { class: "badge", "data-field": "protocol" }));
  h.appendChild(el("span", { class: "badge", "data-field": "status" }));
  head.appendChild(h);
  const btn = el("button", { type: "button", class: "danger", "data-destroy": name },
    "Close idle connections");
  btn.setAttribute("aria-label", `Close the idle connections of ${name}`);
  btn.addEventListener("click", () => destroy(name, btn));
  head.appendChild(btn);
  sec.appendChild(head);
  const dl = el("dl", { class: "numbers" });
  for (const [field, label] of NUMBERS) {
    const div = el("div");
    div.appendChild(el("dt", {}, label));
    div.appendChild(el("dd", { "data-field": field }, "–"));
    dl.appendChild(div);
  }
  sec.appendChild(dl);
  sec.appendChild(el("ul", { class: "issues", "data-field": "issues" }));
  const charts = el("div", { class: "charts" });
  const rps = chartFigure("rps", "Requests per second, last 5 minutes (10 s slots): ");
  rps.querySelector("figcaption").appendChild(el("span", { "data-field": "rpsNow" }, "–"));
  charts.appendChild(rps);
  const lat = chartFigure("latency", "Latency, last 5 minutes: ");
  const cap = lat.querySelector("figcaption");
  cap.appendChild(el("span", { class: "legend-p50" }, "p50"));
  cap.appendChild(document.createTextNode(" "));
  cap.appendChild(el("span", { "data-field": "p50Now" }, "–"));
  cap.appendChild(document.createTextNode(", "));
  cap.appendChild(el("span", { class: "legend-p99" }, "p99"));
  cap.appendChild(document.createTextNode(" "));
  cap.appendChild(el("span", { "data-field": "p99Now" }, "–"));
  charts.appendChild(lat);
  sec.appendChild(charts);
  const wrap = el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": id + "-cap" });
  const table = el("table", { "data-field": "connections" });
  table.appendChild(el("caption", { id: id + "-cap" }, `Open connections of ${name}`));
  const thead = el("thead");
  const tr = el("tr");
  for (const c of ["Connection", "Protocol", "State", "Age", "Idle for", "Requests"]) {
    tr.appendChild(el("th", { scope: "col" }, c));
  }
  thead.appendChild(tr);
  table.appendChild(thead);
  table.appendChild(el("tbody"));
  wrap.appendChild(table);
  sec.appendChild(wrap);
  return sec;
}

function chartFigure(kind, caption) {
  const fig = el("figure");
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("data-chart", kind);
  svg.setAttribute("viewBox", "0 0 300 60");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  fig.appendChild(svg);
  fig.appendChild(el("figcaption", {}, caption));
  return fig;
}

function renderProvider(sec, p, health) {
  const c = p.connections, perf = p.performance, k = p.counters;
  set(sec, "protocol", p.protocol);
  const st = sec.querySelector('[data-field="status"]');
  st.dataset.status = p.status;
  set(sec, "status", p.status);
  const values = {
    reuseRate: fmt.pct(perf.reuseRate), totalRequests: fmt.int(perf.totalRequests),
    reuseCount: fmt.int(perf.reuseCount), active: fmt.int(c.active), idle: fmt.int(c.idle),
    connecting: fmt.int(c.connecting), maxSockets: fmt.int(c.maxSockets),
    waiters: fmt.int(k.waitersNow), tlsFull: fmt.int(k.tlsHandshakes.full),
    tlsResumed: fmt.int(k.tlsHandshakes.resumed), created: fmt.int(k.connectionsCreated),
    closed: fmt.int(k.connectionsClosed), stale: fmt.int(k.staleCaughtBeforeReuse),
    averageConnectionAge: fmt.secs(perf.averageConnectionAge),
  };
  for (const [f, v] of Object.entries(values)) set(sec, f, v);
  const issues = sec.querySelector('[data-field="issues"]');
  const mine = health.issues.filter((i) => i.startsWith(p.provider + ":"));
  if (issues.textContent !== mine.join("")) {
    issues.replaceChildren(...mine.map((i) => el("li", {}, i)));
  }
  renderCharts(sec, p);
  const tbody = sec.querySelector('[data-field="connections"] tbody');
  const rows = p.openConnections.map((o) => {
    const tr = el("tr", { "data-connection": String(o.id) });
    tr.appendChild(el("th", { scope: "row", "data-col": "id" }, `#${o.id}`));
    const proto = o.protocol === "h2" ? `h2 (${o.openStreams ?? 0} streams)` : (o.protocol || "-");
    tr.appendChild(el("td", { "data-col": "protocol" }, proto));
    tr.appendChild(el("td", { "data-col": "state" }, o.state));
    tr.appendChild(el("td", { "data-col": "age" }, fmt.secs(o.ageSeconds)));
    tr.appendChild(el("td", { "data-col": "idleFor" }, fmt.secs(o.idleForSeconds)));
    tr.appendChild(el("td", { "data-col": "requests" }, fmt.int(o.requests)));
    return tr;
  });
  if (rows.length === 0) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: "6" }, "No open connection."));
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

function renderCharts(sec, p) {
  const pts = p.recent.points;
  const n = pts.length, w = 300 / n;
  const rps = sec.querySelector('svg[data-chart="rps"]');
  const maxR = Math.max(1, ...pts.map((x) => x.requestsPerSecond));
  const bars = pts.map((x, i) => {
    const h = (x.requestsPerSecond / maxR) * 58;
    const r = document.createElementNS(svgNS, "rect");
    r.setAttribute("class", "bar");
    r.setAttribute("x", (i * w + 0.5).toFixed(1));
    r.setAttribute("width", Math.max(w - 1, 1).toFixed(1));
    r.setAttribute("y", (60 - h).toFixed(1));
    r.setAttribute("height", h.toFixed(1));
    return r;
  });
  rps.replaceChildren(...bars);
  const now = pts[n - 1];
  const prev = pts[n - 2] || now;
  rps.setAttribute("aria-label", `Requests per second over the last 5 minutes: ${fmt.rate(prev.requestsPerSecond)} in the last full 10 seconds, peak ${fmt.rate(maxR === 1 && !pts.some((x) => x.requestsPerSecond) ? 0 : maxR)}.`);
  const lat = sec.querySelector('svg[data-chart="latency"]');
  const maxL = Math.max(1, ...pts.map((x) => x.p99Ms || 0));
  const line = (field, cls) => {
    const d = [], dots = [];
    pts.forEach((x, i) => {
      if (x[field] === null) return;
      const cx = (i * w + w / 2).toFixed(1), cy = (60 - (x[field] / maxL) * 56).toFixed(1);
      d.push(`${d.length ? "L" : "M"}${cx},${cy}`);
      const dot = document.createElementNS(svgNS, "circle");
      dot.setAttribute("class", cls);
      dot.setAttribute("cx", cx);
      dot.setAttribute("cy", cy);
      dot.setAttribute("r", "2");
      dots.push(dot);
    });
    const path = document.createElementNS(svgNS, "path");
    path.setAttribute("class", cls);
    path.setAttribute("d", d.join(" ") || "M0,60");
    return [path, ...dots];
  };
  lat.replaceChildren(...line("p50Ms", "p50"), ...line("p99Ms", "p99"));
  const last = [...pts].reverse().find((x) => x.p50Ms !== null);
  set(sec, "rpsNow", `${fmt.rate(prev.requestsPerSecond)} in the last full slot, ${now.requests} requests so far in this one`);
  set(sec, "p50Now", last ? fmt.ms(last.p50Ms) : "–");
  set(sec, "p99Now", last ? fmt.ms(last.p99Ms) : "–");
  lat.setAttribute("aria-label", last
    ? `Latency over the last 5 minutes: latest p50 ${fmt.ms(last.p50Ms)}, p99 ${fmt.ms(last.p99Ms)}.`
    : "Latency over the last 5 minutes: no request yet.");
}

async function destroy(name, btn) {
  btn.disabled = true;
  try {
    const resp = await fetch(`/api/connections/destroy/${encodeURIComponent(name)}`, {
      method: "POST", headers: { ...authHeaders(), "content-type": "application/json" }, body: "{}",
    });
    const body = await resp.json();
    if (resp.ok && body.success) {
      announce(`${name}: closed ${body.data.closedIdle} idle connection(s); ${body.data.closingActive} active close when done.`);
    } else {
      announce(`${name}: destroy failed: ${body.error || resp.status}`);
    }
  } catch (e) {
    announce(`${name}: destroy failed: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("#key-input").value.trim();
    if (!v) return;
    sessionStorage.setItem(KEY_STORE, v);
    $("#key-input").value = "";
    connect();
  });
  connect();
});
