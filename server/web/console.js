// The officers' console: logging in, and the review desk worked from the keyboard.
// Calls the same JSON API as any client; the session cookie authenticates and each
// change carries the session's anti-forgery token.
"use strict";

const Desk = { csrf: null, role: null, states: [], cases: [], index: -1, zoom: 1, mode: null, loading: 0, shown: null, deciding: false };

function change(method, path, body) {
  return api(method, path, body, { "X-CSRF-Token": Desk.csrf });
}

async function loginPage() {
  document.getElementById("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const message = document.getElementById("login-message");
    try {
      await api("POST", "/api/v1/auth/session", { login: form.login.value, password: form.password.value });
      const next = new URLSearchParams(location.search).get("next") || "";
      // Only a console page of this site: never an address someone slipped into the link.
      location.assign(/^\/console\/[\w/-]*$/.test(next) ? next : "/console/queue");
    } catch (e) {
      message.textContent = e.status === 429 ? t("too-many-logins") : t("login-failed");
    }
  });
  if (new URLSearchParams(location.search).get("failed") === "oidc") {
    document.getElementById("login-message").textContent = t("oidc-failed");
  }
  document.querySelector("#login button[type=submit]").disabled = false;
  document.getElementById("login-name").focus();
}

// Every console page but the login: who is logged in, and logging out.
async function sessionBar() {
  const session = await api("GET", "/api/v1/auth/session");
  Desk.csrf = session.csrf_token;
  Desk.role = session.role;
  document.getElementById("who").textContent = `${session.login} (${t(`role-${session.role}`)})`;
  document.getElementById("logout").addEventListener("click", async () => {
    try {
      await change("DELETE", "/api/v1/auth/session");
    } finally {
      location.assign("/console/login");
    }
  });
  document.getElementById("change-password").addEventListener("click", () => {
    document.getElementById("content").replaceChildren(passwordForm());
  });
  document.querySelectorAll(".console-nav a").forEach((a) => {
    if (a.getAttribute("href") === location.pathname) a.setAttribute("aria-current", "page");
  });
}

// Camera health: online or not, when last seen, its clock's offset, its outbox's depth.
async function camerasPage() {
  const cameras = (await api("GET", "/api/v1/cameras")).items;
  const now = Date.now();
  const rows = cameras.map((c) => {
    const silentMin = c.heard_at ? Math.round((now - Date.parse(c.heard_at)) / 60000) : null;
    return el("tr", { id: `camera-${c.camera_id}` },
      el("td", { text: c.camera_id }),
      el("td", { text: c.site.address }),
      el("td", {}, el("span", { class: `status ${c.online ? "paid" : "closed"}`, text: t(c.online ? "online" : "offline") })),
      el("td", { text: c.heard_at ? `${when(c.heard_at)} (${t("minutes-ago", { n: silentMin })})` : "—" }),
      el("td", { class: Math.abs(c.clock_offset_ms || 0) > 500 ? "error" : "", text: c.clock_offset_ms === null || c.clock_offset_ms === undefined ? "—" : `${c.clock_offset_ms} ms` }),
      el("td", { class: (c.outbox_depth || 0) > 0 ? "error" : "", text: c.outbox_depth === null || c.outbox_depth === undefined ? "—" : String(c.outbox_depth) }),
      el("td", { text: (c.certificates || []).map((cert) => `${cert.number} (${day(cert.valid_from)}–${day(cert.valid_until)})`).join(", ") }));
  });
  document.getElementById("content").replaceChildren(...[
    el("p", { class: "muted", text: t("cameras-count", { count: cameras.length, online: cameras.filter((c) => c.online).length }) }),
    table("cameras", ["camera", "site", "status", "last-seen", "clock-offset", "outbox", "certificates"], rows),
    ["supervisor", "admin"].includes(Desk.role) && bulkVoidForm(cameras),
  ].filter(Boolean));
}

// Every open case of a device over a time range voided at once (a calibration found
// wrong, a camera tampered with); paid fines among them are queued for refund.
function bulkVoidForm(cameras) {
  const serials = [...new Set(cameras.map((c) => c.device_serial))].sort();
  const message = el("p", { role: "status" });
  const form = el("form", { class: "card", id: "bulk-void" },
    el("h2", { text: t("bulk-void") }),
    ...choice("void", "device_serial", "device-serial", serials.map((s) => [s, s])),
    ...field("void", "captured_from", "from-day", { type: "datetime-local", required: true }),
    ...field("void", "captured_until", "to-day", { type: "datetime-local", required: true }),
    ...field("void", "reason", "reason", { required: true }),
    el("p", {}, el("button", { type: "submit", class: "danger", text: t("void-cases") })),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!window.confirm(t("void-confirm", { serial: form.device_serial.value }))) return;
    try {
      const done = await change("POST", "/api/v1/bulk-voids", {
        device_serial: form.device_serial.value, captured_from: instant(form.captured_from.value),
        captured_until: instant(form.captured_until.value), reason: form.reason.value,
      });
      message.className = "notice";
      message.textContent = t("voided", { count: done.voided.length, refunds: done.refund_requests });
    } catch (e) {
      message.className = "error";
      message.textContent = refusal("void-refused", e);
    }
  });
  return form;
}

// Messages from cameras refused at the door, newest first, with why.
async function deadLettersPage() {
  const letters = (await api("GET", "/api/v1/dead-letters?limit=100")).items;
  document.getElementById("content").replaceChildren(
    letters.length === 0 ? el("p", { class: "muted", text: t("dead-letters-empty") }) :
    table("dead-letters", ["received", "camera", "reason", "detail", "size"], letters.map((d) => el("tr", {},
      el("td", { text: when(d.received_at) }),
      el("td", { text: d.camera_id || "—" }),
      el("td", { text: d.reason }),
      el("td", { text: d.detail }),
      el("td", {}, d.raw_kept === 0 && d.raw_len > 0
        ? el("span", { class: "muted", text: t("dead-letter-purged", { size: d.raw_len }) })
        : el("a", { href: `/api/v1/dead-letters/${d.id}/raw`, text: `${d.raw_len} B` }))))));
}

// The holder's own new password; every session of the account ends with it.
function passwordForm() {
  const message = el("p", { role: "status" });
  const form = el("form", { class: "card", id: "password-form" },
    el("h2", { text: t("change-password") }),
    ...field("own", "current_password", "current-password", { type: "password", autocomplete: "current-password", required: true }),
    ...field("own", "new_password", "new-password", { type: "password", autocomplete: "new-password", required: true, minlength: "12" }),
    el("p", {}, el("button", { type: "submit", text: t("change-password") })),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await change("PUT", "/api/v1/auth/password", { current_password: data.get("current_password"), new_password: data.get("new_password") });
      location.assign("/console/login");
    } catch (e) {
      message.className = "error";
      message.textContent = refusal("password-not-changed", e);
    }
  });
  return form;
}

// Accounts: the list for admins and auditors; admins make new ones, disable or enable
// them and set a new password (each ends the account's sessions and tokens).
async function accountsPage() {
  const content = document.getElementById("content");
  const admin = Desk.role === "admin";
  const draw = async () => {
    const accounts = (await api("GET", "/api/v1/accounts")).items;
    const heads = ["login-name", "role", "officer", "account-state"].concat(admin ? ["account-actions"] : []);
    const list = table("accounts", heads, accounts.map((a) => el("tr", { id: `account-${a.login}` },
      el("td", { text: a.login }), el("td", { text: t(`role-${a.role}`) }),
      el("td", { text: a.officer ? `${a.officer.full_name} (${a.officer.badge})` : "—" }),
      el("td", {}, el("span", { class: `status ${a.disabled ? "closed" : "paid"}`, text: t(a.disabled ? "account-disabled" : "account-in-use") })),
      admin && el("td", {}, accountActions(a, draw)))));
    content.replaceChildren(...[list, admin && newAccountForm(draw)].filter(Boolean));
  };
  await draw();
}

function accountActions(account, redraw) {
  const patch = async (body) => {
    try {
      await change("PATCH", `/api/v1/accounts/${encodeURIComponent(account.login)}`, body);
      await redraw();
      document.getElementById("desk-message").textContent = t("account-changed", { login: account.login });
    } catch (e) {
      document.getElementById("desk-message").textContent = refusal("account-not-changed", e);
    }
  };
  const password = el("input", { type: "password", autocomplete: "new-password", minlength: "12", "aria-label": `${t("set-password")} ${account.login}` });
  return el("span", {},
    el("button", { type: "button", class: "secondary", text: t(account.disabled ? "enable" : "disable"), onclick: () => patch({ disabled: !account.disabled }) }),
    " ", password,
    el("button", { type: "button", class: "secondary", text: t("set-password"), onclick: () => patch({ password: password.value }) }));
}

function newAccountForm(redraw) {
  const message = el("p", { role: "status" });
  const form = el("form", { class: "card", id: "new-account" },
    el("h2", { text: t("new-account") }),
    ...field("new", "login", "login-name", { required: true }),
    ...choice("new", "role", "role", ["reviewer", "supervisor", "finance", "admin", "auditor"].map((r) => [r, t(`role-${r}`)])),
    ...field("new", "password", "password", { type: "password", autocomplete: "new-password", required: true, minlength: "12" }),
    ...field("new", "full_name", "full-name"),
    ...field("new", "badge", "badge"),
    el("p", {}, el("button", { type: "submit", text: t("create") })),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { login: data.get("login"), role: data.get("role"), password: data.get("password") };
    if (data.get("full_name")) body.full_name = data.get("full_name");
    if (data.get("badge")) body.badge = data.get("badge");
    try {
      await change("POST", "/api/v1/accounts", body);
      await redraw();
      document.getElementById("desk-message").textContent = t("account-created", { login: body.login });
    } catch (e) {
      message.className = "error";
      message.textContent = refusal("account-not-created", e);
    }
  });
  return form;
}

// SVG, drawn with DOM calls as the rest of the page.
function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

const KIND_COLOURS = ["#0b5cad", "#a40e26", "#116329", "#8a4b00", "#6639ba", "#1b7c83", "#bf3989", "#4b5563"];

// Bars of `series` (label → {kind → count}), stacked by kind, with a legend.
function barChart(id, title, series, kinds) {
  const labels = Object.keys(series);
  const width = Math.max(320, labels.length * 28 + 60);
  const height = 200;
  const max = Math.max(1, ...labels.map((l) => Object.values(series[l]).reduce((a, b) => a + b, 0)));
  const bar = (width - 60) / Math.max(1, labels.length);
  const bars = labels.flatMap((label, i) => {
    let y = height - 30;
    return kinds.map((kind, k) => {
      const value = series[label][kind] || 0;
      const h = (value / max) * (height - 50);
      y -= h;
      return value > 0 && svg("rect", { x: 50 + i * bar + 2, y, width: Math.max(2, bar - 4), height: h, fill: KIND_COLOURS[k % KIND_COLOURS.length] },
        svg("title", {}, document.createTextNode(`${label} ${t(`kind-${kind}`)}: ${value}`)));
    });
  });
  const ticks = labels.map((label, i) => (labels.length <= 12 || i % Math.ceil(labels.length / 12) === 0) &&
    svg("text", { x: 50 + i * bar + bar / 2, y: height - 12, "text-anchor": "middle", "font-size": "10" }, document.createTextNode(label)));
  return el("figure", { id, class: "chart" },
    el("figcaption", { text: title }),
    svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title },
      svg("text", { x: 4, y: 20, "font-size": "10" }, document.createTextNode(String(max))),
      svg("line", { x1: 48, y1: height - 30, x2: width, y2: height - 30, stroke: "#4b5563" }),
      bars, ticks),
    el("p", { class: "legend" }, kinds.map((kind, k) => el("span", { style: `border-left: 1em solid ${KIND_COLOURS[k % KIND_COLOURS.length]}; padding-left: .3em; margin-right: 1em` }, t(`kind-${kind}`)))));
}

async function dashboardPage() {
  const content = document.getElementById("content");
  const form = el("form", { class: "card", id: "dashboard-range" },
    el("label", { for: "from", text: t("from-day") }), el("input", { id: "from", name: "from", type: "date", required: true }),
    el("label", { for: "to", text: t("to-day") }), el("input", { id: "to", name: "to", type: "date", required: true }),
    el("p", {}, el("button", { type: "submit", text: t("show") })));
  const figures = el("div", { id: "figures" });
  content.replaceChildren(form, figures);
  // A link may name the range (`?from=&to=`); else the server's default, the last
  // seven days on the jurisdiction's calendar, which the answer fills the form with.
  const asked = new URLSearchParams(location.search);
  form.to.value = asked.get("to") || "";
  form.from.value = asked.get("from") || "";
  const draw = async () => {
    const range = new URLSearchParams();
    if (form.from.value) range.set("from", form.from.value);
    if (form.to.value) range.set("to", form.to.value);
    const d = await api("GET", `/api/v1/dashboard?${range}`);
    form.from.value = d.from;
    form.to.value = d.to;
    const kinds = [...new Set(d.violations.map((r) => r.kind))];
    const byDay = {};
    const byHour = {};
    const bySite = {};
    for (let h = 0; h < 24; h++) byHour[String(h)] = {};
    for (const r of d.violations) {
      for (const [series, key] of [[byDay, r.day], [byHour, String(r.hour)], [bySite, r.site || t("officer-filed")]]) {
        series[key] = series[key] || {};
        series[key][r.kind] = (series[key][r.kind] || 0) + r.recorded;
      }
    }
    const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)} %`);
    const minutes = d.mean_seconds_to_decision === null ? "—" : t("minutes", { n: (d.mean_seconds_to_decision / 60).toFixed(1) });
    figures.replaceChildren(
      el("dl", { class: "facts", id: "dashboard-facts" },
        el("dt", { text: t("backlog") }), el("dd", { id: "backlog", text: t("backlog-counts", { reviewer: d.backlog.needs_review, supervisor: d.backlog.supervisor_review }) }),
        el("dt", { text: t("automatic-share") }), el("dd", { id: "automatic-share", text: pct(d.automatic_share) }),
        el("dt", { text: t("time-to-decision") }), el("dd", { text: minutes }),
        el("dt", { text: t("issued-amount") }), el("dd", { text: `${d.issued} — ${money(d.issued_minor, d.currency)}` }),
        el("dt", { text: t("paid-amount") }), el("dd", { text: money(d.paid_minor, d.currency) }),
        el("dt", { text: t("collection-rate") }), el("dd", { id: "collection-rate", text: pct(d.collection_rate) })),
      barChart("chart-days", t("per-day"), byDay, kinds),
      barChart("chart-hours", t("per-hour"), byHour, kinds),
      barChart("chart-sites", t("per-site"), bySite, kinds));
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); draw(); });
  await draw();
}

function table(id, heads, rows) {
  return el("table", { class: "audit", id },
    el("thead", {}, el("tr", {}, heads.map((k) => el("th", { scope: "col", text: t(k) })))),
    el("tbody", {}, rows));
}

// A labelled input: [label, input], the input's id from the form's prefix.
function field(prefix, name, label, attrs) {
  const input = el(attrs && attrs.tag || "input", Object.assign({ id: `${prefix}-${name}`, name, autocomplete: "off" }, attrs || {}, { tag: undefined }));
  return [el("label", { for: `${prefix}-${name}`, text: t(label) }), input];
}

function choice(prefix, name, label, options, attrs) {
  return [el("label", { for: `${prefix}-${name}`, text: t(label) }),
    el("select", Object.assign({ id: `${prefix}-${name}`, name }, attrs || {}), options.map(([value, text]) => el("option", { value, text })))];
}

// A field's problems as the API reports them, after the form's own message.
function refusal(prefix, e) {
  const fields = ((e.problem && e.problem.errors) || []).map((p) => `${p.field}: ${p.message}`).join("; ");
  return `${t(prefix)} ${fields || e.message}`;
}

// A JPEG the officer picked, as the API takes files: base64 in JSON.
function upload(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({ name: file.name, content_type: file.type || "application/octet-stream", data: String(reader.result).split(",", 2)[1] || "" });
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// A report's own id, made once per filling of a form: the API files a retried or
// double-submitted report once. From getRandomValues, which plain HTTP also has.
function reportId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Sends a form's request once at a time: the button waits for the answer.
async function submitting(form, send) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try { await send(); } finally { button.disabled = false; }
}

function amountOf(m) { return money(m.minor, String(m.currency).toUpperCase()); }

// Finance: statements imported, bank credits waiting for a decision, the day's totals
// per channel (reconciliation), and refunds owed.
async function financePage() {
  const content = document.getElementById("content");
  const finance = Desk.role === "finance";
  const draw = async () => {
    const [lines, refunds] = await Promise.all([
      api("GET", "/api/v1/statement-lines?queued=true&limit=200"),
      api("GET", "/api/v1/refund-requests?limit=200"),
    ]);
    content.replaceChildren(...[
      finance && statementForm(draw),
      el("h2", { text: t("queued-credits") }),
      lines.items.length === 0 ? el("p", { class: "muted", text: t("nothing-queued") }) :
        table("queued-credits", ["booked-on", "amount", "payer", "remittance", "detail", finance && "decision"].filter(Boolean), lines.items.map((l) => el("tr", { id: `line-${l.id}` },
          el("td", { text: day(l.booked_on) }), el("td", { text: amountOf(l.amount) }), el("td", { text: l.payer || "—" }),
          el("td", { text: l.remittance }), el("td", { text: l.detail }),
          finance && el("td", {}, creditDecision(l, draw))))),
      totalsSection(),
      el("h2", { text: t("refunds-owed") }),
      refunds.items.length === 0 ? el("p", { class: "muted", text: t("nothing-queued") }) :
        table("refunds", ["resolution", "amount", "reason", "state", "requested"], refunds.items.map((r) => el("tr", {},
          el("td", { text: r.resolution_number }), el("td", { text: amountOf(r.amount) }), el("td", { text: r.cause }),
          el("td", { text: r.state }), el("td", { text: when(r.requested_at) })))),
    ].filter(Boolean));
  };
  await draw();
}

function statementForm(redraw) {
  const message = el("p", { role: "status" });
  const form = el("form", { class: "card", id: "statement-import" },
    el("h2", { text: t("import-statement") }),
    ...field("statement", "file", "statement-file", { type: "file", required: true, accept: ".xml,.csv,application/xml,text/csv" }),
    ...choice("statement", "format", "statement-format", [["camt053", "camt.053 (XML)"], ["csv", "CSV"]]),
    ...field("statement", "account", "statement-account"),
    el("p", {}, el("button", { type: "submit", text: t("import") })),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.file.files[0];
    const format = form.format.value;
    const query = new URLSearchParams({ format });
    if (format === "csv" && form.account.value) query.set("account", form.account.value);
    // The statement goes as the bank wrote it, not in JSON.
    const response = await fetch(`/api/v1/statements?${query}`, {
      method: "POST", credentials: "same-origin", body: file,
      headers: { Accept: "application/json", "Content-Type": format === "csv" ? "text/csv" : "application/xml", "X-CSRF-Token": Desk.csrf },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      message.className = "error";
      message.textContent = refusal("statement-refused", new ApiProblem(response.status, data));
      return;
    }
    await redraw();
    // Credits the bank took back that no payment could answer for are finance's: named.
    const reversals = data.reversals || [];
    const left = reversals.filter((r) => !["reversed", "already_reversed"].includes(r.outcome));
    const said = t("statement-imported", { ...data, reversals: reversals.length, reversed: reversals.length - left.length, left: left.length });
    document.getElementById("desk-message").textContent = [said, ...left.map((r) => `${r.bank_reference}: ${r.detail}`)].join(" ");
  });
  return form;
}

// Apply a queued credit to the fine it was meant for, or take it off the queue.
function creditDecision(line, redraw) {
  const code = el("input", { id: `code-${line.id}`, "aria-label": t("payment-code"), placeholder: t("payment-code"), inputmode: "numeric", autocomplete: "off" });
  const note = el("input", { id: `note-${line.id}`, "aria-label": t("note"), placeholder: t("note"), autocomplete: "off" });
  const decide = async (action) => {
    const body = { action, note: note.value || undefined };
    if (action === "apply") body.payment_code = code.value.replace(/\s/g, "");
    try {
      await change("POST", `/api/v1/statement-lines/${line.id}/resolution`, body);
      await redraw();
      document.getElementById("desk-message").textContent = t(`credit-${action}`, { id: line.id });
    } catch (e) {
      document.getElementById("desk-message").textContent = refusal("credit-refused", e);
    }
  };
  return el("span", { class: "inline-form" }, code, note,
    el("button", { type: "button", onclick: () => decide("apply"), text: t("apply") }), " ",
    el("button", { type: "button", class: "secondary", onclick: () => decide("dismiss"), text: t("dismiss") }));
}

// Reconciliation: per day, the money of each channel and the bank's credits.
function totalsSection() {
  const result = el("div", { id: "totals" });
  const form = el("form", { class: "inline-form" },
    ...field("totals", "from", "from-day", { type: "date", value: today(6) }),
    ...field("totals", "to", "to-day", { type: "date", value: today() }),
    el("button", { type: "submit", text: t("show") }));
  const draw = async () => {
    try {
      const totals = await api("GET", `/api/v1/payment-totals?from=${form.from.value}&to=${form.to.value}`);
      const pair = (p) => `${p[0]} · ${money(p[1], totals.currency)}`;
      result.replaceChildren(
        el("p", { class: totals.balanced ? "notice" : "error", text: t(totals.balanced ? "totals-balanced" : "totals-unbalanced") }),
        table("totals-table", ["booked-on", "channel-soap", "channel-api", "channel-statement", "awaiting-statement", "credits", "credits-applied", "credits-matched", "credits-queued", "credits-resolved"],
          totals.days.map((d) => el("tr", {}, el("td", { text: d.day ? day(d.day) : t("later") }),
            [d.soap, d.api, d.statement, d.awaiting_statement, d.credits, d.credits_applied, d.credits_matched, d.credits_queued, d.credits_resolved].map((p) => el("td", { text: pair(p) }))))));
    } catch (e) {
      result.replaceChildren(el("p", { class: "error", text: e.message }));
    }
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); draw(); });
  draw();
  return el("section", {}, el("h2", { text: t("reconciliation") }), form, result);
}

const KINDS = ["speeding", "red_light", "stop_line", "wrong_lane", "bus_lane", "oncoming_lane", "seat_belt", "phone"];

// Officers' reports: a violation an officer saw himself, and road accidents through
// their investigation.
async function reportsPage() {
  const content = document.getElementById("content");
  const draw = async () => {
    // The open ones: closed accidents take no more steps here.
    const [registered, investigated] = await Promise.all(["registered", "under_investigation"].map((state) =>
      api("GET", `/api/v1/accidents?state=${state}&limit=1000`)));
    const accidents = registered.items.concat(investigated.items).sort((a, b) => b.id - a.id);
    content.replaceChildren(
      officerViolationForm(),
      el("h2", { text: t("accidents") }),
      accidents.length === 0 ? el("p", { class: "muted", text: t("nothing-queued") }) :
        table("accidents", ["accident", "when", "place", "state", "registered-by", "decision"], accidents.map((a) => el("tr", { id: `accident-${a.id}` },
          el("td", { text: `#${a.id}` }), el("td", { text: when(a.occurred_at) }), el("td", { text: a.address }),
          el("td", { text: t(`accident-${a.state}`) + (a.outcome ? ` — ${t(`outcome-${a.outcome}`)}` : "") }),
          el("td", { text: a.registered_by }), el("td", {}, accidentMove(a, draw))))),
      accidentForm(draw),
      el("h2", { text: t("print-batches") }),
      await printBatches(draw),
      el("h2", { text: t("undeliverable") }),
      await undeliverable());
  };
  await draw();
}

// The post's letters, merged in batches by the delivery worker: each downloaded for
// printing (the download is audited) and marked printed once it went to the post.
async function printBatches(redraw) {
  const batches = (await api("GET", "/api/v1/print-batches?printed=false&limit=1000")).items;
  if (batches.length === 0) return el("p", { class: "muted", id: "print-batches", text: t("print-batches-empty") });
  const printed = async (batch) => {
    try {
      await change("POST", `/api/v1/print-batches/${batch.id}/printed`);
      await redraw();
    } catch (e) {
      document.getElementById("desk-message").textContent = refusal("printed-refused", e);
    }
  };
  return table("print-batches", ["print-batch", "when", "letters", "pages", "print-batch-pdf", "mark-printed"], batches.map((b) => el("tr", { id: `print-batch-${b.id}` },
    el("td", { text: `#${b.id}` }), el("td", { text: when(b.created_at) }),
    el("td", { text: String(b.letters) }), el("td", { text: String(b.pages) }),
    el("td", {}, el("a", { href: `/api/v1/print-batches/${b.id}/pdf`, text: t("print-batch-pdf") })),
    el("td", {}, el("button", { type: "button", onclick: () => printed(b), text: t("mark-printed") })))));
}

// Resolutions no delivery is under way for and none proven: each waits for a person to
// reach the owner another way (the case's history says what failed).
async function undeliverable() {
  const page = await api("GET", "/api/v1/cases?undeliverable=true&limit=1000");
  const cases = page.items;
  if (cases.length === 0) return el("p", { class: "muted", id: "undeliverable", text: t("undeliverable-empty") });
  return el("div", {},
    table("undeliverable", ["case", "plate", "when", "case-file"], cases.map((c) => el("tr", { id: `undeliverable-${c.id}` },
      el("td", { text: `#${c.id}` }), el("td", { text: c.plate || "—" }), el("td", { text: when(c.captured_at) }),
      el("td", {}, el("a", { href: `/api/v1/cases/${c.id}`, text: t("case-file") }))))),
    page.next && el("p", { class: "muted", text: t("undeliverable-more", { n: cases.length }) }));
}

function officerViolationForm() {
  const message = el("p", { role: "status" });
  const form = el("form", { class: "card", id: "officer-violation" },
    el("h2", { text: t("officer-violation") }),
    ...field("violation", "plate", "plate", { required: true }),
    ...choice("violation", "kind", "violation-kind", KINDS.map((k) => [k, t(`kind-${k}`)])),
    ...field("violation", "occurred_at", "when", { type: "datetime-local", required: true }),
    ...field("violation", "address", "place", { required: true }),
    ...field("violation", "speed_kmh", "speed", { type: "number", min: "1", max: "400" }),
    ...field("violation", "limit_kmh", "speed-limit", { type: "number", min: "1", max: "200" }),
    ...field("violation", "device_serial", "device-serial"),
    ...field("violation", "certificate", "certificate-number"),
    ...field("violation", "valid_from", "valid-from", { type: "date" }),
    ...field("violation", "valid_until", "valid-until", { type: "date" }),
    ...field("violation", "notes", "note", { tag: "textarea" }),
    ...field("violation", "photos", "scene-photos", { type: "file", multiple: true, required: true, accept: "image/jpeg" }),
    ...field("violation", "plate_photo", "plate-photo", { type: "file", accept: "image/jpeg" }),
    el("p", {}, el("button", { type: "submit", text: t("file-violation") })),
    message);
  let id = reportId();
  form.addEventListener("submit", (event) => { event.preventDefault(); submitting(form, async () => {
    const number = (name) => (form[name].value ? Number(form[name].value) : undefined);
    const body = {
      report_id: id,
      plate: form.plate.value, kind: form.kind.value, occurred_at: instant(form.occurred_at.value),
      place: { address: form.address.value }, speed_kmh: number("speed_kmh"), limit_kmh: number("limit_kmh"),
      notes: form.notes.value || undefined,
      photos: await Promise.all([...form.photos.files].map(upload)),
    };
    if (form.plate_photo.files[0]) body.plate_photo = await upload(form.plate_photo.files[0]);
    if (form.device_serial.value) {
      body.device = { serial: form.device_serial.value, certificate: { number: form.certificate.value, valid_from: form.valid_from.value, valid_until: form.valid_until.value } };
    }
    try {
      const filed = await change("POST", "/api/v1/officer-violations", body);
      form.reset();
      id = reportId();
      message.className = "notice";
      message.textContent = t("violation-filed", { id: filed.case_id, state: t(`state-${filed.state}`) });
    } catch (e) {
      message.className = "error";
      message.textContent = refusal("violation-refused", e);
    }
  }); });
  return form;
}

// The next step of an accident's investigation, from where it stands.
function accidentMove(accident, redraw) {
  const move = async (to, outcome) => {
    try {
      await change("POST", `/api/v1/accidents/${accident.id}/moves`, { from: accident.state, to, outcome });
      await redraw();
    } catch (e) {
      document.getElementById("desk-message").textContent = refusal("move-refused", e);
    }
  };
  if (accident.state === "registered") {
    return el("button", { type: "button", onclick: () => move("under_investigation"), text: t("investigate") });
  }
  if (accident.state === "under_investigation") {
    const outcome = el("select", { "aria-label": t("outcome"), id: `outcome-${accident.id}` },
      ["violations_filed", "no_violation", "referred_to_court"].map((o) => el("option", { value: o, text: t(`outcome-${o}`) })));
    return el("span", { class: "inline-form" }, outcome, el("button", { type: "button", onclick: () => move("closed", outcome.value), text: t("close-accident") }));
  }
  return "";
}

function accidentForm(redraw) {
  const message = el("p", { role: "status" });
  const form = el("form", { class: "card", id: "accident" },
    el("h2", { text: t("new-accident") }),
    ...field("accident", "occurred_at", "when", { type: "datetime-local", required: true }),
    ...field("accident", "address", "place", { required: true }),
    ...field("accident", "description", "description", { tag: "textarea", required: true }),
    ...field("accident", "vehicle_plate", "plate", { required: true }),
    ...field("accident", "damage", "damage", { required: true }),
    ...field("accident", "driver", "driver-name", { required: true }),
    ...field("accident", "photos", "scene-photos", { type: "file", multiple: true, accept: "image/jpeg" }),
    el("p", {}, el("button", { type: "submit", text: t("register-accident") })),
    message);
  const id = reportId();
  form.addEventListener("submit", (event) => { event.preventDefault(); submitting(form, async () => {
    // One vehicle and its driver here; the API takes more (up to 50 vehicles).
    const body = {
      report_id: id,
      occurred_at: instant(form.occurred_at.value), place: { address: form.address.value },
      description: form.description.value,
      vehicles: [{ plate: form.vehicle_plate.value, damage: form.damage.value }],
      participants: [{ name: form.driver.value, role: "driver", vehicle: 0 }],
      photos: await Promise.all([...form.photos.files].map(upload)),
    };
    try {
      const accident = await change("POST", "/api/v1/accidents", body);
      await redraw();
      document.getElementById("desk-message").textContent = t("accident-added", { id: accident.id });
    } catch (e) {
      message.className = "error";
      message.textContent = refusal("accident-refused", e);
    }
  }); });
  return form;
}

async function queuePage() {
  await sessionBar();
  document.getElementById("content").replaceChildren(
    el("p", { class: "muted", text: t("shortcuts") }),
    el("div", { class: "desk" },
      el("nav", { "aria-label": t("queue-title") },
        el("ul", { class: "queue", id: "queue", role: "listbox", tabindex: "0", "aria-label": t("queue-title") }),
        el("p", { id: "queue-empty", class: "muted", hidden: true, text: t("queue-empty") })),
      el("div", {},
        el("section", { id: "case", "aria-live": "polite" }),
        // Outside the case's section: a decision begun while the case loads stays.
        el("div", { id: "decision-form" }))));
  // A supervisor settles what reviewers passed up and the cases whose owner the
  // registry did not give (the audit says why) first, then reviews like anyone.
  const states = Desk.role === "supervisor" ? ["supervisor_review", "owner_unknown", "needs_review"] : ["needs_review"];
  Desk.states = states;
  Desk.cases = [];
  for (const state of states) {
    const page = await api("GET", `/api/v1/cases?state=${state}&limit=100`);
    Desk.cases.push(...page.items);
  }
  drawQueue();
  select(0);
  document.addEventListener("keydown", onKey);
}

function drawQueue() {
  const list = document.getElementById("queue");
  list.replaceChildren(...Desk.cases.map((c, i) => el("li", {
    role: "option", id: `q-${c.id}`, "aria-selected": String(i === Desk.index), onclick: () => select(i),
  }, `#${c.id} `, c.plate || "—", " ", el("span", { class: "muted", text: t(`state-${c.state}`) }))));
  document.getElementById("queue-empty").hidden = Desk.cases.length > 0;
}

async function select(i) {
  if (Desk.cases.length === 0) {
    Desk.index = -1;
    drawQueue();
    document.getElementById("case").replaceChildren();
    return;
  }
  Desk.index = Math.max(0, Math.min(i, Desk.cases.length - 1));
  Desk.mode = null;
  Desk.shown = null;
  document.getElementById("decision-form").replaceChildren();
  drawQueue();
  const id = Desk.cases[Desk.index].id;
  // Keys move faster than cases load: only the last case asked for is drawn.
  const loading = ++Desk.loading;
  const [detail, reviews] = await Promise.all([
    api("GET", `/api/v1/cases/${id}`),
    api("GET", `/api/v1/cases/${id}/reviews`),
  ]);
  if (loading !== Desk.loading) return;
  drawCase(detail, Array.isArray(reviews) ? reviews : []);
}

function drawCase(c, reviews) {
  const moves = (c.audit || []).filter((row) => row.to_state);
  Desk.shown = { id: c.id, state: c.state, move: moves.length ? moves[moves.length - 1].id : null };
  const r = c.recognition || {};
  const measurement = (c.event && c.event.measurement) || {};
  const measured = measurement.speed_kmh !== undefined
    ? t("measured-speed", { speed: measurement.speed_kmh, limit: measurement.limit_kmh })
    : measurement.red_elapsed_ms !== undefined ? t("measured-red", { ms: measurement.red_elapsed_ms }) : "—";
  const section = document.getElementById("case");
  section.replaceChildren(...[
    el("h2", {}, `${t("case")} #${c.id} — ${t(`kind-${c.kind}`)}`),
    el("div", { class: "frames", style: `--zoom: ${Desk.zoom}` }, c.frames.map((f) =>
      el("img", { src: `/api/v1/cases/${c.id}/frames/${f.index}`, alt: t("photo", { n: f.index + 1 }) }))),
    el("div", { class: "reads" },
      c.plate_crop_url ? el("img", { src: `/api/v1/cases/${c.id}/plate-crop`, alt: t("plate-crop") }) : el("span", { class: "muted", text: t("no-crop") }),
      el("div", {}, el("div", { class: "muted", text: t("camera-read") }), el("div", { class: "plate", id: "camera-read", text: (r.camera_read && r.camera_read.text) || c.plate || "—" })),
      el("div", {}, el("div", { class: "muted", text: t("machine-read") }), el("div", { class: "plate", id: "machine-read", text: r.plate ? `${r.plate.text}` : "—" }),
        r.plate && el("div", { class: "muted", text: `${(r.plate.confidence_milli / 10).toFixed(1)} %` }))),
    el("dl", { class: "facts" },
      el("dt", { text: t("when") }), el("dd", { text: when(c.captured_at) }),
      el("dt", { text: t("measurement") }), el("dd", { text: measured }),
      el("dt", { text: t("calibration") }), el("dd", { class: c.enforceable ? "notice" : "error", text: c.enforceable ? t("calibration-valid") : `${t("calibration-invalid")} ${c.enforceability_note || ""}` }),
      el("dt", { text: t("state") }), el("dd", { text: t(`state-${c.state}`) }),
      c.personal_data_purged_at && el("dt", { text: t("personal-data-purged") }),
      c.personal_data_purged_at && el("dd", { text: when(c.personal_data_purged_at) }),
      c.evidence_destroyed_at && el("dt", { text: t("case-file-destroyed") }),
      c.evidence_destroyed_at && el("dd", { text: when(c.evidence_destroyed_at) }),
    ),
    reviews.length > 0 && el("section", {}, el("h3", { text: t("earlier-reviews") }), el("ul", {}, reviews.map((v) =>
      el("li", {}, `${v.reviewer} (${v.tier}): ${v.decision} ${v.plate || ""} ${v.reason || ""}`)))),
    el("div", { id: "actions" },
      el("button", { type: "button", onclick: () => decide({ decision: "approve" }) }, t("approve"), " ", el("kbd", { text: "A" })), " ",
      el("button", { type: "button", class: "secondary", onclick: () => startCorrect() }, t("correct-plate"), " ", el("kbd", { text: "C" })), " ",
      el("button", { type: "button", class: "danger", onclick: () => startReject() }, t("reject"), " ", el("kbd", { text: "R" }))),
    el("details", {}, el("summary", { text: t("audit-trail") }), el("table", { class: "audit" },
      el("tbody", {}, (c.audit || []).map((a) => el("tr", {}, el("td", { text: when(a.at) }), el("td", { text: a.actor }), el("td", { text: a.action }), el("td", { text: a.to_state || "" })))))),
  ].filter(Boolean));
}

function startCorrect() {
  Desk.mode = "correct";
  const input = el("input", { id: "corrected-plate", "aria-label": t("correct-plate"), autocomplete: "off" });
  const form = el("form", {}, el("label", { for: "corrected-plate", text: t("correct-plate") }), input, el("button", { type: "submit", text: t("save") }));
  form.addEventListener("submit", (e) => { e.preventDefault(); decide({ decision: "correct_plate", plate: input.value }); });
  document.getElementById("decision-form").replaceChildren(form);
  input.focus();
}

const REASONS = ["plate_unreadable", "no_violation", "emergency_vehicle", "wrong_vehicle", "camera_fault", "calibration_invalid", "duplicate_event", "other"];

function startReject() {
  Desk.mode = "reject";
  const select = el("select", { id: "reject-reason" }, REASONS.map((code) => el("option", { value: code, text: t(`reason-${code}`) })));
  const note = el("input", { id: "reject-note", autocomplete: "off" });
  const form = el("form", {},
    el("label", { for: "reject-reason", text: t("reason") }), select,
    el("label", { for: "reject-note", text: t("note") }), note,
    el("p", {}, el("button", { type: "submit", class: "danger", text: t("reject") })));
  form.addEventListener("submit", (e) => { e.preventDefault(); decide({ decision: "reject", reason: select.value, note: note.value || undefined }); });
  document.getElementById("decision-form").replaceChildren(form);
  select.focus();
}

async function decide(body) {
  const message = document.getElementById("desk-message");
  const c = Desk.cases[Desk.index];
  // Only the case on screen is decided: a key pressed while the next one loads (or a
  // second press while the first decision is on its way) decides nothing.
  if (!c || !Desk.shown || Desk.shown.id !== c.id || Desk.deciding) return;
  Desk.deciding = true;
  try {
    // The case as shown: its state and its latest move, so one that left and came
    // back to the same state meanwhile is not decided on what is on screen.
    const seen = { seen_state: Desk.shown.state };
    if (Desk.shown.move !== null) seen.seen_move = Desk.shown.move;
    const result = await change("POST", `/api/v1/cases/${c.id}/review`, Object.assign(seen, body));
    message.className = "notice";
    message.textContent = t("decided", { id: c.id, state: t(`state-${result.state}`) });
    Desk.cases.splice(Desk.index, 1);
    await select(Desk.index);
  } catch (e) {
    message.className = "error";
    message.textContent = (e.status === 409 && await movedMeanwhile(c.id)) || `${t("decision-failed")} ${e.message}`;
  } finally {
    Desk.deciding = false;
  }
}

// After a refused decision: where the case moved since it was shown (someone else
// decided it), it is shown as it is now, or leaves the desk if it no longer waits
// here, and the officer is told so in the page's language; null where it did not
// move (the refusal is about the decision, and its detail says why).
async function movedMeanwhile(id) {
  const shown = Desk.shown;
  const now = await api("GET", `/api/v1/cases/${id}`).catch(() => null);
  if (!now || !shown || shown.id !== id) return null;
  const moves = (now.audit || []).filter((row) => row.to_state);
  const move = moves.length ? moves[moves.length - 1].id : null;
  if (now.state === shown.state && move === shown.move) return null;
  const at = Desk.cases.findIndex((c) => c.id === id);
  if (at < 0) return null;
  if (Desk.states.includes(now.state)) {
    Desk.cases[at].state = now.state;
    await select(at);
    return t("case-moved", { id });
  }
  Desk.cases.splice(at, 1);
  await select(at);
  return t("case-gone", { id });
}

function onKey(event) {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement && document.activeElement.tagName);
  if (event.key === "Escape") { Desk.mode = null; document.getElementById("decision-form").replaceChildren(); return; }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const keys = {
    j: () => select(Desk.index + 1), ArrowDown: () => select(Desk.index + 1),
    k: () => select(Desk.index - 1), ArrowUp: () => select(Desk.index - 1),
    a: () => decide({ decision: "approve" }),
    c: () => startCorrect(),
    r: () => startReject(),
    "+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(0.8),
  };
  const action = keys[event.key];
  if (action) { event.preventDefault(); action(); }
}

function zoom(factor) {
  Desk.zoom = Math.max(0.5, Math.min(4, Desk.zoom * factor));
  const frames = document.querySelector(".frames");
  if (frames) frames.style.setProperty("--zoom", Desk.zoom);
}

document.addEventListener("DOMContentLoaded", async () => {
  await loadMessages();
  const page = document.body.dataset.page;
  if (page === "login") await loginPage();
  else if (page === "queue") await queuePage();
  else if (page === "cameras") { await sessionBar(); await camerasPage(); }
  else if (page === "dead-letters") { await sessionBar(); await deadLettersPage(); }
  else if (page === "accounts") { await sessionBar(); await accountsPage(); }
  else if (page === "dashboard") { await sessionBar(); await dashboardPage(); }
  else if (page === "finance") { await sessionBar(); await financePage(); }
  else if (page === "reports") { await sessionBar(); await reportsPage(); }
});
