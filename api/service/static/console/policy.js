// Policy versions: the one in force and those announced after it; announcing a new version
// (effective no sooner than 30 days on, Art. 10).

import { h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import { call, date, effectiveFrom, field, nextId, noticeDateField, onSubmit } from "./util.js";

const VERSION = "version text effectiveAt";
// The chain as deep as the API's depth limit allows: in force, then up to three announced.
const POLICY = `{ policy { ${VERSION} next { ${VERSION} next { ${VERSION} next { ${VERSION} } } } } }`;
const ANNOUNCE = `mutation($v: String!, $text: String!, $at: DateTime!) {
  announcePolicy(version: $v, text: $text, effectiveAt: $at) { ${VERSION} } }`;

function versions(policy) {
  const out = [];
  for (let p = policy; p; p = p.next) out.push(p);
  return out;
}

async function render(container, message = "") {
  const { policy } = await call(POLICY);
  const reload = (text) => render(container, text);
  const list = versions(policy).map((p, i) => h("li", { class: "policy-version" },
    h("h3", {}, p.version, " ", h("span", { class: "badge" }, t(i === 0 ? "policy.inForce" : "policy.announced"))),
    h("p", {}, t("policy.effective", { date: date(p.effectiveAt) })),
    h("details", {}, h("summary", {}, t("policy.text")), h("div", { class: "policy-text" }, p.text))));
  const form = h("form", { id: "policy-form", novalidate: true },
    field("policy.version", { name: "version", required: true, autocomplete: "off" }, "policy.versionHint"),
    field("policy.textLabel", h("textarea", { name: "text", rows: 8, required: true, id: nextId("ptext") })),
    noticeDateField("effectiveAt", "policy.effectiveAt", { required: true }),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit" }, t("policy.announce")));
  onSubmit(form, async (data) => {
    const { announcePolicy: p } = await call(ANNOUNCE, { v: String(data.get("version")).trim(),
      text: String(data.get("text")), at: effectiveFrom(String(data.get("effectiveAt") || "")) });
    await reload(t("policy.done", { version: p.version, date: date(p.effectiveAt) }));
  });
  container.replaceChildren(
    h("p", { class: "status ok", role: "status", hidden: !message }, message),
    h("ol", { class: "policy-list" }, list),
    h("h3", {}, t("policy.announceTitle")), form);
}

export default { id: "policy", titleKey: "nav.policy", render: (c) => render(c) };
