// The dashboard's copy of the room, kept by the same rules as the server's
// view of it (admin/live.py): a snapshot, then updates with only what changed.

export const S = {
  jobs: new Map(),
  pending: [],
  running: [],
  finished: [],
  progress: new Map(),
  workers: [],
  room: { users: [], active_window_s: 600 },
  config: {},
  me: null,
  skew: 0, // server clock minus ours
  connected: false,
};
export const stats = { renders: 0, lastRenderMs: 0, maxRenderMs: 0, messages: 0, lastMessage: null };
window.cmAdmin = { state: S, stats }; // for tests and the curious

export const now = () => Date.now() + S.skew;
export const short = (id) => (id ? id.slice(0, 8) : "");

export function ago(ms) {
  if (!ms) return "–";
  return dur(now() - ms);
}
export function dur(ms) {
  if (ms == null || ms < 0) return "–";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

export function applySnapshot(m) {
  S.me = m.me;
  S.config = m.config;
  S.jobs = new Map(Object.entries(m.jobs));
  S.pending = m.pending;
  S.running = m.running;
  S.finished = m.finished;
  S.workers = m.workers;
  S.room = m.room;
  S.progress = new Map();
  for (const id of S.running) {
    const p = S.jobs.get(id)?.progress;
    if (p) S.progress.set(id, p);
  }
}

export function applyUpdate(m) {
  if (m.pending) S.pending = m.pending;
  if (m.running) S.running = m.running;
  if (m.finished) S.finished = m.finished;
  if (m.jobs) for (const [id, row] of Object.entries(m.jobs)) S.jobs.set(id, row);
  if (m.progress) for (const [id, p] of Object.entries(m.progress)) S.progress.set(id, p);
  if (m.workers) S.workers = m.workers;
  if (m.room) S.room = m.room;
  if (m.config) S.config = m.config;
  if (m.pending || m.running || m.finished) prune();
}

function prune() {
  // keep exactly the rows the server still lists (it does the same)
  const listed = new Set([...S.pending, ...S.running, ...S.finished]);
  for (const id of S.jobs.keys()) if (!listed.has(id)) S.jobs.delete(id);
  const running = new Set(S.running);
  for (const id of S.progress.keys()) if (!running.has(id)) S.progress.delete(id);
}
