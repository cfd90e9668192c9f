// The audit trail, oldest first, page by page (keyset cursors). The chain itself is checked by
// `consentry audit verify` on the server: no API operation exposes that check, so the console
// says so rather than pretend to verify hashes it cannot recompute.

import { h } from "../common/dom.js";
import { t } from "../common/i18n.js";
import { call, date, table } from "./util.js";

const PAGE = 50;
const TRAIL = `query($first: Int, $after: String) { auditTrail(first: $first, after: $after) {
  edges { cursor node { seq at actor action subject hash } } pageInfo { hasNextPage endCursor } } }`;

async function render(container, cursors = [null]) {
  const after = cursors[cursors.length - 1];
  const { auditTrail } = await call(TRAIL, { first: PAGE, after });
  const rows = auditTrail.edges.map(({ node: e }) => [String(e.seq), date(e.at), e.actor, e.action, e.subject || "",
    h("code", { class: "hash", title: e.hash }, e.hash.slice(0, 12))]);
  const older = h("button", { type: "button", class: "secondary", disabled: cursors.length < 2 }, t("audit.prev"));
  const newer = h("button", { type: "button", class: "secondary", disabled: !auditTrail.pageInfo.hasNextPage }, t("audit.nextPage"));
  older.addEventListener("click", () => render(container, cursors.slice(0, -1)));
  newer.addEventListener("click", () => render(container, [...cursors, auditTrail.pageInfo.endCursor]));
  container.replaceChildren(
    h("div", { class: "notice" }, h("p", {}, h("strong", {}, t("trail.chain")), " ", t("trail.verifyCli")),
      h("p", {}, h("code", {}, "consentry audit verify"))),
    h("p", { class: "muted" }, t("trail.page", { n: cursors.length })),
    rows.length ? table("nav.audit", ["trail.seq", "trail.at", "trail.actor", "trail.action", "trail.subject", "trail.hash"], rows)
      : h("p", { class: "muted" }, t("common.none")),
    h("div", { class: "pager" }, older, newer));
}

export default { id: "audit", titleKey: "nav.audit", render: (c) => render(c) };
