// der-gateway dashboard: plain JavaScript, no build step. Everything arrives over one server-sent event stream
// (/dashboard/events): a snapshot first, then station, directive, alarm, sample, link and checkpoint events.
"use strict";

const $ = (sel) => document.querySelector(sel);
const stations = new Map(); // id -> {row, data}
const directives = new Map(); // id -> row
let samples = [];
const MAX_SAMPLES = 600;
const MAX_ALARMS = 100;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function kw(watts) {
  return watts === null || watts === undefined ? "-" : (watts / 1000).toFixed(1) + " kW";
}

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "-";
}

// -- token ---------------------------------------------------------------------------------------------------------

function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem("dergw-token", fromHash);
    history.replaceState(null, "", location.pathname); // keep the token out of the address bar and history
    return fromHash;
  }
  return sessionStorage.getItem("dergw-token");
}

// -- stations ------------------------------------------------------------------------------------------------------

function alarmText(a) {
  if (!a) return "-";
  const what = a.control + (a.grid_event_fault ? " / " + a.grid_event_fault : "");
  return what + (a.ended ? " (ended) " : " ") + time(a.at);
}

function renderStation(s) {
  let entry = stations.get(s.id);
  if (!entry) {
    const row = el("tr");
    row.dataset.id = s.id;
    for (let i = 0; i < 6; i++) row.appendChild(el("td"));
    entry = { row };
    stations.set(s.id, entry);
    insertSorted($("#stations tbody"), row, s.id);
  }
  entry.data = s;
  const cells = entry.row.children;
  cells[0].textContent = s.id;
  cells[0].title = s.groups.join(", ");
  cells[1].replaceChildren(el("span", s.connected ? "connected" : "disconnected", "badge " + (s.connected ? "ok" : "bad")));
  cells[2].textContent = s.version || "-";
  cells[3].textContent = kw(s.power_w) + (s.limit_w !== null ? " / " + kw(s.limit_w) : "");
  cells[4].replaceChildren(...(s.controls.length ? s.controls.map((c) => el("div", c)) : [el("span", "-", "muted")]));
  cells[5].textContent = alarmText(s.last_alarm);
  entry.row.dataset.connection = s.connected ? "connected" : "disconnected";
  entry.row.dataset.version = s.version || "";
  applyFilter(entry);
}

function insertSorted(tbody, row, id) {
  for (const other of tbody.children) {
    if (other.dataset.id > id) {
      tbody.insertBefore(row, other);
      return;
    }
  }
  tbody.appendChild(row);
}

function applyFilter(entry) {
  const text = $("#filter-text").value.trim().toLowerCase();
  const version = $("#filter-version").value;
  const connection = $("#filter-connection").value;
  const s = entry.data;
  const haystack = [s.id, ...s.groups, ...s.controls, alarmText(s.last_alarm)].join(" ").toLowerCase();
  entry.row.hidden =
    (text && !haystack.includes(text)) ||
    (version && s.version !== version) ||
    (connection && entry.row.dataset.connection !== connection);
}

function refilter() {
  for (const entry of stations.values()) applyFilter(entry);
  summarize();
}

function summarize() {
  let connected = 0;
  let shown = 0;
  for (const entry of stations.values()) {
    if (entry.data.connected) connected++;
    if (!entry.row.hidden) shown++;
  }
  $("#station-count").textContent = `(${shown} shown of ${stations.size})`;
  $("#fleet-summary").textContent = `${connected} of ${stations.size} stations connected`;
}

// -- directives ----------------------------------------------------------------------------------------------------

function renderDirective(d) {
  let row = directives.get(d.id);
  if (!row) {
    row = el("tr");
    row.dataset.id = d.id;
    for (let i = 0; i < 7; i++) row.appendChild(el("td"));
    directives.set(d.id, row);
    $("#directives tbody").prepend(row);
  }
  const cells = row.children;
  cells[0].textContent = d.id;
  cells[1].textContent = d.source;
  cells[2].replaceChildren(el("span", d.state, "badge state-" + d.state));
  if (d.event) cells[3].textContent = d.event;
  cells[4].textContent = d.controls.join(", ");
  const counts = Object.entries(d.counts).sort();
  cells[5].replaceChildren(
    ...(counts.length ? counts.map(([k, n]) => el("span", `${k} ${n}`, "badge count st-" + k)) : [el("span", "pending", "muted")]),
  );
  cells[5].className = "outcomes";
  cells[6].textContent = time(d.updated);
  row.dataset.state = d.state;
}

// -- alarms, links, checkpoint -------------------------------------------------------------------------------------

function addAlarm(a) {
  const list = $("#alarms");
  const item = el("li", `${time(a.at)} ${a.station_id}: ${alarmText(a)}${a.extra_info ? " - " + a.extra_info : ""}`);
  item.dataset.station = a.station_id;
  if (a.ended) item.className = "alarm-ended";
  list.prepend(item);
  while (list.children.length > MAX_ALARMS) list.lastChild.remove();
}

function renderLinks(links) {
  const list = $("#links");
  if (!links.length) {
    list.replaceChildren(el("li", "none configured", "muted"));
    return;
  }
  list.replaceChildren(
    ...links.map((l) => {
      const item = el("li");
      item.dataset.protocol = l.protocol;
      item.append(el("span", l.ok ? "up" : "down", "badge " + (l.ok ? "ok" : "bad")), " " + l.protocol);
      item.append(el("span", ` last contact ${time(l.last_seen)}${l.detail ? " - " + l.detail : ""}`, "muted"));
      return item;
    }),
  );
}

function renderCheckpoint(c) {
  const text = c.time
    ? `${c.tree_size} entries signed at ${time(c.time)}; ${c.unsigned} newer entries not yet in a checkpoint`
    : `${c.entries} entries, no checkpoint yet`;
  $("#checkpoint").textContent = text;
  $("#checkpoint").className = "";
}

// -- chart ---------------------------------------------------------------------------------------------------------

function addSample(s) {
  samples.push(s);
  if (samples.length > MAX_SAMPLES) samples = samples.slice(-MAX_SAMPLES);
  drawChart();
}

function drawChart() {
  const last = samples[samples.length - 1];
  if (!last) return;
  const limitNote = last.limit_w === null ? "no import limit in force" : `limit ${kw(last.limit_w)} on ${last.limited} stations`;
  $("#power-now").textContent = `now ${kw(last.power_w)}, ${limitNote}`;
  const top = Math.max(1000, ...samples.map((s) => Math.max(s.power_w, s.limit_w || 0))) * 1.1;
  const x = (i) => (samples.length < 2 ? 800 : (i / (samples.length - 1)) * 800).toFixed(1);
  const y = (w) => (200 - (w / top) * 200).toFixed(1);
  $("#chart-power").setAttribute("points", samples.map((s, i) => `${x(i)},${y(s.power_w)}`).join(" "));
  $("#chart-limit").setAttribute(
    "points",
    samples.map((s, i) => (s.limit_w === null ? null : `${x(i)},${y(s.limit_w)}`)).filter(Boolean).join(" "),
  );
  $("#chart-max").textContent = kw(top);
}

// -- the stream ----------------------------------------------------------------------------------------------------

function snapshot(data) {
  stations.clear();
  directives.clear();
  $("#stations tbody").replaceChildren();
  $("#directives tbody").replaceChildren();
  $("#alarms").replaceChildren();
  for (const s of data.stations) renderStation(s);
  for (const d of data.directives.slice().reverse()) renderDirective(d);
  for (const a of data.alarms) addAlarm(a);
  samples = data.samples.slice(-MAX_SAMPLES);
  drawChart();
  renderLinks(data.links);
  renderCheckpoint(data.checkpoint);
  summarize();
}

const handlers = {
  snapshot,
  stations: (rows) => {
    for (const s of rows) renderStation(s);
    summarize();
  },
  removed: (ids) => {
    for (const id of ids) {
      stations.get(id)?.row.remove();
      stations.delete(id);
    }
    summarize();
  },
  directive: renderDirective,
  alarm: addAlarm,
  sample: (s) => {
    addSample(s);
    $("#clock").textContent = time(s.at);
  },
  links: renderLinks,
  checkpoint: renderCheckpoint,
};

function connect(secret) {
  const source = new EventSource("events?token=" + encodeURIComponent(secret));
  const badge = $("#stream");
  source.onopen = () => {
    badge.textContent = "live";
    badge.className = "badge ok";
  };
  source.onerror = () => {
    badge.className = "badge bad";
    if (source.readyState !== EventSource.CLOSED) {
      badge.textContent = "reconnecting";
      return;
    }
    // Refused (a wrong token ends the stream for good): ask again.
    badge.textContent = "token refused";
    sessionStorage.removeItem("dergw-token");
    $("#main").hidden = true;
    $("#login").hidden = false;
  };
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => handle(JSON.parse(e.data)));
  }
}

function start() {
  listenForLogin();
  for (const id of ["#filter-text", "#filter-version", "#filter-connection"]) $(id).addEventListener("input", refilter);
  const secret = token();
  if (secret) {
    $("#main").hidden = false;
    connect(secret);
    return;
  }
  $("#login").hidden = false;
}

function listenForLogin() {
  $("#login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("dergw-token", $("#token").value);
    location.reload();
  });
}

start();
