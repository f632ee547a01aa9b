// Small DOM helpers. Names and messages always reach the page as text.
import { ago } from "./state.js";

export const $ = (sel) => document.querySelector(sel);
// "1 job", "2 jobs": counts people read on the dashboard.
export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
export const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
// a cell showing time since `ms`; tick() keeps it current between updates
export function setSince(node, ms, suffix = "", prefix = "") {
  node.dataset.since = ms || "";
  node.dataset.suffix = suffix;
  node.dataset.prefix = prefix;
  setText(node, ms ? `${prefix}${ago(ms)}${suffix}` : "–");
}

// keyed rows: an element per id is kept and updated, so an open <select>
// or a focused input survives the next update
export function syncRows(tbody, ids, make, update) {
  const pool = tbody._pool || (tbody._pool = new Map());
  const keep = new Set(ids);
  for (const [id, row] of pool) {
    if (!keep.has(id)) {
      row.remove();
      pool.delete(id);
    }
  }
  let cursor = tbody.firstChild;
  for (const id of ids) {
    let row = pool.get(id);
    if (!row) {
      row = make(id);
      pool.set(id, row);
    }
    update(row, id);
    if (row !== cursor) tbody.insertBefore(row, cursor);
    else cursor = cursor.nextSibling;
  }
}

export function cells(tr, n) {
  for (let i = 0; i < n; i++) tr.appendChild(el("td"));
  return tr;
}

export function button(label, action, id, cls = "btn btn-icon", title = "") {
  const b = el("button", cls, label);
  b.type = "button";
  b.dataset.action = action;
  b.dataset.id = id;
  if (title) b.title = title;
  return b;
}
