// The live fleet view: one websocket (/ws), the state snapshot then its changes, recent events,
// proposals with Approve / Reject when the companion serves them. Message shapes: docs/FEEDS.md.

import { drawFleet, shortId } from "./graph.js";

const VERSION = 1;
const SECTIONS = ["fleet", "members", "channels", "targets", "ignored"];
let state = emptyState();
let proposals = {};
let socket = null;
let drawPending = false;
let retryMs = 500;
let chosenMember = null;

function emptyState() {
  return Object.fromEntries(SECTIONS.map((s) => [s, {}]));
}

function token() {
  const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : sessionStorage.getItem("hive-token");
}

function applyChange(change) {
  for (const [section, delta] of Object.entries(change)) {
    const entries = state[section] || (state[section] = {});
    for (const key of delta.remove || []) delete entries[key];
    Object.assign(entries, delta.set || {});
  }
}

function sat(value) {
  if (value === null || value === undefined) return "–";
  if (value >= 1e8) return `${(value / 1e8).toFixed(2)} BTC`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${Math.round(value / 1e3)}k`;
  return String(value);
}

function text(tag, content, cls) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (cls) node.className = cls;
  return node;
}

function setConnection(on, label) {
  const pill = document.getElementById("connection");
  pill.textContent = label;
  pill.className = `pill ${on ? "pill-on" : "pill-off"}`;
}

function render() {
  drawPending = false;
  const fleet = state.fleet.fleet || {};
  const figures = document.getElementById("figures");
  figures.replaceChildren(
    ...[
      [fleet.members ?? 0, "members"],
      [fleet.coverage ?? 0, "targets reached"],
      [sat(fleet.fleet_capacity_sat ?? 0), "fleet capacity (sat)"],
      [Object.keys(state.ignored).length, "ignored for saturation"],
      [fleet.hive_id ? shortId(fleet.hive_id) : "no hive", "hive"],
    ].map(([value, label]) => {
      const box = document.createElement("div");
      box.className = "figure";
      box.append(text("b", String(value)), text("span", label));
      return box;
    }),
  );
  drawFleet(document.getElementById("graph"), state);
  renderMembers(fleet.node_id);
}

function schedule() {
  if (!drawPending) {
    drawPending = true;
    requestAnimationFrame(render);
  }
}

// "base/ppm since HH:MM" (UTC, or the date when older than a day) for the fee policy our
// channels with a member apply; "–" when none is applied.
function fees(f) {
  const cell = text("td", "–", "num");
  if (!f) return cell;
  const since = new Date(f.since_ms).toISOString();
  const recent = Date.now() - f.since_ms < 86_400_000;
  cell.textContent = `${f.base_msat}/${f.ppm} since ${recent ? since.slice(11, 16) : since.slice(0, 10)}`;
  cell.title = `base ${f.base_msat} msat, ${f.ppm} ppm, applied ${since}`;
  return cell;
}

function renderMembers(self) {
  const body = document.querySelector("#members tbody");
  const rows = Object.entries(state.members).sort(([a], [b]) => a.localeCompare(b));
  body.replaceChildren(
    ...rows.map(([id, m]) => {
      const tr = document.createElement("tr");
      tr.dataset.member = id;
      if (id === chosenMember) tr.classList.add("chosen");
      tr.onclick = () => {
        chosenMember = chosenMember === id ? null : id;
        renderMembers(self);
      };
      const name = text("td", shortId(id) + (id === self ? " ★" : ""), "id");
      if (id === self) name.classList.add("self");
      name.title = id;
      const out = m.outbound_msat ?? 0;
      const inbound = m.inbound_msat ?? 0;
      const liq = document.createElement("td");
      const bar = document.createElement("span");
      bar.className = "liq";
      const fill = document.createElement("i");
      fill.style.width = `${out + inbound ? Math.round((100 * out) / (out + inbound)) : 0}%`;
      bar.title = `${sat(Math.round(out / 1000))} out / ${sat(Math.round(inbound / 1000))} in`;
      bar.appendChild(fill);
      liq.appendChild(bar);
      tr.append(
        name,
        text("td", m.role || "–"),
        text("td", m.channels ?? "–", "num"),
        text("td", sat(m.capacity_sat), "num"),
        liq,
        text("td", sat(m.onchain_sat), "num"),
        fees(m.fees),
      );
      return tr;
    }),
  );
  renderChannels();
}

function renderChannels() {
  const box = document.getElementById("member-channels");
  const channels = chosenMember ? state.channels[chosenMember] : null;
  box.hidden = !chosenMember;
  if (!chosenMember) return;
  const edges = channels ? channels.edges : [];
  const more = channels && channels.total > edges.length ? ` (largest ${edges.length} of ${channels.total})` : "";
  document.getElementById("member-channels-title").textContent =
    `Channels of ${shortId(chosenMember)}${more}`;
  box.querySelector("tbody").replaceChildren(
    ...edges.map((e) => {
      const tr = document.createElement("tr");
      const peer = text("td", shortId(e.peer), "id");
      peer.title = e.peer;
      tr.append(peer, text("td", sat(e.capacity_sat), "num"),
        text("td", `${Math.round(e.local_share_ppm / 1e4)}%`, "num"));
      return tr;
    }),
  );
  if (!edges.length) box.querySelector("tbody").append(text("tr", "no published channels", "empty"));
}

function addEvent(event, prepend = true) {
  const list = document.getElementById("events");
  list.querySelector(".empty")?.remove();
  const li = document.createElement("li");
  li.dataset.kind = event.kind;
  li.append(
    text("span", new Date(event.at_ms).toISOString().slice(11, 19), "when"),
    text("span", event.kind, "kind"),
    text("span", event.subject ? shortId(event.subject) : "", "id"),
    text("span", event.why, "why"),
  );
  if (prepend) list.prepend(li); else list.append(li);
  while (list.children.length > 100) list.lastChild.remove();
}

function renderProposals() {
  const list = document.getElementById("proposals");
  const items = Object.values(proposals).sort((a, b) => {
    const open = (p) => (p.state === "pending" ? 0 : 1);
    return open(a) - open(b) || (b.created_ms || 0) - (a.created_ms || 0);
  });
  const waiting = items.filter((p) => p.state === "pending").length;
  document.getElementById("proposal-count").textContent = waiting ? `(${waiting})` : "";
  if (!items.length) {
    list.replaceChildren(text("li", "none", "empty"));
    return;
  }
  list.replaceChildren(
    ...items.slice(0, 30).map((p) => {
      const li = document.createElement("li");
      li.dataset.proposal = p.id;
      li.dataset.state = p.state;
      li.append(text("span", p.kind, "kind"), text("span", p.summary || p.id));
      const figures = [`why: ${p.reason}`];
      if (typeof p.confidence === "number") figures.push(`confidence ${Math.round(p.confidence * 100)}%`);
      li.append(text("span", figures.join(" · "), "why"));
      if (p.state === "pending") {
        if (p.held_by) li.append(text("span", `held by the ${p.held_by} limit`, "why"));
        const approve = text("button", "Approve", "approve");
        const reject = text("button", "Reject", "reject");
        approve.onclick = () => decide(p.id, "approve", [approve, reject]);
        reject.onclick = () => decide(p.id, "reject", [approve, reject]);
        li.append(approve, document.createTextNode(" "), reject);
      } else {
        li.append(text("span", p.state, `outcome ${p.state}`));
        if (p.held_by) li.append(text("span", `held by the ${p.held_by} limit`, "why"));
        const d = p.decision;
        if (d) li.append(text("span", `${d.approve ? "approved" : "rejected"} by ${d.by}: ${d.reason}`, "why"));
        const o = p.outcome;
        if (o) li.append(text("span", o.ok ? `done: ${(o.calls || []).join(", ")}` : `error: ${o.error}`, "why"));
      }
      return li;
    }),
  );
}

function decide(id, verdict, buttons) {
  for (const b of buttons) b.disabled = true;
  socket?.send(JSON.stringify({ v: VERSION, type: verdict, proposal: id }));
}

function onMessage(raw) {
  const message = JSON.parse(raw.data);
  if (message.v !== VERSION) return;
  if (message.type === "hello") {
    socket.send(JSON.stringify({ v: VERSION, type: "subscribe", topics: message.topics }));
    document.getElementById("proposals-section").hidden = !message.topics.includes("proposals");
    document.getElementById("ledger-section").hidden = !message.topics.includes("ledger");
    return;
  }
  if (message.type === "error") {
    console.warn("hive:", message.reason);
    return;
  }
  if (message.type === "decided") return; // the proposals topic brings the new state
  const { topic, type, data } = message;
  if (topic === "state") {
    if (type === "snapshot") state = Object.assign(emptyState(), data);
    else applyChange(data);
    schedule();
  } else if (topic === "events") {
    if (type === "snapshot") {
      document.getElementById("events").replaceChildren(text("li", "none yet", "empty"));
      for (const event of data) addEvent(event);
    } else addEvent(data);
  } else if (topic === "proposals") {
    if (type === "snapshot") proposals = Object.fromEntries((data || []).map((p) => [p.id, p]));
    else proposals[data.id] = data;
    renderProposals();
  } else if (topic === "ledger") {
    const list = document.getElementById("ledger");
    if (type === "snapshot") list.replaceChildren();
    // Snapshots come newest first; each entry is put on top, so walk them oldest first.
    const entries = type === "snapshot" ? [...(data || [])].reverse() : [data];
    for (const entry of entries) {
      const li = text("li", "");
      li.append(
        text("span", new Date(entry.at_ms).toISOString().slice(11, 19), "when"),
        text("span", entry.entry, "kind"),
        text("span", `${entry.kind || ""} ${entry.proposal_id || ""} by ${entry.actor}`, "id"),
      );
      list.prepend(li);
      while (list.children.length > 50) list.lastChild.remove();
    }
  }
}

function connect() {
  const secret = token();
  const login = document.getElementById("login");
  if (!secret) {
    login.hidden = false;
    setConnection(false, "token needed");
    return;
  }
  login.hidden = true;
  sessionStorage.setItem("hive-token", secret);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(secret)}`);
  socket.onopen = () => { retryMs = 500; setConnection(true, "live"); };
  socket.onmessage = onMessage;
  socket.onclose = (event) => {
    setConnection(false, event.code === 1006 ? "disconnected" : `closed: ${event.reason || event.code}`);
    socket = null;
    // A refused token (the handshake fails before opening) asks for it again.
    if (event.code === 1006 && retryMs > 4000 && !location.hash) sessionStorage.removeItem("hive-token");
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  };
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("hive-token", document.getElementById("token").value.trim());
  connect();
});
// Keep the token out of the address bar (and out of screenshots and history).
if (location.hash.includes("token=")) {
  sessionStorage.setItem("hive-token", token());
  history.replaceState(null, "", location.pathname);
}
connect();
