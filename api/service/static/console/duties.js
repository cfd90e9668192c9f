// Partners' deletion duties (contract v2 "partner loop"): what a member.erasure or
// member.revoked event told a partner to delete, due dates, overdue flags and confirmations.
// Shown once the API serves deletionDuties. Confirmation comes from the partner
// (confirmDeletion) or its adapter; the API has no admin operation to record one.

import { h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import { serves } from "./partner_loop.js";
import { call, date, fieldList, nextId, select, table } from "./util.js";

const LIST = `query($o: Boolean) { deletionDuties(overdue: $o) {
  eventId partnerId partner kind fields createdAt dueAt confirmedAt overdue } }`;

let filter = "ALL";

async function render(container) {
  const { deletionDuties } = await call(LIST, { o: filter === "OVERDUE" ? true : null });
  const chooser = select("filter", [["ALL", t("duties.all")], ["OVERDUE", t("duties.onlyOverdue")]],
    { id: nextId("duty-filter") });
  chooser.value = filter;
  chooser.addEventListener("change", () => {
    filter = chooser.value;
    render(container);
  });
  const rows = deletionDuties.slice().sort((a, b) => a.dueAt.localeCompare(b.dueAt)).map((d) => [
    d.partner, d.kind, fieldList(d.fields), date(d.createdAt),
    h("span", { class: d.overdue ? "bad" : "" }, date(d.dueAt)),
    d.confirmedAt ? t("duties.confirmed", { date: date(d.confirmedAt) })
      : h("span", { class: d.overdue ? "bad" : "" }, t(d.overdue ? "duties.overdue" : "duties.open")),
  ]);
  const overdue = deletionDuties.filter((d) => d.overdue).length;
  container.replaceChildren(
    h("p", { class: "muted" }, t("duties.intro")),
    h("div", { class: "field" }, h("label", { for: chooser.id }, t("requests.show")), chooser),
    overdue ? h("p", { class: "bad", role: "alert" }, t("duties.overdueCount", { n: overdue })) : null,
    rows.length ? table("nav.duties", ["duties.partner", "duties.event", "duties.fields", "duties.created",
      "duties.due", "duties.state"], rows) : h("p", { class: "muted" }, t("duties.none")));
}

export default {
  id: "duties", titleKey: "nav.duties", render,
  available: () => serves("deletionDuties @skip(if: true) { eventId }"),
};
