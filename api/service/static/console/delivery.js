// Outbox health (events pending, delivered, dead) and the dead letters, retried by selection.

import { h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import { call, date, nextId, onSubmit } from "./util.js";

const HEALTH = `{ outboxCounts { pending delivered dead }
  deadLetters(first: 100) { id partnerId partnerName type attempts lastError createdAt lastAttemptAt } }`;
const RETRY = "mutation($ids: [ID!]!) { retryDeadLetters(ids: $ids) }";

async function render(container, message = "") {
  const { outboxCounts: c, deadLetters } = await call(HEALTH);
  const reload = (text) => render(container, text);
  const counts = h("dl", { class: "counts" },
    ["pending", "delivered", "dead"].map((k) => h("div", { class: `count count-${k}` },
      h("dt", {}, t(`outbox.${k}`)), h("dd", {}, String(c[k])))));
  const form = h("form", { id: "retry-form", novalidate: true },
    h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "visually-hidden" }, t("outbox.deadTitle")),
      h("thead", {}, h("tr", {}, ["outbox.pick", "outbox.partner", "outbox.type", "outbox.attempts", "outbox.error",
        "outbox.created", "outbox.last"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, deadLetters.map((d) => {
        const id = nextId("dead");
        return h("tr", {},
          h("td", {}, h("input", { type: "checkbox", name: "ids", value: d.id, id,
            "aria-label": t("outbox.pickOne", { type: d.type, partner: d.partnerName || d.partnerId }) })),
          h("td", {}, d.partnerName || d.partnerId), h("td", {}, d.type), h("td", {}, String(d.attempts)),
          h("td", {}, d.lastError || ""), h("td", {}, date(d.createdAt)), h("td", {}, date(d.lastAttemptAt)));
      })))),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("button", { type: "submit", name: "ids-submit" }, t("outbox.retry")));
  onSubmit(form, async (data) => {
    const ids = data.getAll("ids").map(String);
    if (!ids.length) throw new Error(t("outbox.pickSome"));
    const { retryDeadLetters: n } = await call(RETRY, { ids });
    await reload(t("outbox.retried", { n }));
  });
  container.replaceChildren(
    h("p", { class: "status ok", role: "status", hidden: !message }, message),
    h("h3", {}, t("outbox.health")), counts,
    h("h3", {}, t("outbox.deadTitle")),
    deadLetters.length ? form : h("p", { class: "muted" }, t("outbox.noDead")));
}

export default { id: "delivery", titleKey: "nav.delivery", render: (c) => render(c) };
