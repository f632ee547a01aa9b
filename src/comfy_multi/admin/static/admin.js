// The instructor's dashboard: state arrives over /admin/ws (a snapshot, then
// coalesced updates, see admin/live.py) and every action goes through
// /api/v1, the same routes scripts use.
import { $, el, plural } from "./dom.js";
import { schedule, setFilter, tick } from "./render.js";
import { S, applySnapshot, applyUpdate, short, stats } from "./state.js";

const RECONNECT_MS = [500, 1000, 2000, 5000];

function toast(text, bad) {
  const t = $("#toast");
  t.textContent = text.charAt(0).toUpperCase() + text.slice(1); // a sentence, whoever wrote it
  t.className = bad ? "toast bad" : "toast";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), bad ? 6000 : 2500);
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/api/v1${path}`, init);
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      message = (await res.json()).message || message;
    } catch (_) {
      /* not JSON: keep the status line */
    }
    if (res.status === 401) location.href = `/login?next=${encodeURIComponent("/admin")}`;
    throw new Error(message);
  }
  return res.status === 204 ? null : res.json();
}

async function act(button, work, done) {
  if (button) button.disabled = true;
  try {
    const result = await work();
    if (done) toast(typeof done === "function" ? done(result) : done);
    return result;
  } catch (err) {
    toast(err.message, true);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

let socket = null;
let attempt = 0;

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${proto}//${location.host}/admin/ws`);
  socket.onopen = () => {
    attempt = 0;
  };
  socket.onmessage = (ev) => {
    stats.messages += 1;
    const msg = JSON.parse(ev.data);
    stats.lastMessage = msg.t;
    if (msg.t === "snapshot") applySnapshot(msg);
    else if (msg.t === "update") applyUpdate(msg);
    S.skew = msg.now - Date.now();
    S.connected = true;
    schedule();
  };
  socket.onclose = () => {
    S.connected = false;
    schedule();
    const wait = RECONNECT_MS[Math.min(attempt, RECONNECT_MS.length - 1)];
    attempt += 1;
    setTimeout(connect, wait);
  };
}

function refresh(...sections) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ t: "refresh", sections }));
  }
}

function jobAction(action, id, target) {
  if (action === "cancel") {
    return act(target, () => api("POST", `/jobs/${id}/cancel`), `cancelled ${short(id)}`);
  }
  if (action === "front") {
    target.closest(".vrow")?.classList.add("moved");
    return act(target, () => api("POST", `/jobs/${id}/front`), `${short(id)} is next in its class`);
  }
  return null;
}

function userAction(action, name, target) {
  if (action === "cancel-user") {
    if (!confirm(`Cancel every waiting job of ${name}?`)) return;
    act(target, () => api("POST", `/users/${name}/cancel-pending`), (r) => `Cancelled ${plural(r.cancelled, "waiting job")} of ${name}`);
  } else if (action === "password") {
    if (!confirm(`Give ${name} a new password? Their open sessions end.`)) return;
    act(target, () => api("POST", `/users/${name}/password`, {})).then((r) => r && showSecret(name, r.password));
  } else if (action === "tokens") {
    reviewTokens(name, target);
  } else if (action === "remove") {
    if (!confirm(`Remove ${name}? Their sign-ins, waiting jobs and history end.`)) return;
    const keep = confirm(`Keep a copy of ${name}'s files in the data dir's archive folder? (Cancel deletes them.)`);
    act(target, () => api("DELETE", `/users/${name}?archive=${keep}`), (r) => r.summary).then(() => refresh("room"));
  }
}

// API tokens are listed by id and label only (the tokens themselves are not
// stored); the instructor may revoke them one by one.
async function reviewTokens(name, target) {
  const who = encodeURIComponent(name);
  const tokens = await act(target, () => api("GET", `/tokens?user=${who}`));
  if (!tokens) return;
  if (tokens.length === 0) {
    toast(`${name} has no API tokens`);
    return;
  }
  let revoked = 0;
  for (const t of tokens) {
    const made = new Date(t.created_ms).toLocaleString();
    const ends = t.expires_ms ? `, expires ${new Date(t.expires_ms).toLocaleString()}` : "";
    if (!confirm(`Revoke ${name}'s API token ${t.id} "${t.label}" (made ${made}${ends})?`)) continue;
    if (await act(target, () => api("DELETE", `/tokens/${encodeURIComponent(t.id)}?user=${who}`))) revoked += 1;
  }
  toast(`${name}: ${tokens.length} API token(s), ${revoked} revoked`);
}

function showSecret(name, password) {
  const box = $("#secret");
  box.replaceChildren(`Password of ${name}: `, el("b", "", password), " (shown once; write it down)");
  box.hidden = false;
}

document.addEventListener("click", (ev) => {
  const target = ev.target.closest("button[data-action]");
  if (!target) return;
  const { action, id } = target.dataset;
  if (action === "forget") {
    if (!confirm(`Forget the offline worker ${id}? Its past jobs stay in the report.`)) return;
    act(target, () => api("DELETE", `/workers/${encodeURIComponent(id)}`), `forgot ${id}`);
    return;
  }
  if (action === "drain") {
    const drain = target.dataset.drain === "1";
    act(target, () => api("POST", `/workers/${encodeURIComponent(id)}/drain`, { drain }), drain ? `${id} drains` : `${id} takes jobs again`);
    return;
  }
  if (jobAction(action, id, target) === null) userAction(action, id, target);
});

document.addEventListener("change", (ev) => {
  const t = ev.target;
  if (t.dataset.action === "class") {
    const cls = Number(t.value);
    act(null, () => api("POST", `/jobs/${t.dataset.id}/class`, { priority_class: cls }), `${short(t.dataset.id)} now in class ${cls}`);
  } else if (t.dataset.action === "cap") {
    const cap = t.value === "" ? null : Number(t.value);
    act(null, () => api("PUT", `/users/${t.dataset.id}/cap`, { cap }), `cap of ${t.dataset.id}: ${cap ?? "room default"}`).then(() => refresh("room"));
    t.blur();
  } else if (t.id === "pending-filter") {
    setFilter(t.value);
  }
});

function wireControls() {
  $("#pause-toggle").addEventListener("click", (ev) => {
    const path = S.config.paused ? "/queue/resume" : "/queue/pause";
    act(ev.currentTarget, () => api("POST", path), S.config.paused ? "dispatch resumed" : "dispatch paused: running jobs finish, no new job starts");
  });
  for (const b of document.querySelectorAll(".seg-btn")) {
    b.addEventListener("click", () => {
      if (b.dataset.mode === S.config.mode) return;
      act(b, () => api("PUT", "/queue/mode", { mode: b.dataset.mode }), `queue mode: ${b.dataset.mode}`);
    });
  }
  $("#add-user").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.currentTarget;
    const name = f.name.value.trim().toLowerCase();
    const body = { name, admin: f.admin.checked, password: f.password.value || null };
    act(f.querySelector("button"), () => api("POST", "/users", body)).then((r) => {
      if (!r) return;
      showSecret(r.name, r.password);
      f.reset();
      refresh("room");
    });
  });
  $("#default-cap").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = ev.currentTarget.cap;
    if (input.value === "") return;
    const cap = Number(input.value);
    act(ev.submitter, () => api("PUT", "/queue/cap", { cap }), `room cap: ${cap || "no limit"}`).then(() => {
      input.value = "";
      refresh("room");
    });
  });
  $("#broadcast").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const message = ev.currentTarget.message.value.trim();
    act(ev.submitter, () => api("POST", "/broadcast", { message }), message ? "message sent" : "message cleared");
  });
  $("#broadcast-clear").addEventListener("click", (ev) => {
    $("#broadcast-text").value = "";
    act(ev.currentTarget, () => api("POST", "/broadcast", { message: "" }), "message cleared");
  });
  $("#feedback-toggle").addEventListener("click", (ev) => {
    const open = !S.config.feedback?.open;
    act(ev.currentTarget, () => api("PUT", "/feedback/request", { open }), open ? "every page now shows the feedback form" : "the feedback form is hidden; the answers stay");
  });
  $("#pending").addEventListener("scroll", schedule, { passive: true });
  window.addEventListener("resize", schedule);
}

// Said once, on screen: the sign-in sheet would print an address participants cannot open.
async function checkAddress() {
  const res = await fetch("/admin/address", { credentials: "same-origin" }).catch(() => null);
  const body = res && res.ok ? await res.json() : null;
  const box = $("#address-warning");
  box.textContent = body?.warning || "";
  box.hidden = !body?.warning;
}

// The pre-flight check: the same green/red list as `comfy-multi check`.
async function runPreflight(ev) {
  const btn = ev.currentTarget;
  const status = $("#preflight-status");
  btn.disabled = true;
  status.textContent = "Checking: a test job runs, this takes a few seconds…";
  $("#preflight-lines").replaceChildren();
  try {
    const r = await api("POST", "/check");
    const mark = (l) => (l.warning ? "!" : l.ok === true ? "✓" : l.ok === false ? "✗" : "·");
    const kind = (l) => (l.warning ? "warn" : l.ok === true ? "ok" : l.ok === false ? "bad" : "note");
    $("#preflight-lines").replaceChildren(
      ...r.lines.map((l) => el("li", `check-${kind(l)}`, `${mark(l)} ${l.what}: ${l.detail}`)),
    );
    const failed = r.lines.filter((l) => l.ok === false).length;
    status.textContent = failed ? `${plural(failed, "check")} failed` : "Ready: every check passed.";
  } catch (err) {
    status.textContent = "";
    toast(err.message, true);
  } finally {
    btn.disabled = false;
  }
}

wireControls();
$("#preflight-run").addEventListener("click", runPreflight);
checkAddress();
connect();
setInterval(tick, 1000);
