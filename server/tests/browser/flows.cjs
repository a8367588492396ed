// The pages in headless Chromium, as their users work them. Started by
// server/tests/browser.rs with a seeded server; every step waits for what a person
// would see, and a screenshot of each page is saved under SCREENSHOTS.
"use strict";

const path = require("node:path");
const { chromium } = require(path.join(process.env.KOZOMOL_PLAYWRIGHT, "playwright-core"));

const base = process.env.BASE_URL;
const world = JSON.parse(process.env.WORLD);
const shots = process.env.SCREENSHOTS;

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
  console.log(`ok: ${what}`);
}

// A datetime-local value `hours` before now, on Bishkek's clock (UTC+6), which the
// pages read and write times on whatever the browser's zone.
function hoursAgo(hours) {
  return new Date(Date.now() + (6 - hours) * 3600000).toISOString().slice(0, 16);
}

// axe-core, run in the page through the driver (the pages' policy refuses injected
// script tags, and rightly).
const axeSource = require("node:fs").readFileSync(path.join(process.env.KOZOMOL_PLAYWRIGHT, "axe-core", "axe.min.js"), "utf8");

// Every page as shown must pass the WCAG 2 A and AA rules axe checks (labels, names,
// contrast, language, landmarks); a serious or critical finding fails the run.
async function accessible(page, name) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  });
  check(found.length === 0, `${name} passes the accessibility rules${found.length ? `: ${found.join("; ")}` : ""}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  await accessible(page, name);
}

// Waits for the decision on case `id` to be saved: the case leaves the queue.
async function decided(page, id) {
  await shot(page, `decision-${id}`);
  await page.waitForFunction((n) => !document.getElementById(`q-${n}`) || document.querySelector("#desk-message.error"), id);
  const message = await page.textContent("#desk-message");
  check(!(await page.$(`#q-${id}`)), `case ${id} is decided: ${message}`);
}

// The login form takes a submission once its script handles it (a page loaded on a
// busy machine may still be fetching its messages).
async function loginReady(page) {
  await page.waitForSelector("#login button[type=submit]:enabled");
}

async function login(page, who) {
  await page.goto(`${base}/console/queue?lang=ru`);
  check(page.url().includes("/console/login"), `${who.login}: the console sends a stranger to the login page`);
  await loginReady(page);
  await page.fill("#login-name", who.login);
  await page.fill("#password", who.password);
  await shot(page, `console-login-${who.login}`);
  await page.press("#password", "Enter");
  await page.waitForURL("**/console/queue");
  await page.waitForSelector("#queue li");
}

async function officer(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  page.on("requestfailed", (r) => console.log(`request failed: ${r.url()}`));
  page.on("response", (r) => { if (r.status() >= 400) console.log(`HTTP ${r.status()} ${r.url()}`); });
  await login(page, world.reviewer);
  const [corrected, approved, taken] = world.review_cases;
  // The keyboard alone: J/K move, C corrects, A approves.
  await page.waitForSelector(`#q-${corrected}[aria-selected="true"]`);
  await page.waitForSelector("#machine-read");
  await shot(page, "console-queue");
  await page.keyboard.press("j");
  await page.waitForSelector(`#q-${approved}[aria-selected="true"]`);
  await page.keyboard.press("k");
  await page.waitForSelector(`#q-${corrected}[aria-selected="true"]`);
  await page.waitForSelector(`#case h2:has-text("#${corrected}")`);
  await page.keyboard.press("+");
  await page.keyboard.press("c");
  await page.waitForSelector("#corrected-plate:focus");
  await page.keyboard.type(world.corrected_plate);
  await shot(page, "console-correct-plate");
  await page.keyboard.press("Enter");
  await decided(page, corrected);
  await page.waitForSelector(`#q-${approved}[aria-selected="true"]`);
  await page.waitForSelector("#machine-read");
  await page.keyboard.press("a");
  await decided(page, approved);
  // Someone else decides the case on screen meanwhile: the desk says so in the page's
  // language and lets it go, instead of the API's English refusal.
  await page.waitForSelector(`#q-${taken}[aria-selected="true"]`);
  await page.waitForSelector(`#case h2:has-text("#${taken}")`);
  await page.evaluate(async (id) => {
    const r = await fetch(`/api/v1/cases/${id}/review`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": Desk.csrf },
      body: JSON.stringify({ decision: "approve" }),
    });
    if (!r.ok) throw new Error(`the decision behind the desk: HTTP ${r.status}`);
  }, taken);
  await page.keyboard.press("a");
  await page.waitForFunction((n) => !document.getElementById(`q-${n}`), taken);
  const gone = await page.textContent("#desk-message");
  const said = await page.evaluate((n) => t("case-gone", { id: n }), taken);
  check(gone === said && gone.includes(`#${taken}`), `a case decided by someone else meanwhile leaves the desk, said in the page's language: ${gone}`);
  check(await page.isVisible("#queue-empty"), "the reviewer's queue is worked through");
  await page.click("#logout");
  await page.waitForURL("**/console/login");
  await page.close();

  // The supervisor settles the disagreement the correction made.
  const desk = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await login(desk, world.supervisor);
  await desk.waitForSelector(`#q-${corrected}[aria-selected="true"]`);
  await desk.waitForSelector("#machine-read");
  const reviews = await desk.textContent("#case");
  check(reviews.includes(world.corrected_plate), "the supervisor sees the reviewer's plate");
  await shot(desk, "console-supervisor");
  await desk.keyboard.press("a");
  await decided(desk, corrected);
  // Camera health and dead letters, from the console's menu.
  await desk.click(".console-nav a[href='/console/cameras']");
  await desk.waitForSelector("#camera-cam-1");
  check((await desk.textContent("#camera-cam-1")).includes(world.camera_site), "the supervisor sees the camera's health");
  await shot(desk, "console-cameras");
  // A bulk void over a range with no cases voids none (and asks first).
  desk.once("dialog", (d) => d.accept());
  await desk.fill("#void-captured_from", "2020-01-01T00:00");
  await desk.fill("#void-captured_until", "2020-01-02T00:00");
  await desk.fill("#void-reason", "calibration found wrong");
  await desk.click("#bulk-void button[type=submit]");
  await desk.waitForSelector("#bulk-void p.notice");
  check((await desk.textContent("#bulk-void p.notice")).includes("0"), "a supervisor voids a device's cases over a range");
  await desk.goto(`${base}/console/dashboard?from=${world.captured_day}&to=${world.captured_day}`);
  await desk.waitForSelector("#chart-days rect");
  check((await desk.textContent("#backlog")).length > 0, "the dashboard draws its charts and figures");
  await shot(desk, "console-dashboard");
  await desk.click(".console-nav a[href='/console/dead-letters']");
  await desk.waitForSelector("#content p, #dead-letters");
  await shot(desk, "console-dead-letters");
  check(true, "the supervisor opens the dead letters");
  await desk.close();
}

async function admin(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // The admin logs in through the city's identity provider (its stand-in).
  await page.goto(`${base}/console/login?lang=en`);
  await page.click("#oidc-login");
  await page.waitForSelector("#idp-login");
  await page.fill("#idp-username", world.admin.login);
  await page.fill("#idp-password", world.city_id_password);
  await shot(page, "city-id-login");
  await page.click("#idp-login button[type=submit]");
  await page.waitForURL("**/console/dashboard");
  await page.waitForFunction(() => document.getElementById("who").textContent !== "");
  check((await page.textContent("#who")).includes(world.admin.login), "the admin logs in through the city's identity provider");
  await page.goto(`${base}/console/accounts?lang=en`);
  await page.waitForSelector("#account-reviewer");
  await page.fill("#new-login", "officer-asanov");
  await page.selectOption("#new-role", "reviewer");
  await page.fill("#new-password", "a-long-enough-password");
  await page.fill("#new-full_name", "Асанов Бакыт");
  await page.fill("#new-badge", "BSK-0042");
  await page.click("#new-account button[type=submit]");
  await page.waitForSelector("#account-officer-asanov");
  check((await page.textContent("#account-officer-asanov")).includes("BSK-0042"), "an admin makes an officer's account");
  await page.click("#account-officer-asanov button:has-text('Disable')");
  await page.waitForFunction(() => document.getElementById("account-officer-asanov").textContent.includes("Disabled"));
  check((await page.textContent("#account-officer-asanov")).includes("Enable"), "an admin disables an account");
  await shot(page, "console-accounts");
  // ... and enables it again: the officer files his own cases below.
  await page.click("#account-officer-asanov button:has-text('Enable')");
  await page.waitForFunction(() => document.getElementById("account-officer-asanov").textContent.includes("In use"));
  await page.click(".console-nav a[href='/console/finance']");
  await page.waitForSelector("#content h2");
  check((await page.textContent("#content")).includes("Refunds owed"), "the finance page lists credits and refunds");
  await shot(page, "console-finance");
  await page.close();
}

// Opens a console page, logging in on the way.
async function logInTo(page, name, who) {
  await page.goto(`${base}/console/${name}`);
  await loginReady(page);
  await page.fill("#login-name", who.login);
  await page.fill("#password", who.password);
  await page.press("#password", "Enter");
  await page.waitForURL(`**/console/${name}`);
}

// The officer the admin made files what he saw himself and registers an accident.
async function deskOfficer(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  await logInTo(page, "reports", { login: "officer-asanov", password: "a-long-enough-password" });
  await page.waitForSelector("#officer-violation");
  await page.fill("#violation-plate", "01KG777OFC");
  await page.selectOption("#violation-kind", "phone");
  await page.fill("#violation-occurred_at", hoursAgo(1));
  await page.fill("#violation-address", "Бишкек, пр. Манаса / ул. Киевская");
  await page.setInputFiles("#violation-photos", world.photo);
  await page.click("#officer-violation button[type=submit]");
  await page.waitForSelector("#officer-violation p.notice, #officer-violation p.error");
  const filed = await page.textContent("#officer-violation p[role=status]");
  check(/[#№]\d+/.test(filed) && !(await page.$("#officer-violation p.error")), `an officer files a violation he saw: ${filed}`);
  await shot(page, "console-officer-violation");

  await page.fill("#accident-occurred_at", hoursAgo(2));
  await page.fill("#accident-address", "Бишкек, ул. Токтогула 100");
  await page.fill("#accident-description", "Столкновение двух автомобилей на перекрёстке");
  await page.fill("#accident-vehicle_plate", "01KG123DTP");
  await page.fill("#accident-damage", "передний бампер");
  await page.fill("#accident-driver", "Исаков Нурлан");
  await page.setInputFiles("#accident-photos", world.photo);
  await page.click("#accident button[type=submit]");
  await page.waitForSelector("#accidents tbody tr");
  const row = page.locator("#accidents tbody tr").first();
  await row.locator("button").click();
  await page.waitForSelector("#accidents tbody tr select");
  check((await page.$("#accidents select[id^=outcome-]")) !== null, "an accident is registered and its investigation started");
  check((await page.$("#undeliverable")) !== null, "the desk shows the resolutions no delivery reached");
  await shot(page, "console-reports");
  await page.close();
}

// Finance imports a statement, returns the credit nobody can match, reads the totals.
async function finance(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  await logInTo(page, "finance", world.finance);
  await page.waitForSelector("#statement-import");
  const today = new Date().toISOString().slice(0, 10);
  const csv = path.join(shots, "statement.csv");
  require("node:fs").writeFileSync(csv, `booking_date,amount,currency,reference,remittance,payer\n${today},1500.00,KGS,BANK-REF-1,fine without a code,Tokonov A.\n`);
  await page.setInputFiles("#statement-file", csv);
  await page.selectOption("#statement-format", "csv");
  await page.fill("#statement-account", "1280016000000001");
  await page.click("#statement-import button[type=submit]");
  await page.waitForSelector("#queued-credits tbody tr");
  check((await page.textContent("#desk-message")).includes("1 credits"), "finance imports a bank statement; the credit waits for a decision");
  await shot(page, "console-finance-queued");
  const line = page.locator("#queued-credits tbody tr").first();
  await line.locator("input[id^=note-]").fill("no fine named; returned to the payer");
  await line.locator("button.secondary").click();
  await page.waitForFunction(() => !document.querySelector("#queued-credits"));
  await page.waitForSelector("#totals-table tbody tr");
  check((await page.textContent("#totals")).length > 0, "finance resolves the credit and reads the day's totals");
  await shot(page, "console-finance-totals");
  await page.close();
}

async function citizen(browser) {
  // A visitor abroad: the portal still tells Bishkek's times.
  const context = await browser.newContext({ locale: "ru-RU", timezoneId: "America/New_York", acceptDownloads: true, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  page.on("response", (r) => { if (r.status() >= 500) console.log(`HTTP ${r.status()} ${r.url()}`); });
  // Russian by the browser's Accept-Language.
  await page.goto(`${base}/`);
  check((await page.getAttribute("html", "lang")) === "ru", "the portal speaks the browser's language");
  await page.waitForSelector("#tab-plate:has-text('По номеру')");
  await page.fill("#plate", world.plate);
  await page.fill("#certificate", world.certificate);
  await page.click("#by-plate button[type=submit]");
  const card = page.locator(`article[data-number="${world.number}"]`);
  await card.waitFor();
  check((await card.locator(".status").textContent()) === "Не оплачен", "the fine is found by plate and certificate, unpaid, in Russian");
  // Every photo arrives.
  await page.waitForFunction((n) => [...document.querySelectorAll(`article[data-number="${n}"] .photos img`)].every((i) => i.complete && i.naturalWidth > 0), world.number);
  check(await card.locator(".photos img").count() === 2, "the citizen sees both photos");
  check(await card.locator("img.qr").isVisible(), "the payment QR is shown");
  // Delivered long ago: the card takes no appeal and says where a late one goes.
  check(await card.locator(".appeal-form").count() === 0 && (await card.locator(".appeal-late").textContent()).includes("восстановлении"),
    "a fine past its time to appeal offers no form and says where a late appeal goes");
  const shownTime = await card.locator("dl.facts dd").nth(2).textContent();
  check(shownTime.includes(world.captured_time), `the moment is shown on Bishkek's clock in a browser set to New York (${shownTime}, ${world.captured_time})`);
  await shot(page, "portal-fine-ru");
  // Found by plate and certificate: the owner may leave an address for notices; a
  // code goes to it, and only the code typed back stores it.
  await card.locator(".notices-form select").selectOption("sms");
  await card.locator(".notices-form input").fill(world.phone);
  await card.locator(".notices-form button").click();
  await card.locator(".notices-code input").waitFor();
  const sent = await card.locator(".notices-status").textContent();
  check(await card.locator(".notices-status.notice").count() === 1, `a code is sent to the phone (${sent})`);
  await shot(page, "portal-notices-code");
  const inbox = await fetch(world.sms_inbox + encodeURIComponent(world.phone), { headers: { Authorization: `Bearer ${world.sms_token}` } });
  const texts = await inbox.json();
  const code = (texts[texts.length - 1] || "").match(/\d{6}/);
  check(code !== null, `the phone got a six-digit code (${texts})`);
  await card.locator(".notices-code input").fill(code ? code[0] : "");
  await card.locator(".notices-code button").click();
  await card.locator(".notices-code").waitFor({ state: "hidden" });
  const subscribed = await card.locator(".notices-status").textContent();
  check(await card.locator(".notices-status.notice").count() === 1 && subscribed === "Готово: уведомления будут приходить сюда.", `the owner confirms the code and gets notices by SMS (${subscribed})`);
  const [download] = await Promise.all([page.waitForEvent("download"), card.locator("a.pdf").click()]);
  const pdf = require("node:fs").readFileSync(await download.path());
  check(pdf.subarray(0, 5).toString() === "%PDF-", "the resolution downloads as a PDF");

  // Pay by card: the portal hands over to the (stand-in) acquirer's page and gets the
  // payer back; a declined card is said so, and nothing is taken.
  await card.locator("a.card-pay").click();
  await page.waitForSelector("#card_number");
  check((await page.textContent("#order-number")) === world.number, "the acquirer's page names the fine");
  await page.fill("#card_number", "4000 0000 0000 0002");
  await page.fill("#expiry", "12/39");
  await page.fill("#cvc", "123");
  await page.click("#pay");
  await page.waitForSelector("#card-problem");
  check((await page.textContent("#card-problem")).includes("declined"), "a declined card takes nothing");
  await page.fill("#card_number", "4111 1111 1111 1111");
  await page.fill("#expiry", "12/39");
  await page.fill("#cvc", "123");
  await shot(page, "acquirer-card-page");
  await page.click("#pay");
  await page.waitForURL(`**/v/${world.number}`);
  await page.waitForFunction((n) => { const s = document.querySelector(`article[data-number="${n}"] .status`); return s && s.textContent === "Оплачен"; }, world.number);
  check(await card.locator("a.card-pay").count() === 0, "a paid fine offers no more payment");
  await shot(page, "portal-paid-ru");
  check((await card.locator(".appeal-late").textContent()).includes("восстановлении"), "found by its number, the fine too says its time to appeal is over");
  check(true, "the citizen pays by card and sees the fine paid");

  // In Kyrgyz: the second fine by its number, then an appeal.
  await page.goto(`${base}/v/${world.appeal_number}?lang=ky`);
  check((await page.getAttribute("html", "lang")) === "ky", "the visitor's pick of Kyrgyz wins");
  const second = page.locator(`article[data-number="${world.appeal_number}"]`);
  await second.waitFor();
  check((await second.locator(".status").textContent()) === "Төлөнгөн эмес", "the printed link finds the fine, in Kyrgyz");
  check(await second.locator(".notices-form").count() === 0 && await second.locator(".photos img").count() === 0 && await second.locator("a.pdf").count() === 0,
    "a number alone shows and pays the fine, not its photos, PDF or notices");
  check((await second.locator(".plate").textContent()).includes("•"), "a number alone shows the plate only in part");
  // The owner opens it with the plate and the registration certificate.
  await second.locator(".owner-form input[name=plate]").fill(world.appeal_plate);
  await second.locator(".owner-form input[name=certificate]").fill(world.appeal_certificate);
  await second.locator(".owner-form button").click();
  await second.locator(".appeal-form").waitFor();
  check(await second.locator(".photos img").count() === 2, "the certificate opens the photos and the appeal");
  await second.locator("input[name=appellant]").fill("Асанов Бакыт");
  await second.locator("input[name=contact]").fill("+996555000111");
  await second.locator("textarea[name=grounds]").fill("Унааны мен башкарган эмесмин.");
  check((await second.locator(".appeal-form p.muted").textContent()).includes(world.appeal_until.slice(0, 4)), "the form says the last day to appeal");
  // A file the API would refuse is refused before the upload, in the visitor's language.
  await second.locator("input[type=file]").setInputFiles({ name: "note.txt", mimeType: "text/plain", buffer: Buffer.from("not a photo") });
  await second.locator(".appeal-form button[type=submit]").click();
  await second.locator(".appeal-form p.error").waitFor();
  const refused = await second.locator(".appeal-form p.error").textContent();
  check(refused === "note.txt файлы сүрөт (JPEG, PNG) да, PDF да эмес.", `a text file is refused in Kyrgyz before it is sent (${refused})`);
  await second.locator("input[type=file]").setInputFiles(world.photo);
  await shot(page, "portal-appeal-ky");
  await second.locator(".appeal-form button[type=submit]").click();
  await second.locator(".appeal-status").waitFor();
  check((await second.locator(".status").textContent()) === "Даттанылууда", "the appeal is filed and the fine shows it");

  // A supervisor decides it; the citizen follows it to the end.
  const appeals = await (await fetch(`${base}/api/v1/cases/${world.appeal_case}/appeals`, { headers: { Authorization: `Bearer ${world.supervisor.token}` } })).json();
  const open = (appeals.items || appeals).find((a) => a.state === "filed");
  const decided = await fetch(`${base}/api/v1/appeals/${open.id}/decision`, {
    method: "POST", headers: { Authorization: `Bearer ${world.supervisor.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ decision: "annulled", note: "Айдоочу башка адам." }),
  });
  check(decided.ok, `the supervisor decides the appeal (${decided.status})`);
  await second.locator("button.secondary").click();
  await page.waitForFunction((n) => document.querySelector(`article[data-number="${n}"] .status`).textContent === "Жокко чыгарылды", world.appeal_number);
  check((await second.locator(".appeal-status").textContent()).includes("Айдоочу башка адам."), "the citizen sees the decision");
  await shot(page, "portal-appeal-decided-ky");

  // Open data: counts per site and kind, in English, no plate anywhere.
  await page.goto(`${base}/open-data?lang=en&from=${world.captured_day}&to=${world.captured_day}`);
  await page.waitForFunction(() => document.getElementById("open-data-message").textContent !== "");
  const said = await page.textContent("#open-data-message");
  check(await page.$("#open-data-totals tbody tr") !== null, `open data answers (${said})`);
  const totals = await page.textContent("#open-data-totals");
  check(totals.includes(world.camera_site) && !totals.includes("01KG"), "open data shows counts per site, no plates");
  await shot(page, "open-data-en");
  await context.close();
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.KOZOMOL_CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    await officer(browser);
    await admin(browser);
    await deskOfficer(browser);
    await finance(browser);
    await citizen(browser);
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
