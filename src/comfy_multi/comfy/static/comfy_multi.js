// comfy-multi's small addition to the stock ComfyUI page: your place in the
// shared queue with an estimated wait, the instructor's messages, a notice
// while no GPU worker is connected, and a sign-out link.
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
#comfy-multi-banner{position:fixed;left:50%;top:56px;transform:translateX(-50%);z-index:1001;
 display:none;gap:12px;align-items:flex-start;max-width:min(720px,92vw);padding:10px 16px;
 border-radius:10px;background:#1e3a8a;color:#fff;font:14px/1.45 system-ui,sans-serif;
 box-shadow:0 4px 18px rgba(0,0,0,.5)}
#comfy-multi-banner.cm-warn{background:#7c2d12}
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

function renderPlace(d) {
  if (!d) return;
  mount();
  noWorker = !d.workers_known;
  let text = "";
  let cls = "";
  if (d.pending > 0) {
    const more = d.pending > 1 ? ` (${d.pending} waiting)` : "";
    text = `Your job is #${d.position} in the queue · ${minutes(d.eta_seconds)}${more}`;
    cls = "cm-busy";
    if (d.paused) text += " · queue paused";
    else if (d.workers_known && d.workers_online === 0) text += " · no GPU online right now";
  } else if (d.running > 0) {
    text = "Your job is running";
    cls = "cm-run";
  } else if (d.queue_length > 0) {
    text = `${d.queue_length} job${d.queue_length === 1 ? "" : "s"} in the room's queue`;
  }
  placeText.textContent = text;
  placeText.className = cls;
  placeText.style.display = text ? "" : "none";
  renderBanner();
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

function hello() {
  const socket = api.socket;
  if (!socket) return;
  const send = () => socket.send(JSON.stringify({ type: "comfy_multi.hello", data: {} }));
  if (socket.readyState === WebSocket.OPEN) send();
  else socket.addEventListener("open", send, { once: true });
}

try {
  api.addEventListener("comfy_multi.queue", (e) => renderPlace(e.detail));
  api.addEventListener("comfy_multi.broadcast", (e) => {
    broadcast = String(e.detail?.message || "");
    dismissed = "";
    renderBanner();
  });
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
