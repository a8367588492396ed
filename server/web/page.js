// What every kozomol page shares: the translations (Fluent resource files, simple
// messages with { $name } placeables), building DOM without innerHTML (no data is
// ever parsed as markup), and JSON calls that surface the API's problem details.
"use strict";

const Page = {
  lang: document.documentElement.lang || "ru",
  // Minutes east of UTC of the jurisdiction's clock, which every time and date on
  // these pages is read and written on, wherever the visitor's device is.
  offsetMs: (Number(document.documentElement.dataset.utcOffset) || 0) * 60000,
  messages: {},
};

function parseFtl(text) {
  const out = {};
  let key = null;
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line) || !line.trim()) { key = null; continue; }
    const m = /^([a-zA-Z][\w-]*)\s*=\s*(.*)$/.exec(line);
    if (m) { key = m[1]; out[key] = m[2]; }
    else if (key && /^\s/.test(line)) { out[key] += (out[key] ? " " : "") + line.trim(); }
  }
  return out;
}

function t(key, args) {
  const message = Page.messages[key];
  if (message === undefined) return key;
  return message.replace(/\{\s*\$(\w+)\s*\}/g, (_, name) => (args && args[name] !== undefined ? args[name] : ""));
}

function translate(root) {
  root.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((node) => { node.setAttribute("aria-label", t(node.dataset.i18nLabel)); });
  root.querySelectorAll("[data-i18n-title]").forEach((node) => { document.title = t(node.dataset.i18nTitle); });
}

async function loadMessages() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked && ["ky", "ru", "en"].includes(asked)) {
    // The visitor's pick outlives the page: the server reads it before Accept-Language.
    document.cookie = `lang=${asked}; Path=/; Max-Age=31536000; SameSite=Lax`;
  }
  const response = await fetch(`/assets/i18n/${Page.lang}.ftl`);
  Page.messages = parseFtl(await response.text());
  document.querySelectorAll(".lang a").forEach((a) => a.setAttribute("aria-current", String(a.lang === Page.lang)));
  translate(document);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    // Through the CSSOM: the pages' policy refuses inline style attributes.
    else if (name === "style") node.style.cssText = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body, headers) {
  const init = { method, headers: Object.assign({ Accept: "application/json" }, headers || {}), credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiProblem(response.status, data);
  return data;
}

function money(minor, currency) {
  try {
    return new Intl.NumberFormat(Page.lang, { style: "currency", currency }).format(minor / 100);
  } catch (_) {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
}

// An instant on the jurisdiction's clock: moved by its offset and printed as UTC.
function when(iso) {
  return iso ? new Date(Date.parse(iso) + Page.offsetMs).toLocaleString(Page.lang, { timeZone: "UTC" }) : "";
}
// A calendar date (YYYY-MM-DD) as the visitor's language writes it.
function day(iso) { return iso ? new Date(`${iso}T00:00:00Z`).toLocaleDateString(Page.lang, { timeZone: "UTC" }) : ""; }
// The date `daysBack` days before today on the jurisdiction's calendar, as YYYY-MM-DD.
function today(daysBack) { return new Date(Date.now() + Page.offsetMs - (daysBack || 0) * 86400000).toISOString().slice(0, 10); }
// A datetime-local value (YYYY-MM-DDTHH:MM, on the jurisdiction's clock) as the
// instant the API takes.
function instant(value) {
  return value ? new Date(Date.parse(`${value}Z`) - Page.offsetMs).toISOString() : undefined;
}
