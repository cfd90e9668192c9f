// Member lookup by exact user id or email (memberLookup; the API writes every read to the
// audit trail): profile, status, consents, disclosures (with deletion duties once served)
// and data requests.

import { h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import * as loop from "./partner_loop.js";
import { call, date, field, fieldList, onSubmit, table } from "./util.js";

const LOOKUP = (extra) => `query($u: String, $e: String) { memberLookup(userId: $u, email: $e) {
  id userId email fullName dateOfBirth phone address status createdAt lastActiveAt
  consents { purpose state policyVersion at }
  disclosures { partner fields purpose legalBasis at ${extra} }
  dataRequests { id kind status dueAt resolvedAt } } }`;

function view(m) {
  const none = t("common.none");
  const duties = m.disclosures.some((d) => "deletionDueAt" in d);
  return h("div", { class: "member-view" },
    h("h3", {}, m.fullName || m.userId, " ", h("span", { class: "badge" }, t(`mstatus.${m.status}`))),
    h("dl", { class: "facts" },
      h("dt", {}, t("field.USER_ID")), h("dd", {}, m.userId),
      h("dt", {}, t("field.EMAIL")), h("dd", {}, m.email),
      h("dt", {}, t("field.FULL_NAME")), h("dd", {}, m.fullName),
      h("dt", {}, t("field.DATE_OF_BIRTH")), h("dd", {}, m.dateOfBirth || none),
      h("dt", {}, t("field.PHONE")), h("dd", {}, m.phone || none),
      h("dt", {}, t("field.ADDRESS")), h("dd", {}, m.address || none),
      h("dt", {}, t("member.created")), h("dd", {}, date(m.createdAt)),
      h("dt", {}, t("member.lastActive")), h("dd", {}, date(m.lastActiveAt)),
      h("dt", {}, t("member.id")), h("dd", {}, h("code", {}, m.id))),
    h("h4", {}, t("member.consents")),
    m.consents.length ? table("member.consents", ["member.purpose", "member.state", "member.policy", "member.at"],
      m.consents.map((c) => [c.purpose, t(`cstate.${c.state}`), c.policyVersion, date(c.at)]))
      : h("p", { class: "muted" }, none),
    h("h4", {}, t("member.disclosures")),
    m.disclosures.length ? table("member.disclosures",
      ["member.partner", "member.fields", "member.purpose", "member.basis", "member.at",
        ...(duties ? ["member.deletion"] : [])],
      m.disclosures.map((d) => [d.partner, fieldList(d.fields), d.purpose, t(`basis.${d.legalBasis}`), date(d.at),
        ...(duties ? [loop.deletionDuty(d)] : [])]))
      : h("p", { class: "muted" }, none),
    h("h4", {}, t("member.requests")),
    m.dataRequests.length ? table("member.requests", ["member.kind", "member.state", "requests.due"],
      m.dataRequests.map((r) => [t(`rkind.${r.kind}`), t(`rstatus.${r.status}`), date(r.dueAt)]))
      : h("p", { class: "muted" }, none));
}

async function render(container) {
  const result = h("div", { class: "lookup-result", "aria-live": "polite" });
  const form = h("form", { id: "lookup-form", novalidate: true },
    h("fieldset", {}, h("legend", {}, t("lookup.by")),
      ["userId", "email"].map((k) => {
        const id = `lookup-by-${k}`;
        return h("div", { class: "check" }, h("input", { type: "radio", name: "by", value: k, id, checked: k === "userId" }),
          h("label", { for: id }, t(k === "userId" ? "field.USER_ID" : "field.EMAIL")));
      })),
    field("lookup.value", { name: "userId", required: true, autocomplete: "off" }, "lookup.audited"),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit" }, t("lookup.submit")));
  onSubmit(form, async (data) => {
    const value = String(data.get("userId")).trim();
    const byEmail = data.get("by") === "email";
    const extra = await loop.disclosureFields();
    const { memberLookup: m } = await call(LOOKUP(extra), byEmail ? { e: value } : { u: value });
    result.replaceChildren(m ? view(m) : h("p", { role: "status" }, t("lookup.none")));
  });
  container.replaceChildren(h("p", { class: "muted" }, t("lookup.intro")), form, result);
}

export default { id: "members", titleKey: "nav.members", render };
