// The record of processing activities (GDPR Art. 30, contract v2 "partner loop":
// processingRecord), shown once the API serves it; the section hides itself until then.

import { download, h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import { serves } from "./partner_loop.js";
import { call } from "./util.js";

async function render(container) {
  const { processingRecord } = await call("{ processingRecord }");
  const text = JSON.stringify(processingRecord, null, 2);
  const save = h("button", { type: "button", class: "secondary" }, t("record.download"));
  save.addEventListener("click", () => download("processing-record.json", text));
  container.replaceChildren(h("p", { class: "muted" }, t("record.intro")), save,
    h("pre", { class: "policy-text record-json", tabindex: "0", "aria-label": t("nav.record") }, text));
}

export default {
  id: "record", titleKey: "nav.record", render,
  available: () => serves("processingRecord @skip(if: true)"),
};
