// The partner-loop screens (contract v2 "partner loop": partner audits, deletion duties, the
// events:ack scope). Another capability serves them; until the API does, every export here
// returns nothing, so the console works the same against an API with or without them.
// Whether they are served is asked once with a skipped selection (no introspection needed:
// production turns it off).

import { h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import { gql } from "../common/api.js";
import { call, date, field, nextId, onSubmit, select } from "./util.js";

const OUTCOMES = ["PASSED", "FINDINGS", "FAILED"];
const AUDIT = "id at outcome notes nextDueAt auditor";
const RECORD = `mutation($p: ID!, $at: DateTime!, $o: PartnerAuditOutcome!, $n: String, $next: DateTime!) {
  recordPartnerAudit(partnerId: $p, at: $at, outcome: $o, notes: $n, nextDueAt: $next) { ${AUDIT} } }`;

const probes = new Map();

/** True when the API knows `selection` (validation is static, so a selection under
 * @skip(if: true) is checked but never run: no resolver, no audit entry). Asked once. */
export function serves(selection) {
  if (!probes.has(selection)) {
    probes.set(selection, gql(`{ ${selection} }`)
      .then((body) => !(body.errors && body.errors.length)).catch(() => false));
  }
  return probes.get(selection);
}

const auditsServed = () => serves("partners @skip(if: true) { suspended nextAuditDueAt audits { id } }");
const deletionDutiesServed = () => serves(
  'member(id: "0") @skip(if: true) { disclosures { deletionDueAt deletionConfirmedAt } }');

/** Extra selection for each partner in the registry query. */
export async function partnerFields() {
  return (await auditsServed()) ? `audits { ${AUDIT} } nextAuditDueAt suspended` : "";
}

/** Extra scopes credentials may carry. */
export async function extraScopes() {
  return (await auditsServed()) ? ["events:ack"] : [];
}

/** Extra selection for each disclosure in the member view. */
export async function disclosureFields() {
  return (await deletionDutiesServed()) ? "deletionDueAt deletionConfirmedAt" : "";
}

/** A disclosure's deletion duty, as a table cell ("" when the API has no such duty). */
export function deletionDuty(disclosure) {
  if (!("deletionDueAt" in disclosure) || !disclosure.deletionDueAt) return "";
  if (disclosure.deletionConfirmedAt) return t("duty.confirmed", { date: date(disclosure.deletionConfirmedAt) });
  const overdue = new Date(disclosure.deletionDueAt) < new Date();
  return h("span", { class: overdue ? "bad" : "" },
    t(overdue ? "duty.overdue" : "duty.due", { date: date(disclosure.deletionDueAt) }));
}

/** Audits of one partner and the form recording one; nothing when not served. */
export function partnerExtras(partner, reload) {
  if (!("audits" in partner)) return null;
  const rows = partner.audits.map((a) => h("li", {},
    h("strong", {}, t(`outcome.${a.outcome}`)), ` ${date(a.at)} · ${a.auditor}`,
    a.notes ? h("div", { class: "muted" }, a.notes) : null));
  const due = partner.nextAuditDueAt;
  const overdue = due && new Date(due) < new Date();
  const today = new Date().toISOString().slice(0, 10);
  const form = h("form", { class: "audit-form", novalidate: true },
    field("audit.at", { type: "date", name: "at", required: true, value: today, max: today }),
    field("audit.outcome", select("outcome", OUTCOMES.map((o) => [o, t(`outcome.${o}`)]))),
    field("audit.notes", h("textarea", { name: "notes", rows: 3, id: nextId("notes") })),
    field("audit.nextDueAt", { type: "date", name: "nextDueAt", required: true, min: today }),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit" }, t("audit.record")));
  onSubmit(form, async (data) => {
    const day = (v) => (v ? new Date(`${v}T12:00:00Z`).toISOString() : null);
    await call(RECORD, { p: partner.id, at: day(String(data.get("at"))), o: String(data.get("outcome")),
      n: String(data.get("notes") || "") || null, next: day(String(data.get("nextDueAt"))) });
    await reload(t("audit.recorded", { name: partner.name }));
  });
  return h("div", { class: "partner-audits" },
    h("h4", {}, t("audit.title")),
    partner.suspended ? h("p", { class: "bad" }, t("audit.suspended")) : null,
    due ? h("p", { class: overdue ? "bad" : "" }, t(overdue ? "audit.overdue" : "audit.next", { date: date(due) })) : null,
    rows.length ? h("ul", {}, rows) : h("p", { class: "muted" }, t("audit.none")),
    h("details", {}, h("summary", {}, t("audit.recordTitle")), form));
}
