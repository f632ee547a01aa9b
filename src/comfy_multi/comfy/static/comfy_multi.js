// comfy-multi's small addition to the stock ComfyUI page: your running job
// (its node, n of m, elapsed time) and your place in the shared queue with an
// estimated wait, a lost GPU, the instructor's messages, a notice while no GPU
// worker is connected, and a sign-out link.
//
// Everything here is optional: any failure leaves ComfyUI itself untouched,
// and the gateway sends its own message types only after this file says hello.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const STYLE = `
#comfy-multi-bar{position:fixed;left:50%;bottom:14px;transform:translateX(-50%);z-index:1000;
 display:flex;gap:10px;align-items:center;padding:6px 14px;border-radius:999px;
 background:rgba(24,24,27,.92);color:#e8e8e8;font:13px/1.4 system-ui,sans-serif;
 box-shadow:0 2px 12px rgba(0,0,0,.5);pointer-events:auto;max-width:90vw}
#comfy-multi-bar a{color:#9bbcff;text-decoration:none}
#comfy-multi-bar .cm-busy{color:#fbbf24}
#comfy-multi-bar .cm-run{color:#4ade80}
#comfy-multi-bar .cm-lost{color:#f87171}
#comfy-multi-banner{position:fixed;left:50%;top:56px;transform:translateX(-50%);z-index:1001;
 display:none;gap:12px;align-items:flex-start;max-width:min(720px,92vw);padding:10px 16px;
 border-radius:10px;background:#1e3a8a;color:#fff;font:14px/1.45 system-ui,sans-serif;
 box-shadow:0 4px 18px rgba(0,0,0,.5)}
#comfy-multi-banner.cm-warn{background:#7c2d12}
#comfy-multi-feedback{position:fixed;right:16px;bottom:64px;z-index:1002;width:min(320px,90vw);
 padding:14px 16px;border-radius:12px;background:#222226;color:#e8e8e8;
 font:14px/1.45 system-ui,sans-serif;box-shadow:0 6px 24px rgba(0,0,0,.6)}
#comfy-multi-feedback h2{margin:0 0 8px;font-size:15px}
#comfy-multi-feedback .cm-stars{display:flex;gap:4px;margin-bottom:8px}
#comfy-multi-feedback .cm-stars button{flex:1;padding:6px 0;border:1px solid #3a3a42;border-radius:6px;
 background:#18181b;color:#9ca3af;font-size:18px;cursor:pointer}
#comfy-multi-feedback .cm-stars button[aria-pressed=true]{background:#3b82f6;border-color:#3b82f6;color:#fff}
#comfy-multi-feedback textarea{box-sizing:border-box;width:100%;min-height:56px;padding:6px 8px;
 border:1px solid #3a3a42;border-radius:6px;background:#18181b;color:inherit;font:inherit;resize:vertical}
#comfy-multi-feedback .cm-row{display:flex;gap:8px;justify-content:flex-end;margin-top:8px}
#comfy-multi-feedback .cm-row button{padding:6px 12px;border:0;border-radius:6px;cursor:pointer;font:inherit}
#comfy-multi-feedback .cm-send{background:#3b82f6;color:#fff;font-weight:600}
#comfy-multi-feedback .cm-send:disabled{opacity:.5;cursor:default}
#comfy-multi-feedback .cm-later{background:none;color:#b8b8c0}
#comfy-multi-feedback .cm-error{color:#ff8a8a;font-size:13px;min-height:1em;margin:6px 0 0}
/* the comfy.org account button: the room signs in here, not there */
button[aria-label="Login"]{display:none!important}
#comfy-multi-banner button{background:none;border:0;color:inherit;font-size:18px;cursor:pointer;line-height:1}
`;

const user = decodeURIComponent(location.pathname.split("/")[2] || "");
let bar, placeText, banner, bannerText;
let broadcast = "";
let noWorker = false;
let dismissed = "";

function element(tag, attrs = {}, text = "") {
  const el = document.createElement(tag);
  Object.assign(el, attrs);
  if (text) el.textContent = text;
  return el;
}

function mount() {
  if (bar) return;
  document.head.append(element("style", { textContent: STYLE }));
  placeText = element("span", { id: "comfy-multi-place" });
  bar = element("div", { id: "comfy-multi-bar" });
  bar.dataset.testid = "comfy-multi-bar";
  bar.append(placeText, element("span", {}, user), element("a", { href: "/logout" }, "Sign out"));
  bannerText = element("span", { id: "comfy-multi-banner-text" });
  const close = element("button", { title: "Hide", ariaLabel: "Hide" }, "×");
  close.addEventListener("click", () => {
    dismissed = bannerText.textContent;
    banner.style.display = "none";
  });
  banner = element("div", { id: "comfy-multi-banner", role: "status" });
  banner.append(bannerText, close);
  document.body.append(bar, banner);
}

function minutes(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return "under a minute";
  return `about ${Math.round(seconds / 60)} min`;
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  return m >= 60
    ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}

let place = null; // the latest comfy_multi.queue data
let skew = 0; // the gateway's clock minus ours
const steps = new Map(); // job id -> the latest comfy_multi.step
let ticking = 0;

const now = () => Date.now() + skew;

function runningText(d, run) {
  if (run.silent_since_ms) {
    const silent = Math.round((now() - run.silent_since_ms) / 1000);
    return {
      text: `The GPU running your job stopped answering ${silent} s ago · your job will start again`,
      cls: "cm-lost",
    };
  }
  const step = steps.get(run.id) || run.step;
  const parts = ["Running"];
  if (step && step.label) {
    parts[0] = `Running ${step.label}`;
    if (step.of) parts.push(`node ${step.number} of ${step.of}`);
    if (step.max) parts.push(`${step.value}/${step.max}`);
  }
  if (run.started_ms) parts.push(clock(now() - run.started_ms));
  if (run.attempt > 1) parts.push(`attempt ${run.attempt} of ${d.max_attempts}`);
  return { text: parts.join(" · "), cls: "cm-run" };
}

function waitingText(d) {
  const first = d.jobs[0] || {};
  const parts = [];
  let cls = "cm-busy";
  if (first.attempts > 0) {
    parts.push(`The GPU was lost · your job will start again (attempt ${first.attempts + 1} of ${d.max_attempts})`);
    cls = "cm-lost";
  }
  parts.push(`#${d.position} in the queue`);
  if (d.paused) parts.push("queue paused");
  else if (d.workers_known && d.workers_online === 0) parts.push("waiting for a GPU: none is online right now");
  else if (d.eta_seconds != null) parts.push(minutes(d.eta_seconds));
  if (d.pending > 1) parts.push(`${d.pending} waiting`);
  return { text: parts.join(" · "), cls };
}

function renderPlace() {
  const d = place;
  if (!d) return;
  mount();
  noWorker = !d.workers_known;
  const shown = [];
  for (const run of d.running_jobs || []) shown.push(runningText(d, run));
  if (d.pending > 0) shown.push(waitingText(d));
  if (!shown.length && d.queue_length > 0) {
    shown.push({ text: `${d.queue_length} job${d.queue_length === 1 ? "" : "s"} in the room's queue`, cls: "" });
  }
  const text = shown.map((s) => s.text).join("  ·  ");
  const cls = shown.find((s) => s.cls === "cm-lost") ? "cm-lost" : shown[0]?.cls || "";
  if (placeText.textContent !== text) placeText.textContent = text;
  placeText.className = cls;
  placeText.style.display = text ? "" : "none";
  // elapsed times and silences count up between messages
  const live = (d.running_jobs || []).length > 0;
  if (live && !ticking) ticking = setInterval(renderPlace, 1000);
  if (!live && ticking) ticking = clearInterval(ticking) || 0;
  renderBanner();
}

function onPlace(d) {
  if (!d) return;
  if (d.server_ms) skew = d.server_ms - Date.now();
  place = d;
  const running = new Set((d.running_jobs || []).map((r) => r.id));
  for (const id of steps.keys()) if (!running.has(id)) steps.delete(id);
  renderPlace();
}

function onStep(d) {
  if (!d || !d.prompt_id) return;
  steps.set(d.prompt_id, d);
  if (place && (place.running_jobs || []).some((r) => r.id === d.prompt_id)) renderPlace();
}

function renderBanner() {
  mount();
  let text = broadcast ? `📣 ${broadcast}` : "";
  if (!text && noWorker) {
    text = "No GPU worker has connected yet. You can build your workflow now; Run works once the instructor starts one.";
  }
  bannerText.textContent = text;
  banner.className = !broadcast && noWorker ? "cm-warn" : "";
  banner.style.display = text && text !== dismissed ? "flex" : "none";
}

// the instructor's request for feedback: a rating and an optional comment, once per person
let feedbackBox = null;
const RATING_WORDS = ["", "poor", "fair", "good", "very good", "excellent"];

function showFeedback(d) {
  if (!d || !d.open) {
    feedbackBox?.remove();
    feedbackBox = null;
    return;
  }
  if (feedbackBox) return;
  mount();
  let rating = 0;
  const form = element("form", { id: "comfy-multi-feedback", ariaLabel: "Feedback" });
  const title = d.answered ? "Thank you! You can change your answer" : "How was the workshop?";
  const stars = element("div", { className: "cm-stars", role: "group", ariaLabel: "rating" });
  const send = element("button", { type: "submit", className: "cm-send", disabled: true }, "Send");
  for (let n = 1; n <= 5; n++) {
    const b = element("button", { type: "button", title: RATING_WORDS[n], ariaLabel: `${n} of 5` }, "★");
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", () => {
      rating = n;
      for (const [i, other] of [...stars.children].entries()) other.setAttribute("aria-pressed", String(i < n));
      send.disabled = false;
    });
    stars.append(b);
  }
  const comment = element("textarea", { id: "comfy-multi-feedback-comment", maxLength: 1000, placeholder: "A comment (optional)" });
  const later = element("button", { type: "button", className: "cm-later" }, "Not now");
  const error = element("p", { className: "cm-error", role: "alert" });
  later.addEventListener("click", () => showFeedback(null));
  form.append(element("h2", {}, title), stars, comment, element("div", { className: "cm-row" }), error);
  form.querySelector(".cm-row").append(later, send);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.disabled = true;
    error.textContent = "";
    try {
      const res = await fetch("/api/v1/feedback", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rating, comment: comment.value }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.message || `Sending failed (${res.status})`);
      form.replaceChildren(element("h2", {}, "Thank you for your feedback!"));
      setTimeout(() => form === feedbackBox && showFeedback(null), 4000);
    } catch (e) {
      error.textContent = e.message;
      send.disabled = false;
    }
  });
  feedbackBox = form;
  document.body.append(form);
}

function hello() {
  const socket = api.socket;
  if (!socket) return;
  const send = () => socket.send(JSON.stringify({ type: "comfy_multi.hello", data: {} }));
  if (socket.readyState === WebSocket.OPEN) send();
  else socket.addEventListener("open", send, { once: true });
}

try {
  api.addEventListener("comfy_multi.queue", (e) => onPlace(e.detail));
  api.addEventListener("comfy_multi.step", (e) => onStep(e.detail));
  api.addEventListener("comfy_multi.broadcast", (e) => {
    broadcast = String(e.detail?.message || "");
    dismissed = "";
    renderBanner();
  });
  api.addEventListener("comfy_multi.feedback", (e) => showFeedback(e.detail));
  api.addEventListener("reconnected", hello);
  app.registerExtension({
    name: "comfy_multi.room",
    async setup() {
      mount();
      hello();
    },
  });
} catch (err) {
  console.warn("comfy-multi: the queue display is unavailable", err);
}
