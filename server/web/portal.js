// The citizens' portal: find one's fines, see the evidence, download the signed
// resolution, pay by QR, appeal and follow the appeal. Every call is to the public
// API; a lookup's grant opens the fine's photos, PDF and appeal.
"use strict";

const tabs = ["plate", "number", "code"];

function showTab(name) {
  for (const other of tabs) {
    document.getElementById(`tab-${other}`).setAttribute("aria-selected", String(other === name));
    document.getElementById(`by-${other}`).hidden = other !== name;
  }
}

async function lookUp(body) {
  const message = document.getElementById("lookup-message");
  const list = document.getElementById("fines");
  message.textContent = t("searching");
  message.className = "";
  list.replaceChildren();
  try {
    const answer = await api("POST", "/api/v1/public/lookups", body);
    message.textContent = t("found", { count: answer.fines.length });
    list.replaceChildren(...answer.fines.map(fineCard));
  } catch (e) {
    message.className = "error";
    if (e.status === 404) message.textContent = t("nothing-found");
    else if (e.status === 429) message.textContent = t("too-many-lookups");
    else message.textContent = t("lookup-failed");
  }
}

function fineCard(fine) {
  const card = el("article", { class: "card", "data-number": fine.number, "aria-labelledby": `h-${fine.number}` });
  drawFine(card, fine);
  return card;
}

async function refresh(card, fine) {
  try {
    const fresh = await api("GET", `/api/v1/public/fines/${encodeURIComponent(fine.number)}?grant=${encodeURIComponent(fine.grant)}`);
    drawFine(card, fresh);
  } catch (e) {
    // A grant ends two hours after its lookup: the visitor looks the fine up again.
    if (e.status !== 403) throw e;
    const message = document.getElementById("lookup-message");
    message.className = "error";
    message.textContent = t("grant-expired");
  }
}

function drawFine(card, fine) {
  const facts = el("dl", { class: "facts" },
    el("dt", { text: t("violation") }), el("dd", { text: t(`kind-${fine.kind}`) }),
    el("dt", { text: t("article") }), el("dd", { text: fine.article }),
    // The moment and place only for the owner; a number alone tells the day.
    el("dt", { text: t("when") }), el("dd", { text: fine.captured_at ? when(fine.captured_at) : day(fine.captured_on) }),
    el("dt", { text: t("plate") }), el("dd", { class: "plate", text: fine.plate || "" }),
    fine.place && [
      el("dt", { text: t("place") }),
      el("dd", {}, fine.place.address, fine.place.map_url && [" ", el("a", { href: fine.place.map_url, target: "_blank", rel: "noopener", text: t("on-map") })]),
    ],
    el("dt", { text: t("amount") }), el("dd", { class: "amount", text: money(fine.amount_minor, fine.currency) }),
    fine.discounted_minor !== null && [
      el("dt", { text: t("discounted") }),
      el("dd", { text: fine.discount_until ? t("discount-until", { amount: money(fine.discounted_minor, fine.currency), date: day(fine.discount_until) }) : money(fine.discounted_minor, fine.currency) }),
    ],
    fine.due && [el("dt", { text: t("due") }), el("dd", { text: day(fine.due) })],
    el("dt", { text: t("outstanding") }), el("dd", { class: "outstanding", text: money(fine.outstanding_minor, fine.currency) }),
    fine.paid_minor > 0 && [el("dt", { text: t("paid") }), el("dd", { text: money(fine.paid_minor, fine.currency) })],
    el("dt", { text: t("payment-code") }), el("dd", { class: "code", text: fine.payment_code }),
  );
  const photos = fine.owner_view && el("div", { class: "photos" }, fine.frames.map((url, i) =>
    el("img", { src: url, alt: t("photo", { n: i + 1 }), tabindex: "0", onclick: (e) => e.target.classList.toggle("zoomed"), onkeydown: (e) => { if (e.key === "Enter") e.target.classList.toggle("zoomed"); } })));
  const pay = fine.qr_svg_url && el("section", { class: "pay", "aria-label": t("pay") },
    el("img", { class: "qr", src: fine.qr_svg_url, alt: t("qr-alt") }),
    el("div", {}, el("h4", { text: t("pay") }), el("p", { text: t("pay-by-qr") }),
      fine.card_payment_url && el("p", {}, el("a", { class: "card-pay button", href: fine.card_payment_url, text: t("pay-by-card") }))));
  card.replaceChildren(...[
    el("h3", { id: `h-${fine.number}` }, `${t("resolution")} ${fine.number} `,
      el("span", { class: `status ${fine.status}`, text: t(`status-${fine.status}`) })),
    facts,
    fine.owner_view && el("h4", { text: t("photos") }),
    photos,
    fine.pdf_url && el("p", {}, el("a", { class: "pdf", href: fine.pdf_url, download: `${fine.number}.pdf`, text: t("download-pdf") })),
    pay,
    fine.owner_view ? appealSection(card, fine) : ownerSection(fine),
    fine.contacts_url && noticesSection(fine),
    el("p", {}, el("button", { type: "button", class: "secondary", onclick: () => refresh(card, fine), text: t("refresh") })),
  ].filter(Boolean));
}

function appealSection(card, fine) {
  const section = el("section", { class: "appeal", "aria-label": t("appeal") }, el("h4", { text: t("appeal") }));
  if (fine.appeal) {
    section.append(el("p", { class: "appeal-status" },
      t(`appeal-${fine.appeal.state}`, { date: when(fine.appeal.filed_at) }),
      fine.appeal.decision_note ? ` — ${fine.appeal.decision_note}` : ""));
    // One appeal is heard here: an open one waits, a rejected one goes on in court.
    if (["filed", "rejected"].includes(fine.appeal.state)) return section;
  }
  if (["cancelled", "closed"].includes(fine.status)) return section;
  // Past its last day the API takes no appeal: the card says where a late one goes.
  if (appealLate(fine)) {
    section.append(el("p", { class: "appeal-late", text: t("appeal-late", { date: day(fine.appeal_until) }) }));
    return section;
  }
  const id = (name) => `${name}-${fine.number}`;
  const message = el("p", { role: "status" });
  const form = el("form", { class: "appeal-form" },
    fine.appeal_until && el("p", { class: "muted", text: t("appeal-until", { date: day(fine.appeal_until) }) }),
    el("label", { for: id("appellant"), text: t("appellant") }), el("input", { id: id("appellant"), name: "appellant", required: true, maxlength: TEXT_LONGEST, autocomplete: "name" }),
    el("label", { for: id("contact"), text: t("contact") }), el("input", { id: id("contact"), name: "contact", maxlength: TEXT_LONGEST, autocomplete: "tel" }),
    el("label", { for: id("grounds"), text: t("grounds") }), el("textarea", { id: id("grounds"), name: "grounds", rows: "4", required: true, maxlength: TEXT_LONGEST }),
    el("label", { for: id("files"), text: t("attachments") }), el("input", { id: id("files"), name: "files", type: "file", multiple: true, accept: ATTACHMENT_TYPES.join(",") }),
    el("p", {}, el("button", { type: "submit", text: t("file-appeal") })),
    message);
  const say = (text) => { message.className = "error"; message.textContent = text; };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const files = [...form.querySelector("input[type=file]").files];
    const wrong = attachmentProblem(files);
    if (wrong) { say(wrong); return; }
    try {
      const attachments = await Promise.all(files.map(readUpload));
      await api("POST", `/api/v1/public/fines/${encodeURIComponent(fine.number)}/appeals?grant=${encodeURIComponent(fine.grant)}`, {
        appellant: data.get("appellant"), contact: data.get("contact"), grounds: data.get("grounds"), attachments,
      });
      await refresh(card, fine);
    } catch (e) {
      say(appealRefusal(e, files));
    }
  });
  section.append(form);
  return section;
}

// What the API takes in a citizen's appeal (kozomol_fines::appeals and the portal's
// body limit), checked here too so that the visitor is told before the upload.
const TEXT_LONGEST = 4000;
const ATTACHMENT_TYPES = ["image/jpeg", "image/png", "application/pdf"];
const ATTACHMENTS_MOST = 10;
const MIB = 1024 * 1024;
const ATTACHMENT_LARGEST_MIB = 10;
const ATTACHMENTS_TOTAL_MIB = 15;
const ATTACHMENT_NAME_LONGEST = 200;

// Whether the fine's last day to appeal (once delivery dated it) has passed.
function appealLate(fine) { return Boolean(fine.appeal_until) && today() > fine.appeal_until; }

// What is wrong with the files chosen for an appeal, in the visitor's language; null
// when nothing is.
function attachmentProblem(files) {
  if (files.length > ATTACHMENTS_MOST) return t("appeal-too-many-files", { max: ATTACHMENTS_MOST });
  for (const file of files) {
    if ([...file.name.trim()].length > ATTACHMENT_NAME_LONGEST) return t("appeal-file-name", { name: `${file.name.slice(0, 40)}…`, max: ATTACHMENT_NAME_LONGEST });
    if (!ATTACHMENT_TYPES.includes(file.type)) return t("appeal-file-type", { name: file.name });
    if (file.size > ATTACHMENT_LARGEST_MIB * MIB) return t("appeal-file-too-large", { name: file.name, size: ATTACHMENT_LARGEST_MIB });
  }
  if (files.reduce((sum, f) => sum + f.size, 0) > ATTACHMENTS_TOTAL_MIB * MIB) return t("appeal-files-too-large", { size: ATTACHMENTS_TOTAL_MIB });
  return null;
}

// Why the API refused an appeal, in the visitor's language (its details are English).
function appealRefusal(e, files) {
  if (e.status === 409) return t("appeal-not-taken");
  if (e.status === 403) return t("grant-expired");
  if (e.status === 429) return t("too-many-lookups");
  if (e.status === 413) return t("appeal-files-too-large", { size: ATTACHMENTS_TOTAL_MIB });
  if (e.status === 422) {
    const errors = (e.problem && e.problem.errors) || [];
    // Type and size were checked above: a file the API refuses is not what it says.
    const file = errors.map((p) => /^attachments\[(\d+)\]/.exec(p.field || "")).find(Boolean);
    if (file) return t("appeal-file-unreadable", { name: files[Number(file[1])] ? files[Number(file[1])].name : "" });
    return t("appeal-check-fields", { max: TEXT_LONGEST });
  }
  return t("appeal-failed");
}

// A fine found by its number or payment code shows and pays; its photos, PDF, appeal
// and notices open with the vehicle's plate (shown only in part) and its registration
// certificate.
function ownerSection(fine) {
  const id = `owner-${fine.number}`;
  const plate = el("input", { id: `${id}-plate`, name: "plate", required: true, autocomplete: "off", autocapitalize: "characters" });
  const certificate = el("input", { id, name: "certificate", required: true, autocomplete: "off", autocapitalize: "characters" });
  const form = el("form", { class: "owner-form" },
    el("p", { class: "muted", text: t("owner-more") }),
    el("label", { for: `${id}-plate`, text: t("plate") }), plate,
    el("label", { for: id, text: t("certificate") }), certificate,
    el("p", {}, el("button", { type: "submit", text: t("open-as-owner") })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    lookUp({ plate: plate.value, certificate: certificate.value });
  });
  return el("section", { class: "appeal", "aria-label": t("appeal") },
    el("h4", { text: t("appeal") }),
    fine.appeal && el("p", { class: "appeal-status" }, t(`appeal-${fine.appeal.state}`, { date: when(fine.appeal.filed_at) })),
    appealLate(fine) && el("p", { class: "appeal-late", text: t("appeal-late", { date: day(fine.appeal_until) }) }),
    form);
}

// Only for a fine found by plate and certificate: the owner's phone or e-mail for
// notices of this resolution and every later one.
function noticesSection(fine) {
  const id = `notices-${fine.number}`;
  const message = el("p", { role: "status", class: "notices-status" });
  // Only the channels this server sends codes by.
  const channel = el("select", { id: `${id}-channel`, name: "channel" },
    fine.contact_channels.map((c) => el("option", { value: c, text: t(c === "sms" ? "by-sms" : "by-email") })));
  const address = el("input", { id: `${id}-address`, name: "address", required: true, autocomplete: "tel", type: "tel" });
  // The browser offers what the channel takes: a phone number, or an e-mail address.
  const fitAddress = () => {
    const email = channel.value === "email";
    address.autocomplete = email ? "email" : "tel";
    address.type = email ? "email" : "tel";
  };
  channel.addEventListener("change", fitAddress);
  fitAddress();
  const form = el("form", { class: "notices-form" },
    el("label", { for: `${id}-channel`, text: t("notices-channel") }), channel,
    el("label", { for: `${id}-address`, text: t("notices-address") }), address,
    el("p", {}, el("button", { type: "submit", text: t("subscribe") })));
  // The second step: the code sent to the address stores it (nothing is stored before).
  const code = el("input", { id: `${id}-code`, name: "code", required: true, inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9 ]{6,7}", maxlength: "7" });
  const codeForm = el("form", { class: "notices-code", hidden: true },
    el("label", { for: `${id}-code`, text: t("notices-code") }), code,
    el("p", {}, el("button", { type: "submit", text: t("confirm-code") })));
  let confirmUrl = null;
  const say = (kind, text) => { message.className = `notices-status ${kind}`; message.textContent = text; };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("POST", fine.contacts_url, { channel: channel.value, address: address.value });
      confirmUrl = answer.confirm_url;
      code.value = "";
      codeForm.hidden = false;
      say("notice", t("notices-code-sent", { address: address.value }));
      code.focus();
    } catch (e) {
      if (e.status === 422) say("error", t("notices-address-wrong"));
      else if (e.status === 503) say("error", t("code-not-sent"));
      else if (e.status === 429) say("error", t(e.problem && e.problem.code === "too_many_codes" ? "code-too-many" : "too-many-lookups"));
      else say("error", `${t("subscribe-failed")} ${e.message}`);
    }
  });
  codeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("POST", confirmUrl, { code: code.value });
      codeForm.hidden = true;
      say("notice", t(answer.already_known ? "subscribed-already" : "subscribed"));
    } catch (e) {
      // The detail names the tries left in English: only the number is taken from it.
      const field = (e.problem && e.problem.errors && e.problem.errors[0]) || null;
      const left = field && /(\d+) tries left/.exec(field.message);
      if (e.status === 422) say("error", left ? t("code-wrong", { left: left[1] }) : t("code-six-digits"));
      else if (e.status === 409 || e.status === 404) { codeForm.hidden = true; say("error", t("code-lapsed")); }
      else if (e.status === 429) say("error", t("too-many-lookups"));
      else say("error", `${t("subscribe-failed")} ${e.message}`);
    }
  });
  return el("section", { class: "notices", "aria-label": t("notices") }, el("h4", { text: t("notices") }), el("p", { class: "muted", text: t("notices-about") }), form, codeForm, message);
}

function readUpload(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({ name: file.name, content_type: file.type || "application/octet-stream", data: String(reader.result).split(",", 2)[1] || "" });
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  await loadMessages();
  for (const name of tabs) document.getElementById(`tab-${name}`).addEventListener("click", () => showTab(name));
  document.getElementById("by-plate").addEventListener("submit", (e) => {
    e.preventDefault();
    lookUp({ plate: e.target.plate.value, certificate: e.target.certificate.value });
  });
  document.getElementById("by-number").addEventListener("submit", (e) => {
    e.preventDefault();
    lookUp({ resolution: e.target.resolution.value });
  });
  document.getElementById("by-code").addEventListener("submit", (e) => {
    e.preventDefault();
    lookUp({ payment_code: e.target.payment_code.value });
  });
  // The link printed on every resolution: /v/{number}.
  const printed = /^\/v\/([^/]+)$/.exec(location.pathname);
  if (printed) {
    const number = decodeURIComponent(printed[1]);
    showTab("number");
    document.getElementById("resolution").value = number;
    lookUp({ resolution: number });
  }
});
