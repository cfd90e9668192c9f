// The partner registry: every partner with its status, fields and pending changes on a
// timeline; announcing one (adapter from those installed, secrets masked, 30-day notice);
// widening, narrowing and retiring; issuing (secret shown once) and revoking credentials.

import { h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import * as loop from "./partner_loop.js";
import {
  call, date, effectiveFrom, field, fieldList, fieldPicker, limitPicker, nextId,
  noticeDateField, onSubmit, picked, select, status,
} from "./util.js";

const KINDS = ["IT_VENDOR", "LOGISTICS", "PAYMENT", "RESEARCH", "OTHER"];
const BASE_SCOPES = ["members:read", "purchases:write"];
// Config forms of the built-in adapters; `secret` settings are typed into masked inputs and
// never read back. Other installed adapters get free name/value rows.
const CONFIG = {
  jsonl: [{ key: "directory", labelKey: "config.directory" }],
  webhook: [{ key: "url", labelKey: "config.url", type: "url" },
    { key: "secret", labelKey: "config.secret", secret: true }],
};
const SECRETISH = /secret|token|password|passwd|key|credential/i;

const CHANGE = "id kind announcedAt effectiveAt fields optionalFields";
const query = (extra) => `{
  partners { id name kind purpose adapter status fields optionalFields upcoming { ${CHANGE} } ${extra} }
  partnerAdapters { name accepts }
  purposes { name legalBasis }
}`;

const ANNOUNCE = `mutation($input: PartnerInput!) { announcePartner(input: $input) { ${CHANGE} partner { id name } } }`;
const CHANGE_FIELDS = `mutation($id: ID!, $f: [PersonalField!]!, $o: [PersonalField!]!, $at: DateTime) {
  changePartnerFields(partnerId: $id, fields: $f, optionalFields: $o, effectiveAt: $at) { ${CHANGE} } }`;
const RETIRE = `mutation($id: ID!) { retirePartner(partnerId: $id) { ${CHANGE} } }`;
const ISSUE = `mutation($id: ID!, $s: [String!]!) { issuePartnerCredentials(partnerId: $id, scopes: $s) { clientId clientSecret scopes } }`;
const REVOKE = "mutation($c: String!) { revokePartnerCredentials(clientId: $c) }";

function timeline(changes) {
  if (!changes.length) return h("p", { class: "muted" }, t("partners.noPending"));
  return h("ol", { class: "timeline" }, changes
    .slice().sort((a, b) => a.effectiveAt.localeCompare(b.effectiveAt))
    .map((c) => h("li", {},
      h("strong", {}, t(`change.${c.kind}`)), " ",
      h("span", {}, t("partners.effective", { date: date(c.effectiveAt) })),
      h("span", { class: "muted" }, ` (${t("partners.announced", { date: date(c.announcedAt) })})`),
      c.kind === "RETIRED" ? null : h("div", { class: "muted" },
        `${t("partners.fields")}: ${fieldList(c.fields)}; ${t("partners.optional")}: ${fieldList(c.optionalFields)}`))));
}

function changeForm(partner, accepts, reload) {
  const form = h("form", { class: "change-form", novalidate: true },
    fieldPicker("fields", "partners.fields", { checked: partner.fields, allowed: accepts }),
    fieldPicker("optionalFields", "partners.optional", { checked: partner.optionalFields, allowed: accepts }),
    noticeDateField("effectiveAt", "partners.widenAt"),
    h("p", { class: "muted" }, t("partners.narrowNow")),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit" }, t("partners.saveFields")));
  onSubmit(form, async (data) => {
    await call(CHANGE_FIELDS, { id: partner.id, f: picked(data, "fields"), o: picked(data, "optionalFields"),
      at: effectiveFrom(String(data.get("effectiveAt") || "")) });
    await reload(t("partners.changed", { name: partner.name }));
  });
  return h("details", {}, h("summary", {}, t("partners.changeFields")), form);
}

function credentialsForm(partner, scopes) {
  const shown = h("div", { class: "secret-once", role: "status", "aria-live": "polite" });
  const issue = h("form", { class: "issue-form", novalidate: true },
    h("fieldset", {}, h("legend", {}, t("creds.scopes")), scopes.map((s) => {
      const id = nextId("scope");
      return h("div", { class: "check" }, h("input", { type: "checkbox", id, name: "scopes", value: s,
        checked: s === "members:read" }), h("label", { for: id }, s));
    })),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit" }, t("creds.issue")));
  onSubmit(issue, async (data) => {
    const { issuePartnerCredentials: c } = await call(ISSUE, { id: partner.id, s: picked(data, "scopes") });
    // The secret is shown here once: it lives in this element only and is never stored.
    shown.replaceChildren(h("div", { class: "notice" },
      h("p", {}, h("strong", {}, t("creds.once"))),
      h("dl", {},
        h("dt", {}, t("creds.clientId")), h("dd", {}, h("code", { class: "client-id" }, c.clientId)),
        h("dt", {}, t("creds.clientSecret")), h("dd", {}, h("code", { class: "client-secret" }, c.clientSecret)),
        h("dt", {}, t("creds.scopes")), h("dd", {}, c.scopes.join(", "))),
      h("button", { type: "button", class: "secondary", onclick: () => shown.replaceChildren() }, t("creds.hide"))));
  });
  const revokeStatus = h("p", { class: "status", role: "status", hidden: true });
  const revoke = h("form", { class: "revoke-form", novalidate: true },
    field("creds.clientId", { name: "clientId", required: true, autocomplete: "off" }),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit", class: "danger" }, t("creds.revoke")), revokeStatus);
  onSubmit(revoke, async (data) => {
    await call(REVOKE, { c: String(data.get("clientId")).trim() });
    status(revokeStatus, t("creds.revoked"));
    revoke.reset();
  });
  return h("details", {}, h("summary", {}, t("creds.title")), issue, shown,
    h("h4", {}, t("creds.revokeTitle")), revoke);
}

function retireButton(partner, reload) {
  const confirm = h("button", { type: "button", class: "danger", hidden: true }, t("partners.retireConfirm"));
  const first = h("button", { type: "button", class: "secondary" }, t("partners.retire"));
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  first.addEventListener("click", () => {
    first.hidden = true;
    confirm.hidden = false;
    confirm.focus();
  });
  confirm.addEventListener("click", async () => {
    try {
      await call(RETIRE, { id: partner.id });
      await reload(t("partners.retired", { name: partner.name }));
    } catch (e) {
      status(error, e.message, "form-error");
    }
  });
  return h("div", { class: "retire" }, first, confirm, error);
}

function partnerCard(partner, adapters, scopes, reload) {
  const accepts = (adapters.find((a) => a.name === partner.adapter) || { accepts: [] }).accepts;
  const titleId = nextId("partner");
  const retired = partner.status === "RETIRED";
  return h("article", { class: "partner", "aria-labelledby": titleId, "data-partner": partner.id },
    h("h3", { id: titleId }, partner.name, " ",
      h("span", { class: `badge status-${partner.status.toLowerCase()}` }, t(`pstatus.${partner.status}`))),
    h("dl", { class: "facts" },
      h("dt", {}, t("partners.kind")), h("dd", {}, t(`kind.${partner.kind}`)),
      h("dt", {}, t("partners.purpose")), h("dd", {}, partner.purpose),
      h("dt", {}, t("partners.adapter")), h("dd", {}, partner.adapter),
      h("dt", {}, t("partners.fields")), h("dd", {}, fieldList(partner.fields)),
      h("dt", {}, t("partners.optional")), h("dd", {}, fieldList(partner.optionalFields)),
      h("dt", {}, t("partners.id")), h("dd", {}, h("code", {}, partner.id))),
    h("h4", {}, t("partners.pending")), timeline(partner.upcoming),
    loop.partnerExtras(partner, reload),
    retired ? null : changeForm(partner, accepts, reload),
    retired ? null : credentialsForm(partner, scopes),
    retired ? null : retireButton(partner, reload));
}

function configRows(adapter) {
  const known = CONFIG[adapter];
  if (known) {
    return known.map((c) => field(c.labelKey, {
      name: `config.${c.key}`, type: c.secret ? "password" : c.type || "text", autocomplete: c.secret ? "new-password" : "off",
      required: true,
    }, c.secret ? "config.secretHint" : null));
  }
  // Another installed adapter: name/value rows; values whose name sounds secret are masked.
  return [0, 1, 2].map((i) => {
    const name = h("input", { type: "text", name: `configName${i}`, id: nextId("cfg-name"), autocomplete: "off" });
    const value = h("input", { type: "text", name: `configValue${i}`, id: nextId("cfg-value"), autocomplete: "off" });
    name.addEventListener("input", () => {
      value.type = SECRETISH.test(name.value) ? "password" : "text";
    });
    return h("div", { class: "config-row" },
      h("div", { class: "field" }, h("label", { for: name.id }, t("config.name", { n: i + 1 })), name),
      h("div", { class: "field" }, h("label", { for: value.id }, t("config.value", { n: i + 1 })), value));
  });
}

function configFrom(data, adapter) {
  const config = {};
  if (CONFIG[adapter]) {
    for (const c of CONFIG[adapter]) config[c.key] = String(data.get(`config.${c.key}`) || "").trim();
  } else {
    for (const i of [0, 1, 2]) {
      const name = String(data.get(`configName${i}`) || "").trim();
      if (name) config[name] = String(data.get(`configValue${i}`) || "");
    }
  }
  return config;
}

function announceForm(adapters, purposes, reload) {
  const adapterSelect = select("adapter", adapters.map((a) => [a.name, a.name]), { required: true, id: nextId("adapter") });
  const own = purposes.filter((p) => !p.name.startsWith("partner:"));
  const accepted = h("p", { class: "muted", id: nextId("accepts"), "aria-live": "polite" });
  const config = h("fieldset", { class: "config" }, h("legend", {}, t("announce.config")));
  const fields = fieldPicker("fields", "announce.fields");
  const optional = fieldPicker("optionalFields", "announce.optional");
  const sync = () => {
    const adapter = adapters.find((a) => a.name === adapterSelect.value);
    const accepts = adapter ? adapter.accepts : [];
    accepted.textContent = t("announce.accepts", { fields: fieldList(accepts) });
    limitPicker(fields, accepts);
    limitPicker(optional, accepts);
    config.replaceChildren(config.firstChild, ...configRows(adapterSelect.value));
  };
  adapterSelect.setAttribute("aria-describedby", accepted.id);
  adapterSelect.addEventListener("change", sync);
  const form = h("form", { id: "announce-form", novalidate: true },
    field("announce.name", { name: "name", required: true, autocomplete: "off" }),
    field("announce.kind", select("kind", KINDS.map((k) => [k, t(`kind.${k}`)]))),
    field("announce.purpose", select("purpose", own.map((p) => [p.name, `${p.name} (${t(`basis.${p.legalBasis}`)})`])),
      "announce.purposeHint"),
    h("div", { class: "field" }, h("label", { for: adapterSelect.id }, t("announce.adapter")),
      adapterSelect, accepted),
    config, fields, optional,
    noticeDateField("effectiveAt", "announce.effectiveAt"),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit" }, t("announce.submit")));
  onSubmit(form, async (data) => {
    const adapter = String(data.get("adapter"));
    const { announcePartner: c } = await call(ANNOUNCE, { input: {
      name: String(data.get("name")).trim(), kind: String(data.get("kind")), purpose: String(data.get("purpose")),
      adapter, config: configFrom(data, adapter), fields: picked(data, "fields"),
      optionalFields: picked(data, "optionalFields"), effectiveAt: effectiveFrom(String(data.get("effectiveAt") || "")),
    } });
    form.reset();
    sync();
    await reload(t("announce.done", { name: c.partner.name, date: date(c.effectiveAt) }));
  });
  sync();
  return h("div", { class: "announce", id: "announce", "aria-labelledby": "announce-title", role: "region" },
    h("h3", { id: "announce-title" }, t("announce.title")),
    h("p", { class: "muted" }, t("announce.intro")), form);
}

async function render(container, message = "") {
  const extra = await loop.partnerFields();
  const data = await call(query(extra));
  const scopes = [...BASE_SCOPES, ...(await loop.extraScopes())];
  const reload = (text) => render(container, text);
  const note = h("p", { class: "status ok", role: "status", hidden: !message }, message);
  const list = data.partners.length
    ? data.partners.map((p) => partnerCard(p, data.partnerAdapters, scopes, reload))
    : [h("p", { class: "muted" }, t("partners.none"))];
  container.replaceChildren(note, h("div", { class: "partner-list" }, list),
    announceForm(data.partnerAdapters, data.purposes, reload));
}

export default { id: "partners", titleKey: "nav.partners", render: (c) => render(c) };
