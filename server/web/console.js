// The officers' console: logging in, and the review desk worked from the keyboard.
// Calls the same JSON API as any client; the session cookie authenticates and each
// change carries the session's anti-forgery token.
"use strict";

const Desk = { csrf: null, role: null, cases: [], index: -1, zoom: 1, mode: null, loading: 0 };

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
  document.getElementById("login-name").focus();
}

// Every console page but the login: who is logged in, and logging out.
async function sessionBar() {
  const session = await api("GET", "/api/v1/auth/session");
  Desk.csrf = session.csrf_token;
  Desk.role = session.role;
  document.getElementById("who").textContent = `${session.login} (${t(`role-${session.role}`)})`;
  document.getElementById("logout").addEventListener("click", async () => {
    await change("DELETE", "/api/v1/auth/session");
    location.assign("/console/login");
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
    const silentMin = c.last_seen ? Math.round((now - Date.parse(c.last_seen)) / 60000) : null;
    return el("tr", { id: `camera-${c.camera_id}` },
      el("td", { text: c.camera_id }),
      el("td", { text: c.site.address }),
      el("td", {}, el("span", { class: `status ${c.online ? "paid" : "closed"}`, text: t(c.online ? "online" : "offline") })),
      el("td", { text: c.last_seen ? `${when(c.last_seen)} (${t("minutes-ago", { n: silentMin })})` : "—" }),
      el("td", { class: Math.abs(c.clock_offset_ms || 0) > 500 ? "error" : "", text: c.clock_offset_ms === null || c.clock_offset_ms === undefined ? "—" : `${c.clock_offset_ms} ms` }),
      el("td", { class: (c.outbox_depth || 0) > 0 ? "error" : "", text: c.outbox_depth === null || c.outbox_depth === undefined ? "—" : String(c.outbox_depth) }),
      el("td", { text: (c.certificates || []).map((cert) => `${cert.number} (${day(cert.valid_from)}–${day(cert.valid_until)})`).join(", ") }));
  });
  document.getElementById("content").replaceChildren(
    el("p", { class: "muted", text: t("cameras-count", { count: cameras.length, online: cameras.filter((c) => c.online).length }) }),
    el("table", { class: "audit", id: "cameras" },
      el("thead", {}, el("tr", {}, ["camera", "site", "status", "last-seen", "clock-offset", "outbox", "certificates"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, rows)));
}

// Messages from cameras refused at the door, newest first, with why.
async function deadLettersPage() {
  const letters = (await api("GET", "/api/v1/dead-letters?limit=100")).items;
  document.getElementById("content").replaceChildren(
    letters.length === 0 ? el("p", { class: "muted", text: t("dead-letters-empty") }) :
    el("table", { class: "audit", id: "dead-letters" },
      el("thead", {}, el("tr", {}, ["received", "camera", "reason", "detail", "size"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, letters.map((d) => el("tr", {},
        el("td", { text: when(d.received_at) }),
        el("td", { text: d.camera_id || "—" }),
        el("td", { text: d.reason }),
        el("td", { text: d.detail }),
        el("td", {}, el("a", { href: `/api/v1/dead-letters/${d.id}/raw`, text: `${d.raw_len} B` })))))));
}

// Accounts: the list for admins and auditors; admins make new ones.
async function accountsPage() {
  const content = document.getElementById("content");
  const draw = async () => {
    const accounts = (await api("GET", "/api/v1/accounts")).items;
    const table = el("table", { class: "audit", id: "accounts" },
      el("thead", {}, el("tr", {}, ["login-name", "role", "officer"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, accounts.map((a) => el("tr", { id: `account-${a.login}` },
        el("td", { text: a.login }), el("td", { text: t(`role-${a.role}`) }),
        el("td", { text: a.officer ? `${a.officer.full_name} (${a.officer.badge})` : "—" })))));
    content.replaceChildren(...[table, Desk.role === "admin" && newAccountForm(draw)].filter(Boolean));
  };
  await draw();
}

function newAccountForm(redraw) {
  const field = (name, label, attrs) => [el("label", { for: `new-${name}`, text: t(label) }), el("input", Object.assign({ id: `new-${name}`, name, autocomplete: "off" }, attrs || {}))];
  const role = el("select", { id: "new-role", name: "role" }, ["reviewer", "supervisor", "finance", "admin", "auditor"].map((r) => el("option", { value: r, text: t(`role-${r}`) })));
  const message = el("p", { role: "status" });
  const form = el("form", { class: "card", id: "new-account" },
    el("h2", { text: t("new-account") }),
    field("login", "login-name", { required: true }),
    el("label", { for: "new-role", text: t("role") }), role,
    field("password", "password", { type: "password", autocomplete: "new-password", required: true, minlength: "12" }),
    field("full_name", "full-name"),
    field("badge", "badge"),
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
      const fields = (e.problem.errors || []).map((p) => `${p.field}: ${p.message}`).join("; ");
      message.textContent = `${t("account-not-created")} ${fields || e.message}`;
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
  const asked = new URLSearchParams(location.search);
  const today = new Date();
  form.to.value = asked.get("to") || today.toISOString().slice(0, 10);
  form.from.value = asked.get("from") || new Date(today.getTime() - 6 * 86400000).toISOString().slice(0, 10);
  const draw = async () => {
    const d = await api("GET", `/api/v1/dashboard?from=${form.from.value}&to=${form.to.value}`);
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

// Finance: bank credits waiting for a decision, and refunds owed.
async function financePage() {
  const [lines, refunds] = await Promise.all([
    api("GET", "/api/v1/statement-lines?queued=true&limit=200"),
    api("GET", "/api/v1/refund-requests?limit=200"),
  ]);
  const amount = (m) => money(m.minor, String(m.currency).toUpperCase());
  const table = (id, heads, rows) => el("table", { class: "audit", id },
    el("thead", {}, el("tr", {}, heads.map((k) => el("th", { scope: "col", text: t(k) })))),
    el("tbody", {}, rows));
  document.getElementById("content").replaceChildren(
    el("h2", { text: t("queued-credits") }),
    lines.items.length === 0 ? el("p", { class: "muted", text: t("nothing-queued") }) :
      table("queued-credits", ["booked-on", "amount", "payer", "remittance", "detail"], lines.items.map((l) => el("tr", {},
        el("td", { text: day(l.booked_on) }), el("td", { text: amount(l.amount) }), el("td", { text: l.payer || "—" }),
        el("td", { text: l.remittance }), el("td", { text: l.detail })))),
    el("h2", { text: t("refunds-owed") }),
    refunds.items.length === 0 ? el("p", { class: "muted", text: t("nothing-queued") }) :
      table("refunds", ["resolution", "amount", "reason", "state", "requested"], refunds.items.map((r) => el("tr", {},
        el("td", { text: r.resolution_number }), el("td", { text: amount(r.amount) }), el("td", { text: r.cause }),
        el("td", { text: r.state }), el("td", { text: when(r.requested_at) })))));
}

async function queuePage() {
  await sessionBar();
  document.getElementById("content").replaceChildren(
    el("p", { class: "muted", text: t("shortcuts") }),
    el("div", { class: "desk" },
      el("nav", { "aria-label": t("queue-title") },
        el("ul", { class: "queue", id: "queue", role: "listbox", tabindex: "0" }),
        el("p", { id: "queue-empty", class: "muted", hidden: true, text: t("queue-empty") })),
      el("div", {},
        el("section", { id: "case", "aria-live": "polite" }),
        // Outside the case's section: a decision begun while the case loads stays.
        el("div", { id: "decision-form" }))));
  // A supervisor settles what reviewers passed up first, then reviews like anyone.
  const states = Desk.role === "supervisor" ? ["supervisor_review", "needs_review"] : ["needs_review"];
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
  if (!c) return;
  try {
    const result = await change("POST", `/api/v1/cases/${c.id}/review`, body);
    message.className = "notice";
    message.textContent = t("decided", { id: c.id, state: t(`state-${result.state}`) });
    Desk.cases.splice(Desk.index, 1);
    await select(Desk.index);
  } catch (e) {
    message.className = "error";
    message.textContent = `${t("decision-failed")} ${e.message}`;
  }
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
});
