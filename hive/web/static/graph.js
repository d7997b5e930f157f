// The fleet as a picture: members on an inner ring, the external nodes they reach on an
// outer ring (placed near the members that reach them), one line per channel coloured by how
// much of it is on our side. Plain SVG, no library.

const SVG = "http://www.w3.org/2000/svg";
const MAX_TARGETS = 160;

export function shortId(id) {
  return id ? `${id.slice(0, 8)}…` : "?";
}

// Local share in parts per million -> a colour from red (drained) over green to blue (full).
export function liquidityColour(ppm) {
  const share = Math.max(0, Math.min(1, ppm / 1e6));
  const stops = [[229, 83, 75], [87, 171, 90], [83, 155, 245]];
  const scaled = share * 2;
  const i = Math.min(1, Math.floor(scaled));
  const t = scaled - i;
  const [a, b] = [stops[i], stops[i + 1]];
  const mix = a.map((v, k) => Math.round(v + (b[k] - v) * t));
  return `rgb(${mix.join(",")})`;
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

export function drawFleet(svg, state) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const members = Object.keys(state.members).sort();
  const memberPos = new Map();
  const inner = members.length <= 1 ? 0 : Math.min(170, 60 + 22 * members.length);
  members.forEach((id, i) => {
    const angle = (2 * Math.PI * i) / Math.max(1, members.length) - Math.PI / 2;
    memberPos.set(id, { x: inner * Math.cos(angle), y: inner * Math.sin(angle), angle });
  });

  // Targets: every peer of a member that is not itself a member; the ones reached by the
  // most members (then the largest capacity) first.
  const reach = new Map();
  for (const [member, channels] of Object.entries(state.channels)) {
    if (!memberPos.has(member)) continue;
    for (const edge of channels.edges) {
      if (memberPos.has(edge.peer)) continue;
      const entry = reach.get(edge.peer) || { members: [], capacity: 0 };
      entry.members.push(member);
      entry.capacity += edge.capacity_sat;
      reach.set(edge.peer, entry);
    }
  }
  const targets = [...reach.entries()]
    .sort((a, b) => b[1].members.length - a[1].members.length || b[1].capacity - a[1].capacity)
    .slice(0, MAX_TARGETS);
  // Place each target at the mean angle of its members, then spread them evenly in that order.
  const preferred = targets.map(([id, entry]) => {
    let sx = 0, sy = 0;
    for (const m of entry.members) {
      sx += Math.cos(memberPos.get(m).angle);
      sy += Math.sin(memberPos.get(m).angle);
    }
    return { id, entry, angle: Math.atan2(sy, sx) };
  });
  preferred.sort((a, b) => a.angle - b.angle);
  const outer = 340;
  const targetPos = new Map();
  const offset = preferred.length ? preferred[0].angle : 0;
  preferred.forEach((t, i) => {
    const angle = offset + (2 * Math.PI * i) / preferred.length;
    const r = outer - (i % 2) * 28;
    targetPos.set(t.id, { x: r * Math.cos(angle), y: r * Math.sin(angle) * 0.9, entry: t.entry });
  });

  const edges = el("g", { class: "edges" }, svg);
  for (const [member, channels] of Object.entries(state.channels)) {
    const from = memberPos.get(member);
    if (!from) continue;
    for (const edge of channels.edges) {
      const to = targetPos.get(edge.peer) || memberPos.get(edge.peer);
      if (!to) continue;
      const width = Math.max(1, Math.min(6, Math.log10(edge.capacity_sat / 1e5 + 1) * 2.5));
      const line = el("line", {
        x1: from.x, y1: from.y, x2: to.x, y2: to.y,
        stroke: liquidityColour(edge.local_share_ppm), "stroke-width": width.toFixed(1),
        "stroke-opacity": "0.85", "data-member": member, "data-peer": edge.peer,
      }, edges);
      el("title", {}, line).textContent =
        `${shortId(member)} → ${shortId(edge.peer)}: ${edge.capacity_sat.toLocaleString()} sat, ` +
        `${Math.round(edge.local_share_ppm / 1e4)}% on our side`;
    }
  }

  const nodes = el("g", { class: "targets" }, svg);
  for (const [id, pos] of targetPos) {
    const count = pos.entry.members.length;
    const r = 4 + 3 * (count - 1);
    const dot = el("circle", {
      cx: pos.x, cy: pos.y, r, fill: count > 1 ? "#a3b1c2" : "#6b7785", class: "target",
      "data-id": id,
    }, nodes);
    el("title", {}, dot).textContent =
      `${id}\nreached by ${count} member(s), ${pos.entry.capacity.toLocaleString()} sat`;
    if (state.ignored[id]) {
      el("circle", {
        cx: pos.x, cy: pos.y, r: r + 5, fill: "none", stroke: "#e5534b",
        "stroke-dasharray": "3 2", "stroke-width": 1.5,
      }, nodes);
    }
    if (count > 1) {
      const label = el("text", { x: pos.x, y: pos.y - r - 4, "text-anchor": "middle",
        class: "target-label" }, nodes);
      label.textContent = shortId(id);
    }
  }

  const self = state.fleet.fleet ? state.fleet.fleet.node_id : null;
  const group = el("g", { class: "members" }, svg);
  for (const [id, pos] of memberPos) {
    const info = state.members[id];
    const fresh = info.fresh;
    const circle = el("circle", {
      cx: pos.x, cy: pos.y, r: 22, fill: fresh ? "#f0b429" : "#6b5a2a",
      stroke: id === self ? "#ffffff" : "#0f1419", "stroke-width": 3, class: "member",
      "data-id": id,
    }, group);
    el("title", {}, circle).textContent = `${id}\n${info.role}, ${info.status}` +
      (info.channels !== null ? `, ${info.channels} channels` : ", no state record yet");
    const label = el("text", { x: pos.x, y: pos.y + 40, "text-anchor": "middle" }, group);
    label.textContent = shortId(id) + (id === self ? " (this node)" : "");
  }
  if (!members.length) {
    const text = el("text", { x: 0, y: 0, "text-anchor": "middle" }, svg);
    text.textContent = "waiting for the fleet…";
  }
}
