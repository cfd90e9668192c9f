// The admin console: sign-in (password and one-time code), then one section at a time.
// Sections are modules with {id, titleKey, render(container)}; adding a screen is adding one
// module to SECTIONS (the partner-loop screens live in partner_loop.js and show themselves
// only when the API serves them).

import { session } from "../common/api.js";
import { h } from "../common/dom.js";
import { addStrings, apply, languageSwitch, onLangChange, t } from "../common/i18n.js";
import { STRINGS } from "./strings.js";
import { onSubmit, persisted } from "./util.js";
import partners from "./partners.js";
import requests from "./requests.js";
import members from "./members.js";
import delivery from "./delivery.js";
import duties from "./duties.js";
import audit from "./audit.js";
import policy from "./policy.js";
import record from "./record.js";

for (const [language, dict] of Object.entries(STRINGS)) addStrings(language, dict);

// Sections with `available()` show only when the API serves what they need.
const ALL_SECTIONS = [partners, requests, members, duties, delivery, audit, policy, record];
let SECTIONS = ALL_SECTIONS.filter((s) => !s.available);
// Sign-in is anonymous: sent as registered documents (schema/trusted/Console*.graphql).
const LOGIN = {
  text: "mutation ConsoleLogin($u: String!, $p: String!, $otp: String) { login(userId: $u, password: $p, otp: $otp) { accessToken refreshToken role } }",
  sha256: "24e8dd21a65a867131fcf725992cffe2ce84117babe492661586863df713345c",
};
const LOGOUT = {
  text: "mutation ConsoleLogout($t: String!) { logout(refreshToken: $t) }",
  sha256: "0fb1da6ae53207c1d7deda3d47af3a2b296c1b2b37b75308c23de3936415ce46",
};

const $ = (id) => document.getElementById(id);
let current = null;

function signedIn() {
  const s = session.get();
  return Boolean(s && s.token && s.role === "ADMIN");
}

async function signOut() {
  const s = session.get();
  session.clear();
  if (s && s.refreshToken) {
    try {
      await persisted(LOGOUT, { t: s.refreshToken }, s.token);
    } catch (_) {
      // the session is gone here either way
    }
  }
  show();
}

function nav() {
  const el = $("console-nav");
  el.replaceChildren(h("ul", {}, SECTIONS.map((s) => h("li", {},
    h("a", { href: `#${s.id}`, "aria-current": current === s.id ? "page" : null }, t(s.titleKey)))),
    h("li", {}, h("button", { type: "button", class: "secondary", onclick: signOut }, t("console.signout")))));
}

async function open(id) {
  const section = SECTIONS.find((s) => s.id === id) || SECTIONS[0];
  current = section.id;
  nav();
  const container = h("section", { id: `section-${section.id}`, "aria-labelledby": `title-${section.id}` },
    h("h2", { id: `title-${section.id}` }, t(section.titleKey)),
    h("p", { class: "muted", role: "status" }, t("common.loading")));
  $("console").replaceChildren(container);
  try {
    const body = h("div", { class: "section-body" });
    await section.render(body);
    container.lastChild.replaceWith(body);
  } catch (error) {
    if (error && error.code === "UNAUTHENTICATED") {
      session.clear();
      show();
      return;
    }
    container.lastChild.replaceWith(h("p", { class: "form-error", role: "alert" },
      `${t("common.error")}: ${error.message || error}`));
  }
}

async function sections() {
  const shown = await Promise.all(ALL_SECTIONS.map((s) => (s.available ? s.available() : true)));
  SECTIONS = ALL_SECTIONS.filter((_, i) => shown[i]);
}

async function show() {
  const inside = signedIn();
  $("signin").hidden = inside;
  $("console").hidden = !inside;
  $("console-nav").hidden = !inside;
  if (inside) {
    await sections();
    open(location.hash.slice(1));
  } else {
    $("console").replaceChildren();
    $("signin-form").reset();
  }
}

onSubmit($("signin-form"), async (data) => {
  const result = await persisted(LOGIN, {
    u: String(data.get("userId")).trim(), p: String(data.get("password")),
    otp: String(data.get("otp")).trim() || null,
  });
  const payload = result.login;
  if (payload.role !== "ADMIN") {
    // A member's password works here too: end that session at once and say why.
    await persisted(LOGOUT, { t: payload.refreshToken }, payload.accessToken).catch(() => null);
    throw new Error(t("signin.notAdmin"));
  }
  session.set({ token: payload.accessToken, refreshToken: payload.refreshToken, role: payload.role });
  show();
  $("main").focus();
});

window.addEventListener("hashchange", () => {
  if (signedIn()) open(location.hash.slice(1));
});
onLangChange(() => {
  if (signedIn()) open(current);
});

$("header-tools").append(languageSwitch());
apply();
show();
