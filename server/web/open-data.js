// The open-data page: totals per camera site and kind for a range of days, and the
// hourly rows to download as CSV or JSON. Only counts: no plate, no person.
"use strict";

// Shows the range `form` names; an empty day is the server's default (the last seven
// days on the jurisdiction's calendar), which the answer fills the form with.
async function show(form) {
  const range = new URLSearchParams();
  if (form.from.value) range.set("from", form.from.value);
  if (form.to.value) range.set("to", form.to.value);
  const message = document.getElementById("open-data-message");
  try {
    const data = await api("GET", `/api/v1/open-data/violations?${range}`);
    form.from.value = data.from;
    form.to.value = data.to;
    const query = `from=${data.from}&to=${data.to}`;
    document.getElementById("csv").href = `/api/v1/open-data/violations?${query}&format=csv`;
    document.getElementById("json").href = `/api/v1/open-data/violations?${query}`;
    const totals = new Map();
    for (const row of data.rows) {
      const key = `${row.site_id || ""}|${row.kind}`;
      const total = totals.get(key) || { site: row.site || t("officer-filed"), kind: row.kind, recorded: 0, fined: 0 };
      // A withheld count (null: 1 to 4) adds nothing; totals are what is shown.
      total.recorded += row.recorded || 0;
      total.fined += row.fined || 0;
      totals.set(key, total);
    }
    message.className = "";
    message.textContent = t("open-data-rows", { count: data.rows.length });
    document.getElementById("totals").replaceChildren(el("table", { class: "audit", id: "open-data-totals" },
      el("thead", {}, el("tr", {}, ["site", "violation", "recorded", "fined"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, [...totals.values()].map((total) => el("tr", {},
        el("td", { text: total.site }), el("td", { text: t(`kind-${total.kind}`) }),
        el("td", { text: String(total.recorded) }), el("td", { text: String(total.fined) }))))));
  } catch (e) {
    message.className = "error";
    message.textContent = e.message;
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  await loadMessages();
  const form = document.getElementById("range");
  // A link may name the range (`?from=&to=`); else the server's default.
  const asked = new URLSearchParams(location.search);
  form.to.value = asked.get("to") || "";
  form.from.value = asked.get("from") || "";
  form.addEventListener("submit", (e) => { e.preventDefault(); show(form); });
  await show(form);
});
