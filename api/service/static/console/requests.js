// Data requests (access, portability, correction, erasure, restriction), soonest due first,
// with overdue flags; an open request is resolved (completed or rejected, with a note).

import { h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import { call, date, field, fieldList, nextId, onSubmit, select } from "./util.js";

const LIST = `query($s: DataRequestStatus) { dataRequests(status: $s) {
  id kind status fields receivedAt dueAt resolvedAt overdueFlaggedAt } }`;
const RESOLVE = `mutation($id: ID!, $s: DataRequestStatus!, $n: String) {
  resolveDataRequest(id: $id, status: $s, note: $n) { id status resolvedAt } }`;

let filter = "OPEN";

function overdue(r, now) {
  return r.status === "OPEN" && new Date(r.dueAt) < now;
}

function resolveForm(r, reload) {
  const form = h("form", { class: "resolve-form", novalidate: true },
    field("requests.outcome", select("status", [["COMPLETED", t("rstatus.COMPLETED")], ["REJECTED", t("rstatus.REJECTED")]])),
    field("requests.note", h("textarea", { name: "note", rows: 2, id: nextId("note"), maxlength: 1000 })),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit" }, t("requests.resolve")));
  onSubmit(form, async (data) => {
    await call(RESOLVE, { id: r.id, s: String(data.get("status")), n: String(data.get("note") || "").trim() || null });
    await reload(t("requests.resolved"));
  });
  return h("details", {}, h("summary", {}, t("requests.resolveTitle")), form);
}

async function render(container, message = "") {
  const { dataRequests } = await call(LIST, { s: filter === "ALL" ? null : filter });
  const now = new Date();
  const rows = dataRequests.slice().sort((a, b) => a.dueAt.localeCompare(b.dueAt));
  const reload = (text) => render(container, text);
  const chooser = select("filter", [["OPEN", t("rstatus.OPEN")], ["COMPLETED", t("rstatus.COMPLETED")],
    ["REJECTED", t("rstatus.REJECTED")], ["ALL", t("requests.all")]], { id: nextId("filter") });
  chooser.value = filter;
  chooser.addEventListener("change", () => {
    filter = chooser.value;
    render(container);
  });
  const overdueCount = rows.filter((r) => overdue(r, now)).length;
  const items = rows.map((r) => {
    const late = overdue(r, now);
    const flagged = r.overdueFlaggedAt && r.status === "OPEN";
    return h("li", { class: `request${late ? " overdue" : ""}`, "data-request": r.id },
      h("h3", {}, t(`rkind.${r.kind}`), " ", h("span", { class: "badge" }, t(`rstatus.${r.status}`)),
        late ? h("span", { class: "badge bad-badge" }, t("requests.overdue")) : null),
      h("dl", { class: "facts" },
        h("dt", {}, t("requests.due")), h("dd", { class: late ? "bad" : "" }, date(r.dueAt)),
        h("dt", {}, t("requests.received")), h("dd", {}, date(r.receivedAt)),
        r.fields.length ? [h("dt", {}, t("requests.fields")), h("dd", {}, fieldList(r.fields))] : null,
        flagged ? [h("dt", {}, t("requests.flagged")), h("dd", {}, date(r.overdueFlaggedAt))] : null,
        r.resolvedAt ? [h("dt", {}, t("requests.resolvedAt")), h("dd", {}, date(r.resolvedAt))] : null,
        h("dt", {}, t("requests.id")), h("dd", {}, h("code", {}, r.id))),
      r.status === "OPEN" ? resolveForm(r, reload) : null);
  });
  container.replaceChildren(
    h("p", { class: "status ok", role: "status", hidden: !message }, message),
    h("div", { class: "field" }, h("label", { for: chooser.id }, t("requests.show")), chooser),
    overdueCount ? h("p", { class: "bad", role: "alert" }, t("requests.overdueCount", { n: overdueCount })) : null,
    items.length ? h("ol", { class: "request-list" }, items) : h("p", { class: "muted" }, t("requests.none")));
}

export default { id: "requests", titleKey: "nav.requests", render: (c) => render(c) };
