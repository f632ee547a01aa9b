// Drawing the dashboard from the state: throttled to a few frames a second,
// rows kept per id, and only the waiting rows in view ever built.
import { $, button, cells, el, plural, setSince, setText, syncRows } from "./dom.js";
import { S, ago, dur, now, short, stats } from "./state.js";

const RENDER_EVERY_MS = 250;
const OVERSCAN = 8; // rows built above and below the visible part of the waiting list

let scheduled = false;
let lastRender = 0;

export function schedule() {
  if (scheduled) return;
  scheduled = true;
  const wait = Math.max(0, lastRender + RENDER_EVERY_MS - performance.now());
  setTimeout(() => requestAnimationFrame(render), wait);
}

function render() {
  scheduled = false;
  const t0 = performance.now();
  renderHeader();
  renderRunning();
  renderPending();
  renderFinished();
  renderWorkers();
  renderRoom();
  lastRender = performance.now();
  stats.renders += 1;
  stats.lastRenderMs = lastRender - t0;
  stats.maxRenderMs = Math.max(stats.maxRenderMs, stats.lastRenderMs);
}

function renderHeader() {
  const conn = $("#conn");
  setText(conn, S.connected ? "live" : "reconnecting…");
  conn.className = `pill ${S.connected ? "pill-ok" : "pill-wait"}`;
  const paused = !!S.config.paused;
  const dispatch = $("#dispatch");
  setText(dispatch, paused ? "paused" : "dispatching");
  dispatch.className = `pill ${paused ? "pill-bad" : "pill-ok"}`;
  setText($("#pause-toggle"), paused ? "Resume" : "Pause");
  for (const b of document.querySelectorAll(".seg-btn")) {
    b.setAttribute("aria-pressed", String(b.dataset.mode === S.config.mode));
  }
  const online = S.workers.filter((w) => w.online).length;
  setText(
    $("#counts"),
    `${S.pending.length} waiting · ${S.running.length} running · ` +
      `${online}/${S.workers.length} workers online`,
  );
  const banner = $("#broadcast-now");
  banner.hidden = !S.config.broadcast;
  setText(banner, S.config.broadcast ? `Shown to everyone: “${S.config.broadcast}”` : "");
  if (S.me) $("#my-workspace").href = `/u/${encodeURIComponent(S.me.name)}/`;
  renderFeedback();
}

function renderFeedback() {
  const f = S.config.feedback || { open: false, answers: 0, average: null };
  setText($("#feedback-toggle"), f.open ? "Stop asking for feedback" : "Ask the room for feedback");
  const count = `${f.answers} answer${f.answers === 1 ? "" : "s"}`;
  const average = f.average == null ? "" : `, average ${f.average.toFixed(1)} of 5`;
  setText($("#feedback-summary"), `${f.open ? "Asking now · " : ""}${count}${average} (in the report)`);
}

// a worker whose heartbeats are this overdue has gone silent (queue/liveness.py,
// plus the second the dashboard may wait for its next read of the workers)
const silentAfterMs = () => (S.config.heartbeat_seconds || 2) * 2000 + 2000;
const stepSeen = new Map(); // job id -> {label, since}: when the job reached its node

function attemptText(attempt) {
  return `attempt ${attempt} of ${S.config.max_attempts || "?"}`;
}

function renderRunning() {
  const tbody = $("#running tbody");
  setText($("#running-count"), S.running.length ? `(${S.running.length})` : "");
  $("#running-empty").hidden = S.running.length > 0;
  $("#running-wrap").hidden = S.running.length === 0;
  const workers = new Map(S.workers.map((w) => [w.worker_id, w]));
  for (const id of stepSeen.keys()) if (!S.running.includes(id)) stepSeen.delete(id);
  syncRows(
    tbody,
    S.running.filter((id) => S.jobs.has(id)),
    (id) => {
      const tr = cells(el("tr"), 7);
      tr.cells[1].className = "id hide-sm";
      tr.cells[3].append(el("div", "bar"), el("div", "step"));
      tr.cells[3].firstChild.append(el("i"), el("b"));
      tr.cells[5].className = "hide-sm";
      tr.cells[6].className = "actions";
      tr.cells[6].appendChild(button("✕", "cancel", id, "btn btn-icon btn-danger", "cancel"));
      return tr;
    },
    (tr, id) => {
      const j = S.jobs.get(id);
      const c = tr.cells;
      setText(c[0], j.user);
      setText(c[1], short(id));
      c[1].title = id;
      setText(c[2], j.worker || "–");
      const w = workers.get(j.worker);
      const silent = !!(w && w.last_seen_ms && now() - w.last_seen_ms > silentAfterMs());
      const p = S.progress.get(id) || {};
      const [bar, step] = c[3].children;
      let pct = 0;
      let label = j.attempts > 1 ? "restarting" : "starting";
      if (p.max) [pct, label] = [(100 * p.value) / p.max, `${p.value}/${p.max}`];
      else if (p.of) [pct, label] = [(100 * (p.number - 1)) / p.of, `node ${p.number}/${p.of}`];
      if (silent) label = "silent";
      bar.firstChild.style.width = `${Math.round(pct)}%`;
      setText(bar.lastChild, label);
      tr.classList.toggle("lost", silent);
      if (silent) {
        // no heartbeat: the worker died or lost its network; the lease decides
        setSince(step, w.last_seen_ms, " · job will restart", "worker silent for ");
      } else if (p.label) {
        const seen = stepSeen.get(id);
        if (!seen || seen.label !== `${p.label}#${p.number}`) {
          stepSeen.set(id, { label: `${p.label}#${p.number}`, since: now() });
        }
        setSince(step, stepSeen.get(id).since, "", `${p.label} · `);
      } else {
        setSince(step, null);
        setText(step, j.attempts > 1 ? `restarting: ${attemptText(j.attempts)}` : "");
      }
      setSince(c[4], j.started_ms);
      setText(c[5], `${j.attempts} of ${S.config.max_attempts || "?"}`);
    },
  );
}

// the waiting list -----------------------------------------------------------

const rowHeight = () =>
  parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--row")) || 40;
const pendingPool = new Map();
let filterUser = "";

export function setFilter(user) {
  filterUser = user;
  $("#pending").scrollTop = 0;
  schedule();
}

function pendingIds() {
  if (!filterUser) return S.pending;
  return S.pending.filter((id) => S.jobs.get(id)?.user === filterUser);
}

function makePendingRow(id) {
  const row = el("div", "vrow");
  row.setAttribute("role", "listitem");
  row.append(el("span", "pos"), el("span", "user"), el("span", "id hide-sm"));
  const cls = el("select");
  cls.dataset.action = "class";
  cls.dataset.id = id;
  cls.title = "priority class: 0 runs first";
  for (let c = 0; c <= 9; c++) cls.appendChild(new Option(String(c), String(c)));
  const clsCell = el("span");
  clsCell.appendChild(cls);
  const actions = el("span", "actions");
  actions.append(
    button("⤒", "front", id, "btn btn-icon", "move to the front"),
    button("✕", "cancel", id, "btn btn-icon btn-danger", "cancel"),
  );
  row.append(clsCell, el("span", "waited"), el("span", "tries hide-sm"), actions);
  return row;
}

function updatePendingRow(row, id, index) {
  const j = S.jobs.get(id);
  const c = row.children;
  setText(c[0], String(index + 1));
  // a job whose worker was lost waits at its old place to run again
  const restarting = !!(j && j.attempts > 0);
  setText(c[1], j ? j.user + (restarting ? ` · restarting: ${attemptText(j.attempts + 1)}` : "") : "…");
  c[1].className = restarting ? "user restarting" : "user";
  setText(c[2], short(id));
  c[2].title = id;
  const select = c[3].firstChild;
  if (j && document.activeElement !== select && select.value !== String(j.cls)) {
    select.value = String(j.cls);
  }
  setSince(c[4], j?.queued_ms);
  setText(c[5], j ? String(j.attempts) : "");
  row.dataset.id = id;
}

function renderPending() {
  const ids = pendingIds();
  const list = $("#pending");
  const rows = list.querySelector(".vrows");
  const h = rowHeight();
  setText($("#pending-count"), `(${S.pending.length})`);
  $("#pending-empty").hidden = S.pending.length > 0;
  list.hidden = $("#pending-head").hidden = ids.length === 0;
  // contain: strict needs a set height: the rows' own, up to the CSS max-height
  const most = parseFloat(getComputedStyle(list).maxHeight) || 520;
  list.style.height = `${Math.min(ids.length * h, most)}px`;
  list.querySelector(".vspace").style.height = `${ids.length * h}px`;
  const first = Math.max(0, Math.floor(list.scrollTop / h) - OVERSCAN);
  const last = Math.min(ids.length, Math.ceil((list.scrollTop + list.clientHeight) / h) + OVERSCAN);
  rows.style.transform = `translateY(${first * h}px)`;
  const visible = ids.slice(first, last);
  const keep = new Set(visible);
  for (const [id, row] of pendingPool) {
    if (!keep.has(id)) {
      row.remove();
      pendingPool.delete(id);
    }
  }
  let cursor = rows.firstChild;
  visible.forEach((id, i) => {
    let row = pendingPool.get(id);
    if (!row) {
      row = makePendingRow(id);
      pendingPool.set(id, row);
    }
    const position = filterUser ? S.pending.indexOf(id) : first + i;
    updatePendingRow(row, id, position);
    if (row !== cursor) rows.insertBefore(row, cursor);
    else cursor = cursor.nextSibling;
  });
  renderFilter();
}

function renderFilter() {
  const select = $("#pending-filter");
  const names = S.room.users.filter((u) => u.pending > 0).map((u) => u.name);
  if (filterUser && !names.includes(filterUser)) names.push(filterUser);
  const want = ["", ...names].join("\n");
  if (select._names === want) return;
  select._names = want;
  select.replaceChildren(new Option("everyone", ""), ...names.map((n) => new Option(n, n)));
  select.value = filterUser;
}

// finished, workers, room ---------------------------------------------------------

function renderFinished() {
  const ids = S.finished.filter((id) => S.jobs.has(id));
  $("#finished-empty").hidden = ids.length > 0;
  $("#finished-wrap").hidden = ids.length === 0;
  syncRows(
    $("#finished tbody"),
    ids,
    () => {
      const tr = cells(el("tr"), 7);
      tr.cells[2].className = "id hide-sm";
      tr.cells[6].className = "err";
      return tr;
    },
    (tr, id) => {
      const j = S.jobs.get(id);
      const c = tr.cells;
      setText(c[0], j.state);
      c[0].className = `state state-${j.state}`;
      setText(c[1], j.user);
      setText(c[2], short(id));
      c[2].title = id;
      setText(c[3], j.started_ms ? dur(j.started_ms - j.queued_ms) : "–");
      setText(c[4], j.started_ms && j.state !== "cancelled" ? dur(j.finished_ms - j.started_ms) : "–");
      setSince(c[5], j.finished_ms, " ago");
      setText(c[6], j.error || "");
    },
  );
}

function renderWorkers() {
  const online = S.workers.filter((w) => w.online).length;
  setText($("#workers-count"), S.workers.length ? `(${online} of ${S.workers.length} online)` : "");
  $("#workers-empty").hidden = S.workers.length > 0;
  $("#workers-wrap").hidden = S.workers.length === 0;
  const byId = new Map(S.workers.map((w) => [w.worker_id, w]));
  syncRows(
    $("#workers-table tbody"),
    S.workers.map((w) => w.worker_id),
    (id) => {
      const tr = cells(el("tr"), 6);
      tr.cells[0].append(el("b"), el("span", "caps"));
      tr.cells[5].className = "actions";
      tr.cells[5].append(
        button("", "drain", id, "btn"),
        button("Forget", "forget", id, "btn btn-quiet btn-danger", "remove this offline worker from the list"),
      );
      return tr;
    },
    (tr, id) => {
      const w = byId.get(id);
      const c = tr.cells;
      setText(c[0].firstChild, w.worker_id);
      setText(c[0].lastChild, `${w.nodes_count} nodes · ${w.models_count} models`);
      c[0].title = [w.name, w.comfyui_url, w.comfyui_version].filter(Boolean).join(" · ");
      setText(c[1], w.draining && w.state === "busy" ? "busy, draining" : w.state);
      c[1].className = `state state-${w.state}`;
      const job = w.current_job ? S.jobs.get(w.current_job) : null;
      setText(c[2], w.current_job ? `${job ? job.user + " · " : ""}${short(w.current_job)}` : "–");
      setSince(c[3], w.last_seen_ms, " ago");
      setText(c[4], `${w.jobs_done} / ${w.failures}`);
      const b = c[5].firstChild;
      setText(b, w.draining ? "Undrain" : "Drain");
      b.dataset.drain = w.draining ? "0" : "1";
      b.title = w.draining ? "take jobs again" : "finish the current job, take no more";
      b.hidden = !w.online;
      c[5].lastChild.hidden = w.online;
    },
  );
}

function renderRoom() {
  const users = S.room.users || [];
  const windowMs = (S.room.active_window_s || 600) * 1000;
  const recent = (u) => u.last_active_ms && now() - u.last_active_ms < windowMs;
  const online = users.filter((u) => u.pages > 0).length;
  const active = users.filter((u) => u.pages > 0 || recent(u)).length;
  setText($("#room-count"), `(${online} online, ${active} active, ${users.length} people)`);
  setText(
    $("#presence-note"),
    `Online: their ComfyUI page is open (on this gateway). Active: online, or a job ` +
      `queued, started or finished in the last ${Math.round(windowMs / 60000)} min.`,
  );
  const capInput = $("#default-cap input");
  if (document.activeElement !== capInput && S.config.default_cap !== undefined) {
    capInput.placeholder = String(S.config.default_cap);
  }
  const byName = new Map(users.map((u) => [u.name, u]));
  syncRows(
    $("#users tbody"),
    users.map((u) => u.name),
    (name) => {
      const tr = cells(el("tr"), 6);
      tr.cells[0].append(el("span", "dot"), el("span"), el("span", "tag"));
      const cap = el("input", "cap-input");
      cap.type = "number";
      cap.min = "0";
      cap.dataset.action = "cap";
      cap.dataset.id = name;
      cap.title = "waiting jobs allowed (empty = room default, 0 = no limit)";
      tr.cells[4].appendChild(cap);
      tr.cells[5].className = "actions";
      tr.cells[5].append(
        button("Cancel all", "cancel-user", name, "btn btn-danger", "cancel every waiting job of this person"),
        button("Password", "password", name, "btn", "give a new password (ends their sessions)"),
        button("Tokens", "tokens", name, "btn btn-quiet", "see and revoke their API tokens"),
        button("Remove", "remove", name, "btn btn-quiet btn-danger", "remove this person, their jobs and (unless archived) their files"),
      );
      return tr;
    },
    (tr, name) => {
      const u = byName.get(name);
      const c = tr.cells;
      const dot = u.pages > 0 ? "dot dot-on" : recent(u) ? "dot dot-recent" : "dot";
      c[0].children[0].className = dot;
      const pages = u.pages > 0 ? `${plural(u.pages, "open page")}; ` : "no open page; ";
      const seen = u.last_active_ms ? `last job activity ${ago(u.last_active_ms)} ago` : "no job yet";
      c[0].title = pages + seen;
      setText(c[0].children[1], u.name);
      setText(c[0].children[2], u.admin ? "instructor" : "");
      setText(c[1], String(u.pending));
      setText(c[2], String(u.running));
      setText(c[3], String(u.finished));
      const cap = c[4].firstChild;
      if (document.activeElement !== cap) cap.value = u.cap == null ? "" : String(u.cap);
      cap.placeholder = String(S.config.default_cap ?? "");
      c[5].children[0].disabled = u.pending === 0;
      c[5].children[2].hidden = !!(S.me && S.me.name === u.name);
    },
  );
}

// times tick locally between updates
export function tick() {
  for (const node of document.querySelectorAll("[data-since]")) {
    const since = Number(node.dataset.since);
    if (since) setText(node, `${node.dataset.prefix || ""}${ago(since)}${node.dataset.suffix || ""}`);
  }
}
