// The open-data page: totals per camera site and kind for a range of days, and the
// hourly rows to download as CSV or JSON. Only counts: no plate, no person.
"use strict";

async function show(from, to) {
  const query = `from=${from}&to=${to}`;
  document.getElementById("csv").href = `/api/v1/open-data/violations?${query}&format=csv`;
  document.getElementById("json").href = `/api/v1/open-data/violations?${query}`;
  const message = document.getElementById("open-data-message");
  try {
    const data = await api("GET", `/api/v1/open-data/violations?${query}`);
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
  // A link may name the range (`?from=&to=`); else the last seven days.
  const asked = new URLSearchParams(location.search);
  const today = new Date();
  form.to.value = asked.get("to") || isoDay(today);
  form.from.value = asked.get("from") || isoDay(new Date(today.getTime() - 6 * 86400000));
  form.addEventListener("submit", (e) => { e.preventDefault(); show(form.from.value, form.to.value); });
  await show(form.from.value, form.to.value);
});
