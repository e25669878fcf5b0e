// The raft-lab dashboard page: draws each frame the server pushes over Server-Sent Events and
// posts the controls back. Plain JS and SVG, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
let frame = null; // the newest frame
let sliding = false; // the user holds the replay slider: frames do not move it
const picked = new Set(); // group A of the partition control, node ids

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// As the server quotes a shell word (actions::shell_word).
function shellWord(w) {
  return /^[A-Za-z0-9,._\/:=@%+-]+$/.test(w) ? w : "'" + w.replace(/'/g, "'\\''") + "'";
}

function bytes(b) {
  if (b < 1e3) return Math.round(b) + "B";
  const [v, u] = b < 1e6 ? [b / 1e3, "k"] : b < 1e9 ? [b / 1e6, "M"] : [b / 1e9, "G"];
  return (v < 10 ? v.toFixed(1) : Math.round(v)) + u + "B";
}

// Wall time of day live; time since the log's start in a replay.
function clock(ms) {
  // A frame's time is in whole ms, so the log's first moment may fall just before its start.
  if (frame && frame.replay) return "+" + (Math.max(0, ms * 1000 - frame.replay.start_us) / 1e6).toFixed(3) + " s";
  return new Date(ms).toISOString().slice(11, 23) + " UTC";
}

// ---- the frame ----

function render(f) {
  frame = f;
  const v = f.view;
  if (v.groups.length) {
    // A sharded system: each Raft group has its own leader and term.
    const each = (f) => v.groups.map((g) => g.name + " " + f(g)).join(" · ");
    $("leader").textContent = each((g) => (g.leader === null ? "none" : "n" + g.leader));
    $("term").textContent = each((g) => (g.term === null ? "-" : g.term));
  } else {
    $("leader").textContent = v.leader === null ? "none" : "n" + v.leader;
    $("term").textContent = v.term === null ? "-" : v.term;
  }
  $("answering").textContent = v.nodes.filter((n) => n.state).length + "/" + v.nodes.length;
  $("clock").textContent = clock(v.at_ms);
  renderReplay(f.replay);
  renderCards(v);
  renderGraph(v.network, v.nodes, v.relayed);
  renderEvents(f.events);
  syncSelects(v);
  updateCli();
}

// A replica-group server's shards (lab 4): the configuration it is at, and each shard it
// holds by number, coloured by how (serving, receiving parts, sending to its new owner).
function shardRow(sh) {
  const row = el("div", { class: "shards" });
  row.append(el("span", { class: "k" }, "config " + sh.config + " shards"));
  for (const [shard, state] of sh.held) {
    const how = typeof state === "string" ? state : Object.keys(state)[0];
    const tip = how === "Receiving" ? "receiving, " + state.Receiving.next_part + " parts arrived" : how.toLowerCase();
    row.append(el("span", { class: "shard " + how.toLowerCase(), title: "shard " + shard + ": " + tip }, String(shard)));
  }
  if (!sh.held.length) row.append(el("span", { class: "k" }, " none"));
  return row;
}

function renderCards(v) {
  const box = $("cards");
  box.replaceChildren();
  for (const n of v.nodes) {
    const s = n.state;
    const role = s ? s.role : n.status;
    const cls = "card " + role + " " + n.status + (n.stale_leader ? " stale" : "");
    const card = el("div", { class: cls, "data-node": n.id, "data-role": role });
    const title = el("div", { class: "title" });
    const name = el("span", {}, "n" + n.id + (n.group === null ? "" : " · " + n.group) + " ");
    // A leader handing over (§3.10) says to whom, as `just status` does.
    const shown = s && s.transferring_to != null ? role + "→n" + s.transferring_to : role;
    name.append(el("span", { class: "role" }, shown));
    title.append(name);
    const badges = el("span");
    badges.append(el("span", { class: "badge" + (n.status === "up" ? "" : " bad") }, n.status));
    if (!n.connected) badges.append(el("span", { class: "badge bad" }, "disconnected"));
    if (n.stale_leader) badges.append(el("span", { class: "badge bad" }, "stale leader"));
    title.append(badges);
    card.append(title);
    if (s && frame.replay) {
      const rows = [
        ["term", s.term, "leader", s.leader === null ? "-" : s.leader],
        ["commit", s.commit_index, "", ""],
      ];
      card.append(table(rows));
    } else if (s) {
      const rows = [
        ["term", s.term, "leader", s.leader === null ? "-" : s.leader],
        ["commit", s.commit_index, "applied", s.last_applied],
        ["last", s.last_log_index, "snapshot", s.snapshot_index],
        ["disk", bytes(s.raft_state_bytes), "kv keys", s.kv_keys === null ? "-" : s.kv_keys],
        ["vote", s.voted_for === null ? "-" : "n" + s.voted_for, "pid", n.process.pid === null ? "-" : n.process.pid],
      ];
      card.append(table(rows));
      if (s.shards) card.append(shardRow(s.shards));
      card.append(logTail(s));
    } else {
      card.append(el("div", { class: "why" }, n.why || ""));
    }
    box.append(card);
  }
}

// The node's last entries as the Raft paper draws a log: a block per entry, oldest on the
// left, numbered and coloured by its term; pale and dashed while not committed.
function logTail(s) {
  const entries = []; // [index, term], newest first, as the runs come
  let index = s.last_log_index;
  for (const run of s.tail) {
    for (let k = 0; k < run.count; k++) entries.push([index--, run.term]);
  }
  const tail = el("div", { class: "tail" });
  if (!entries.length) return tail;
  const first = entries[entries.length - 1][0];
  if (first > 1) tail.append(el("span", { class: "older", title: "entries 1.." + (first - 1) + (s.snapshot_index ? ", through " + s.snapshot_index + " in the snapshot" : "") }, "\u2026" + (first - 1)));
  for (const [i, term] of entries.reverse()) {
    const state = i <= s.last_applied ? "applied" : i <= s.commit_index ? "committed" : "not committed";
    const blk = el("span", { class: "blk" + (i <= s.commit_index ? "" : " pending"), "data-term": term, title: "index " + i + ", term " + term + ": " + state }, String(term));
    blk.style.setProperty("--hue", termHue(term));
    tail.append(blk);
  }
  return tail;
}

// Neighbouring terms get hues far apart (the golden angle). index.html's key draws term 3.
function termHue(term) {
  return Math.round((term * 137.508 + 200) % 360);
}

function table(rows) {
  const t = el("table");
  for (const r of rows) {
    const tr = el("tr");
    r.forEach((c, i) => tr.append(el("td", { class: i % 2 ? "v" : "k" }, String(c))));
    t.append(tr);
  }
  return t;
}

function renderReplay(r) {
  $("replay").hidden = !r;
  $("controls").hidden = !!r;
  $("tail-note").hidden = !!r;
  if (!r) return;
  $("replay-log").textContent = r.log;
  $("play").textContent = r.playing ? "pause" : "play";
  const slider = $("slider");
  slider.max = Math.round((r.end_us - r.start_us) / 1000);
  if (!sliding) slider.value = Math.round((r.at_us - r.start_us) / 1000);
  $("replay-at").textContent = "+" + ((r.at_us - r.start_us) / 1e6).toFixed(3) + " s of " + ((r.end_us - r.start_us) / 1e6).toFixed(1) + " s";
}

function replay(body) {
  return fetch("/api/replay", { method: "POST", headers: { "X-Raft-Lab": "1", "Content-Type": "text/plain" }, body });
}

$("play").addEventListener("click", () => replay(frame.replay.playing ? "pause" : "play"));
$("speed").addEventListener("change", () => replay("speed " + $("speed").value));
$("slider").addEventListener("pointerdown", () => (sliding = true));
$("slider").addEventListener("pointerup", () => (sliding = false));
$("slider").addEventListener("input", () => replay("seek " + (frame.replay.start_us + Number($("slider").value) * 1000)));

// Nodes on a circle, clerks on an arc below it.
function positions(endpoints) {
  const nodes = endpoints.filter((e) => !e.startsWith("c"));
  const clerks = endpoints.filter((e) => e.startsWith("c"));
  const at = {};
  nodes.forEach((e, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
    at[e] = [260 + 150 * Math.cos(a), 200 + 150 * Math.sin(a)];
  });
  clerks.forEach((e, i) => {
    at[e] = [60 + (400 * (i + 0.5)) / clerks.length, 410];
  });
  return at;
}

function renderGraph(net, nodes, relayed) {
  $("net-summary").textContent = net.error ? "netproxy at " + net.addr + ": " + net.error : net.summary;
  const at = positions(net.endpoints);
  const links = $("links");
  links.replaceChildren();
  for (const l of net.links) {
    const [x1, y1] = at[l.from], [x2, y2] = at[l.to];
    const len = Math.hypot(x2 - x1, y2 - y1) || 1;
    // Each direction on its own side of the line between the two, clear of the circles.
    const nx = (-(y2 - y1) / len) * 5, ny = ((x2 - x1) / len) * 5;
    const r = 22 / len;
    const ax = x1 + (x2 - x1) * r + nx, ay = y1 + (y2 - y1) * r + ny;
    const bx = x2 - (x2 - x1) * r + nx, by = y2 - (y2 - y1) * r + ny;
    const cls = ["link", l.per_s > 0 ? "busy" : "", l.cut ? "cut" : "", l.lossy ? "lossy" : "", l.delayed ? "delayed" : ""].join(" ");
    const width = l.cut ? 1.5 : 1 + Math.min(4, Math.log10(1 + l.per_s) * 1.5);
    const line = el("svg:line", { class: cls, x1: ax, y1: ay, x2: bx, y2: by, "stroke-width": width, "marker-end": "url(#arrow)", "data-from": l.from, "data-to": l.to });
    const tip = l.from + "->" + l.to + ": " + l.per_s + "/s " + bytes(l.bytes_per_s) + "/s" + (l.lost_per_s ? ", lost " + l.lost_per_s + "/s" : "") + (l.cut ? ", cut" : "") + (l.faults ? ", " + l.faults : "");
    line.append(el("svg:title", {}, tip));
    links.append(line);
    if (l.per_s > 0 || l.cut) {
      const tx = ax + (bx - ax) * 0.3 + nx * 1.6, ty = ay + (by - ay) * 0.3 + ny * 1.6 + 3;
      const label = l.cut ? "\u2715" + (l.lost_per_s ? " " + l.lost_per_s : "") : String(l.per_s);
      links.append(el("svg:text", { class: "rate" + (l.cut ? " cut" : ""), x: tx, y: ty, "text-anchor": "middle" }, label));
    }
  }
  // Relayed routes (issue 16): a curve from the sender past its relay to the target.
  for (const r of relayed) {
    if (!at[r.from] || !at[r.to] || !at[r.via]) continue;
    const [ax, ay] = at[r.from], [bx, by] = at[r.to], [vx, vy] = at[r.via];
    const mx = (ax + bx) / 2, my = (ay + by) / 2;
    const d = Math.hypot(mx - vx, my - vy) || 1;
    // The curve's middle passes just outside the relay's circle, on the side facing the pair.
    const px = vx + ((mx - vx) / d) * 28, py = vy + ((my - vy) / d) * 28;
    // Each direction of a pair on its own side, as the links are.
    const len = Math.hypot(bx - ax, by - ay) || 1;
    const cx = 2 * px - mx - ((by - ay) / len) * 8, cy = 2 * py - my + ((bx - ax) / len) * 8;
    // Both ends clear of the circles, toward the control point.
    const clear = (x, y) => {
      const l = Math.hypot(cx - x, cy - y) || 1;
      return [x + ((cx - x) / l) * 22, y + ((cy - y) / l) * 22];
    };
    const [sx, sy] = clear(ax, ay), [ex, ey] = clear(bx, by);
    const path = el("svg:path", { class: "relayed", d: `M${sx},${sy} Q${cx},${cy} ${ex},${ey}`, "marker-end": "url(#arrow)" });
    path.append(el("svg:title", {}, r.from + "->" + r.to + " via " + r.via + ": relayed copies in the last second"));
    links.append(path);
  }
  const eps = $("endpoints");
  eps.replaceChildren();
  for (const e of net.endpoints.length ? net.endpoints : nodes.map((n) => String(n.id))) {
    const [x, y] = at[e] || [0, 0];
    const node = e.startsWith("c") ? null : nodes[Number(e)];
    let cls = "endpoint";
    if (!node) cls += " clerk";
    else if (node.state) cls += " " + node.state.role;
    else cls += " out";
    if (node && node.status === "paused") cls += " paused";
    if (node && picked.has(node.id)) cls += " picked";
    const g = el("svg:g", { class: cls, "data-endpoint": e });
    g.append(el("svg:circle", { cx: x, cy: y, r: e.startsWith("c") ? 14 : 20 }));
    g.append(el("svg:text", { x: x, y: y - 2, "text-anchor": "middle" }, e.startsWith("c") ? e : "n" + e));
    if (node) {
      const sub = node.state ? "t" + node.state.term : node.status;
      g.append(el("svg:text", { x: x, y: y + 10, "text-anchor": "middle" }, sub));
      g.addEventListener("click", () => {
        picked.has(node.id) ? picked.delete(node.id) : picked.add(node.id);
        renderGraph(net, nodes, relayed);
        updateCli();
      });
    }
    eps.append(g);
  }
}

function renderEvents(events) {
  const list = $("events");
  list.replaceChildren();
  for (const e of events.slice().reverse()) {
    const li = el("li", { "data-kind": e.kind });
    li.append(el("span", { class: "when" }, clock(e.at_ms)));
    li.append(el("span", { class: "kind " + e.kind }, e.kind));
    li.append(document.createTextNode(e.text));
    list.append(li);
  }
}

function syncSelects(v) {
  const names = v.network.endpoints.length ? v.network.endpoints : v.nodes.map((n) => String(n.id));
  for (const id of ["link-from", "link-to"]) fill($(id), names);
  fill($("node"), v.nodes.map((n) => String(n.id)));
  $("nodes-note").hidden = frame.controls.nodes;
}

function fill(select, names) {
  const have = Array.from(select.options).map((o) => o.value);
  if (have.join() === names.join()) return;
  const value = select.value;
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  if (names.includes(value)) select.value = value;
  else if (select.id === "link-to" && names.length > 1) select.value = names[1];
}

// ---- the controls: each a POST and the command line it stands for ----

function proxyCli(line) {
  const base = frame ? frame.controls.proxy_cli : "netproxy";
  return base + " " + line.split(/\s+/).map(shellWord).join(" ");
}

function groups(a) {
  const rest = frame.view.nodes.map((n) => n.id).filter((i) => !a.includes(i));
  return a.join(",") + " " + rest.join(",");
}

function link() {
  return $("link-from").value + ($("link-both").checked ? "<->" : "->") + $("link-to").value;
}

function pid() {
  const n = frame && frame.view.nodes[Number($("node").value)];
  return n && n.process.pid !== null ? n.process.pid : "PID";
}

// id -> [api, body, why there is no body]; the shown command is computed from them.
const CONTROLS = {
  partition: () => ["proxy", picked.size ? "partition " + groups([...picked].sort()) : null, "(click nodes in the graph to pick group A)"],
  "isolate-leader": () => ["proxy", frame.view.leader === null ? null : "partition " + groups([frame.view.leader]), "(no leader to isolate)"],
  heal: () => ["proxy", "heal"],
  unreliable: () => ["proxy", "unreliable"],
  reliable: () => ["proxy", "reliable"],
  cut: () => ["proxy", "down " + link()],
  restore: () => ["proxy", "up " + link()],
  disconnect: () => ["proxy", "disconnect " + $("node").value],
  connect: () => ["proxy", "connect " + $("node").value],
  kill: () => ["node", "kill " + $("node").value],
  restart: () => ["node", "restart " + $("node").value],
  pause: () => ["node", "pause " + $("node").value],
  resume: () => ["node", "resume " + $("node").value],
  submit: () => ["submit", $("command").value],
  put: () => ["kv", "put " + $("key").value + " " + $("value").value],
  get: () => ["kv", "get " + $("key").value],
};

function cli(api, body, why) {
  if (body === null) return why;
  switch (api) {
    case "proxy": return proxyCli(body);
    case "submit": return "raft-lab submit " + shellWord(body);
    case "kv": return "raft-lab kv " + body.split(/\s+/).map(shellWord).join(" ");
    default: {
      const [verb, id] = body.split(" ");
      const sig = { kill: "KILL", pause: "STOP", resume: "CONT" }[verb];
      return sig ? "kill -" + sig + " " + pid() : "raft-node run ... (raft-lab cluster starts node " + id + " again on its data dir)";
    }
  }
}

function updateCli() {
  if (!frame) return;
  for (const [id, make] of Object.entries(CONTROLS)) {
    const [api, body, why] = make();
    document.querySelector('[data-cli="' + id + '"]').textContent = cli(api, body, why);
    $(id).disabled = body === null || ($(id).classList.contains("needs-nodes") && !frame.controls.nodes);
  }
}

async function run(id) {
  const [api, body] = CONTROLS[id]();
  if (body === null) return;
  const li = el("li", {}, cli(api, body) + " ...");
  $("ran").prepend(li);
  try {
    const reply = await fetch("/api/" + api, { method: "POST", headers: { "X-Raft-Lab": "1", "Content-Type": "text/plain" }, body });
    const out = await reply.json();
    li.textContent = out.command + " \u2014 " + out.message;
    if (!out.ok) li.className = "failed";
  } catch (e) {
    li.textContent += " \u2014 " + e;
    li.className = "failed";
  }
}

for (const id of Object.keys(CONTROLS)) $(id).addEventListener("click", () => run(id));
for (const id of ["link-from", "link-to", "link-both", "node", "command", "key", "value"]) $(id).addEventListener("input", updateCli);

// One stream for the whole page; EventSource reconnects by itself.
const source = new EventSource("/api/events");
source.onopen = () => ($("link-state").textContent = "live");
source.onerror = () => ($("link-state").textContent = "reconnecting...");
source.onmessage = (e) => render(JSON.parse(e.data));
