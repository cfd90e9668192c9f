// Public notices: the policy in force, the next announced version, and the outsourcing
// partners with their announced changes and dates. Public queries only, no sign-in: one
// registered document (schema/trusted/NoticesPage.graphql), sent by hash.

import { trustedData } from "/static/common/api.js";
import { h, when } from "/static/common/dom.js";
import { addStrings, apply, lang, languageSwitch, onLangChange, t } from "/static/common/i18n.js";

addStrings("en", {
  "notices.title": "Privacy notices",
  "notices.skip": "Skip to content",
  "notices.nav": "Pages",
  "notices.nav.account": "My account",
  "notices.nav.notices": "Privacy notices",
  "notices.inForce": "Privacy policy in force: version {version}",
  "notices.since": "In force since {date}.",
  "notices.next": "Next version: {version}",
  "notices.nextFrom": "Takes effect on {date}. Until then the version above applies.",
  "notices.noNext": "No new version is announced.",
  "notices.partners": "Outsourcing partners",
  "notices.noPartners": "No outsourcing partner.",
  "notices.partner": "Partner",
  "notices.kind": "Kind",
  "notices.purpose": "Purpose",
  "notices.status": "Status",
  "notices.fields": "Data always shared",
  "notices.optionalFields": "Shared only with your consent",
  "notices.upcoming": "Announced changes",
  "notices.noChange": "None",
  "notices.change": "{kind} on {date}: {fields}",
  "notices.purposes": "What we process and why",
  "notices.purposeName": "Purpose",
  "notices.purposeBasis": "Legal basis",
  "notices.purposeRequired": "Required",
  "change.ADDED": "Starts",
  "change.FIELDS_WIDENED": "Receives more data",
  "change.FIELDS_NARROWED": "Receives less data",
  "change.RETIRED": "Ends",
  "kind.IT_VENDOR": "IT vendor",
  "kind.LOGISTICS": "Logistics",
  "kind.PAYMENT": "Payment",
  "kind.RESEARCH": "Research",
  "kind.OTHER": "Other",
  "pstatus.ANNOUNCED": "Announced",
  "pstatus.ACTIVE": "Active",
  "pstatus.RETIRED": "Retired",
  "yes": "yes",
  "no": "no",
});
addStrings("ko", {
  "notices.title": "개인정보 처리 고지",
  "notices.skip": "본문으로 건너뛰기",
  "notices.nav": "페이지",
  "notices.nav.account": "내 계정",
  "notices.nav.notices": "개인정보 처리 고지",
  "notices.inForce": "시행 중인 개인정보 처리방침: {version}판",
  "notices.since": "{date}부터 시행.",
  "notices.next": "다음 판: {version}",
  "notices.nextFrom": "{date}부터 시행됩니다. 그때까지는 위의 판이 적용됩니다.",
  "notices.noNext": "예고된 새 판이 없습니다.",
  "notices.partners": "개인정보 처리 위탁",
  "notices.noPartners": "위탁 협력사가 없습니다.",
  "notices.partner": "협력사",
  "notices.kind": "유형",
  "notices.purpose": "목적",
  "notices.status": "상태",
  "notices.fields": "항상 제공되는 정보",
  "notices.optionalFields": "동의한 경우에만 제공",
  "notices.upcoming": "예정된 변경",
  "notices.noChange": "없음",
  "notices.change": "{date} {kind}: {fields}",
  "notices.purposes": "처리 목적과 근거",
  "notices.purposeName": "목적",
  "notices.purposeBasis": "법적 근거",
  "notices.purposeRequired": "필수",
  "change.ADDED": "위탁 시작",
  "change.FIELDS_WIDENED": "제공 정보 확대",
  "change.FIELDS_NARROWED": "제공 정보 축소",
  "change.RETIRED": "위탁 종료",
  "kind.IT_VENDOR": "IT 업체",
  "kind.LOGISTICS": "물류",
  "kind.PAYMENT": "결제",
  "kind.RESEARCH": "연구",
  "kind.OTHER": "기타",
  "pstatus.ANNOUNCED": "예고됨",
  "pstatus.ACTIVE": "위탁 중",
  "pstatus.RETIRED": "종료",
  "yes": "예",
  "no": "아니요",
});

const view = document.getElementById("view");
let data = null;

const fields = (list) => list.map((f) => t(`field.${f}`)).join(", ") || t("common.none");

function table(caption, headers, rows) {
  // Focusable, so a table wider than the screen can be scrolled from the keyboard.
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption }, h("table", {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
}

function render() {
  const { policy, purposes, outsourcingPartners: partners } = data;
  const day = (iso) => when(iso, lang());
  const inForce = h("section", { id: "policy", "aria-labelledby": "policy-title" },
    h("h2", { id: "policy-title" }, t("notices.inForce", { version: policy.version })),
    h("p", {}, t("notices.since", { date: day(policy.effectiveAt) })),
    h("div", { class: "policy-text", tabindex: "0", role: "region", "aria-labelledby": "policy-title" }, policy.text));
  const next = policy.next
    ? h("section", { id: "next", "aria-labelledby": "next-title" },
      h("h2", { id: "next-title" }, t("notices.next", { version: policy.next.version })),
      h("p", { class: "notice" }, t("notices.nextFrom", { date: day(policy.next.effectiveAt) })),
      h("div", { class: "policy-text", tabindex: "0", role: "region", "aria-labelledby": "next-title" }, policy.next.text))
    : h("section", { id: "next" }, h("p", {}, t("notices.noNext")));
  const purposeRows = purposes.map((p) => [
    h("span", {}, h("strong", {}, p.name), h("br"), p.description),
    t(`basis.${p.legalBasis}`), t(p.required ? "yes" : "no")]);
  const partnerRows = partners.map((p) => [
    p.name, t(`kind.${p.kind}`), p.purpose, t(`pstatus.${p.status}`), fields(p.fields), fields(p.optionalFields),
    p.upcoming.length
      ? h("ul", {}, p.upcoming.map((c) => h("li", {}, t("notices.change", {
        kind: t(`change.${c.kind}`), date: day(c.effectiveAt), fields: fields([...c.fields, ...c.optionalFields]) }))))
      : t("notices.noChange")]);
  view.replaceChildren(
    inForce,
    next,
    h("section", { id: "partners", "aria-labelledby": "partners-title" },
      h("h2", { id: "partners-title" }, t("notices.partners")),
      partners.length
        ? table(t("notices.partners"), [t("notices.partner"), t("notices.kind"), t("notices.purpose"),
          t("notices.status"), t("notices.fields"), t("notices.optionalFields"), t("notices.upcoming")], partnerRows)
        : h("p", {}, t("notices.noPartners"))),
    h("section", { id: "purposes", "aria-labelledby": "purposes-title" },
      h("h2", { id: "purposes-title" }, t("notices.purposes")),
      table(t("notices.purposes"), [t("notices.purposeName"), t("notices.purposeBasis"), t("notices.purposeRequired")],
        purposeRows)));
}

async function start() {
  document.getElementById("lang").append(languageSwitch());
  apply();
  onLangChange(() => data && render());
  data = await trustedData("NoticesPage", {}, { token: null });
  render();
}

start().catch((error) => {
  view.replaceChildren(h("p", { class: "form-error", role: "alert" }, `${t("common.error")}: ${error.message || error}`));
});
