"""The few HTML pages people see outside ComfyUI (sign in, and the friendly
refusals: someone else's workspace, a used sign-in link), shared by the faces
that show them."""

from __future__ import annotations

from html import escape

from comfy_multi.services.users import User


def home_of(user: User) -> str:
    return "/admin" if user.admin else f"/u/{user.name}/"


NO_STORE = {"Cache-Control": "no-store"}

_STYLE = """
:root{color-scheme:dark}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#171718;
color:#e8e8e8;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{width:min(360px,90vw);padding:32px;border-radius:12px;background:#222226;
box-shadow:0 8px 32px #0008}
h1{margin:0 0 4px;font-size:22px}p{color:#b8b8c0}
label{display:block;margin:16px 0 4px;font-size:14px;color:#b8b8c0}
input{box-sizing:border-box;width:100%;padding:10px 12px;border:1px solid #3a3a42;
border-radius:8px;background:#18181b;color:inherit;font:inherit}
button,.button{display:inline-block;margin-top:20px;width:100%;padding:10px;border:0;
border-radius:8px;background:#3b82f6;color:#fff;font:inherit;font-weight:600;
text-align:center;text-decoration:none;cursor:pointer}
button:disabled{opacity:.6}a{color:#8ab4ff}
#error{min-height:1.5em;margin:12px 0 0;color:#ff8a8a;font-size:14px}
"""


def page(title: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · comfy-multi</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main>{tail}</body></html>"
    )


# After a successful sign-in: a different person in this browser must not
# inherit the previous one's open workflows, which ComfyUI keeps in
# localStorage (shared by every path of this site).
_LOGIN_SCRIPT = """
const form = document.getElementById("login"), error = document.getElementById("error");
const field = (id) => document.getElementById(id).value;
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  form.querySelector("button").disabled = true;
  try {
    const res = await fetch("/api/v1/login", {
      method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
      body: JSON.stringify({name: field("name").trim().toLowerCase(), password: field("password")}),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || "Sign-in failed (" + res.status + ")");
    try {
      if (localStorage.getItem("comfy_multi.user") !== body.name) {
        localStorage.clear(); sessionStorage.clear();
      }
      localStorage.setItem("comfy_multi.user", body.name);
    } catch (e) {}
    const next = new URLSearchParams(location.search).get("next") || "";
    location.assign(next.startsWith("/u/" + body.name + "/") ? next : body.home);
  } catch (e) {
    error.textContent = e.message;
    form.querySelector("button").disabled = false;
  }
});
"""


def login_page(current: User | None) -> str:
    note = ""
    if current is not None:
        note = (
            f"<p>You are signed in as <b>{escape(current.name)}</b>. "
            f'<a href="{escape(home_of(current))}">Open your workspace</a> or sign in as '
            "someone else.</p>"
        )
    body = f"""<h1>Sign in</h1><p>Use the name and password from your workshop sheet.</p>{note}
<form id="login" autocomplete="on">
<label for="name">Name</label>
<input id="name" name="name" autocomplete="username" autocapitalize="none" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button><p id="error" role="alert"></p></form>"""
    return page("Sign in", body, _LOGIN_SCRIPT)


def not_yours(me: str, owner: str) -> str:
    return page(
        "Not your workspace",
        f"<h1>Not your workspace</h1><p>This workspace belongs to {escape(owner)}. "
        f"You are signed in as {escape(me)}.</p>"
        f'<a class="button" href="/u/{escape(me)}/">Open your workspace</a>'
        '<p><a href="/logout">Sign out</a></p>',
    )


# Before the link's session starts: the same rule as the login form, a different
# person in this browser starts with a clean ComfyUI (its open workflows live in
# localStorage).
_CONFIRM_SCRIPT = """
const form = document.getElementById("confirm");
form.addEventListener("submit", () => {
  form.querySelector("button").disabled = true;
  try {
    if (localStorage.getItem("comfy_multi.user") !== form.dataset.user) {
      localStorage.clear(); sessionStorage.clear();
    }
    localStorage.setItem("comfy_multi.user", form.dataset.user);
  } catch (e) {}
});
"""


def signin_confirm(name: str, action: str) -> str:
    who = escape(name)
    return page(
        f"Sign in as {name}",
        f"<h1>Sign in as {who}</h1><p>This link from the workshop sheet signs you in as "
        f"<b>{who}</b> and opens your ComfyUI. It works once.</p>"
        f'<form id="confirm" method="post" action="{escape(action)}" data-user="{who}">'
        f'<button type="submit">Sign in as {who}</button></form>'
        f'<p>Not {who}? <a href="/login">Sign in with your own name</a>.</p>',
        _CONFIRM_SCRIPT,
    )


def signin_used() -> str:
    return page(
        "Sign-in link used",
        "<h1>This link was already used</h1><p>Each sign-in link works once and only for a "
        "while. Sign in with your name and password, or ask the instructor for a new link.</p>"
        '<a class="button" href="/login">Sign in</a>',
    )
