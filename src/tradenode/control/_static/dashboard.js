// The tradenode dashboard: renders the snapshots /v1/events pushes (server-sent
// events) and sends the operator's actions to the control API's own endpoints with
// the token typed on the page (kept in sessionStorage only, sent as a Bearer token).
// No framework, no build step, nothing loaded from elsewhere.
"use strict";

const TOKEN_KEY = "tradenode.token";
const $ = (id) => document.getElementById(id);

function token() {
  return $("token").value.trim();
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

// -- rendering (textContent only: no markup from the node ever reaches the page) --

function cell(row, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (numeric) td.className = "num";
  row.appendChild(td);
  return td;
}

function fillTable(id, rows, columns, key) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  for (const item of rows) {
    const tr = document.createElement("tr");
    if (key) tr.dataset.key = item[key];
    for (const [field, numeric] of columns) cell(tr, item[field], numeric);
    body.appendChild(tr);
  }
}

function setState(id, value) {
  const el = $(id);
  el.textContent = value;
  el.dataset.state = value;
}

function renderTree(node) {
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = node.name + " [" + node.state + ", restarts=" + node.restarts + "]";
  if (node.restarts > 0) label.className = "restarted";
  li.appendChild(label);
  if (node.children && node.children.length) {
    const ul = document.createElement("ul");
    for (const child of node.children) ul.appendChild(renderTree(child));
    li.appendChild(ul);
  }
  return li;
}

function renderChart(history) {
  const line = $("pnl-line");
  const zero = $("pnl-zero");
  const width = 600, height = 140, pad = 6;
  if (!history.length) {
    line.setAttribute("points", "");
    return;
  }
  const xs = history.map((p) => p[0]);
  const ys = history.map((p) => Number(p[1]));
  let lo = Math.min(0, ...ys), hi = Math.max(0, ...ys);
  if (hi === lo) { hi += 1; lo -= 1; }
  const x0 = xs[0], span = Math.max(1, xs[xs.length - 1] - x0);
  const y = (v) => pad + (height - 2 * pad) * (1 - (v - lo) / (hi - lo));
  const points = history.map((p, i) =>
    (history.length === 1 ? width : ((p[0] - x0) / span) * width).toFixed(1) + "," + y(ys[i]).toFixed(1));
  if (history.length === 1) points.unshift("0," + y(ys[0]).toFixed(1));
  line.setAttribute("points", points.join(" "));
  zero.setAttribute("y1", y(0).toFixed(1));
  zero.setAttribute("y2", y(0).toFixed(1));
}

function render(s) {
  if (s.error) {
    setState("conn", "down");
    $("conn").textContent = "node: " + s.error;
    return;
  }
  $("node-name").textContent = s.node;
  setState("trading-state", s.trading_state);
  setState("execution-mode", s.execution_mode);
  $("pnl-realized").textContent = s.pnl.realized;
  $("pnl-unrealized").textContent = s.pnl.unrealized;
  $("pnl-total").textContent = s.pnl.total;
  renderChart(s.pnl.history);
  fillTable("positions", s.positions, [["venue"], ["symbol"], ["quantity", true], ["avg_price", true], ["realized", true], ["unrealized", true]]);
  $("fill-count").textContent = s.fill_count + " in all";
  fillTable("fills", s.fills, [["client_order_id"], ["venue"], ["symbol"], ["side"], ["quantity", true], ["price", true], ["commission", true]], "execution_id");
  fillTable("orders", s.orders, [["client_order_id"], ["strategy"], ["venue"], ["symbol"], ["side"], ["type"], ["quantity", true], ["price", true], ["status"], ["filled", true], ["avg_price", true]], "client_order_id");
  const breakers = Object.entries(s.breakers).map(([venue, b]) => Object.assign({ venue }, b));
  fillTable("breakers", breakers, [["venue"], ["state"], ["failures", true], ["dlq", true], ["in_flight", true]], "venue");
  fillTable("approvals", s.approvals, [["id"], ["strategy"], ["venue"], ["symbol"], ["side"], ["quantity", true], ["price", true], ["why"]], "id");
  for (const row of $("approvals").tBodies[0].rows) {
    const td = document.createElement("td");
    for (const verdict of ["approve", "reject"]) {
      const button = document.createElement("button");
      button.textContent = verdict;
      button.className = verdict;
      button.addEventListener("click", () => decide(row.dataset.key, verdict));
      td.appendChild(button);
    }
    row.appendChild(td);
  }
  const alerts = $("alerts");
  alerts.replaceChildren();
  for (const a of s.alerts) {
    const li = document.createElement("li");
    li.dataset.severity = a.severity;
    li.dataset.delivery = a.delivery;
    li.textContent =
      a.at + " " + a.kind + " [" + a.severity + "] " + a.summary + " (" + a.delivery + ")";
    alerts.appendChild(li);
  }
  const tree = $("tree");
  tree.replaceChildren();
  if (s.tree) {
    const ul = document.createElement("ul");
    ul.appendChild(renderTree(s.tree));
    tree.appendChild(ul);
  }
}

// -- the event stream: fetch (so a token can go in a header) reading text/event-stream --

async function stream() {
  const response = await fetch("/v1/events", { headers: authHeaders(), cache: "no-store" });
  if (!response.ok) {
    let message = response.status + "";
    try { message += " " + (await response.json()).error; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  setState("conn", "live");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, ""));
      if (data.length) render(JSON.parse(data.join("\n")));
    }
  }
}

function connect() {
  stream()
    .catch((error) => { $("conn").dataset.state = "down"; $("conn").textContent = "disconnected: " + error.message; })
    .finally(() => {
      if ($("conn").dataset.state === "live") setState("conn", "reconnecting");
      setTimeout(connect, 2000);
    });
}

// -- actions: confirmed, with the token, through the audited control API endpoints --

const ACTIONS = {
  "kill": { question: "Engage the KILL SWITCH? Trading halts and every open order is cancelled.", path: "/v1/kill-switch", body: { flatten: false } },
  "kill-flatten": { question: "Engage the KILL SWITCH and FLATTEN every position?", path: "/v1/kill-switch", body: { flatten: true } },
  "halt": { question: "Halt trading (no new orders)?", path: "/v1/trading-state", body: { state: "HALTED" } },
  "resume": { question: "Resume trading (ACTIVE)?", path: "/v1/trading-state", body: { state: "ACTIVE" } },
};

function showResult(outcome, text) {
  const out = $("action-result");
  out.dataset.outcome = outcome;
  out.textContent = text;
}

function act(name) {
  const action = ACTIONS[name];
  return send(name, action.question, action.path, action.body);
}

function decide(id, verdict) {
  const path = "/v1/approvals/" + encodeURIComponent(id) + "/" + verdict;
  return send(verdict + " " + id, verdict.toUpperCase() + " order " + id + "?", path, {});
}

async function send(name, question, path, body) {
  if (!window.confirm(question)) {
    showResult("cancelled", name + ": not confirmed, nothing sent");
    return;
  }
  showResult("pending", name + ": sending...");
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
      body: JSON.stringify(body),
      cache: "no-store",
    });
    const answer = await response.json();
    if (response.ok) {
      showResult("ok", name + ": done (" + response.status + ")");
    } else {
      showResult("refused", name + ": refused " + response.status + " " + answer.error + ": " + answer.message);
    }
  } catch (error) {
    showResult("refused", name + ": failed: " + error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const input = $("token");
  input.value = sessionStorage.getItem(TOKEN_KEY) || "";
  input.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, input.value));
  for (const name of Object.keys(ACTIONS)) $(name).addEventListener("click", () => act(name));
  connect();
});
