// The member privacy center: sign up, sign in, and everything a member may see and do about
// their data. Talks to the public /graphql only, with registered documents sent by hash
// (schema/trusted/Account*.graphql, by operation name): the page works where the server
// accepts nothing else from anonymous callers and members (CONSENTRY_TRUSTED_DOCUMENTS_ONLY).

import { ApiError, session, trustedData } from "/static/common/api.js";
import { clearErrors, download, h, showError, when } from "/static/common/dom.js";
import { addStrings, apply, lang, languageSwitch, onLangChange, t } from "/static/common/i18n.js";
import { decode, verifyReceipt } from "./receipts.js";
import { EN, KO } from "./strings.js";
import * as passkeys from "./webauthn.js";

addStrings("en", EN);
addStrings("ko", KO);

const FIELDS = ["USER_ID", "EMAIL", "FULL_NAME", "DATE_OF_BIRTH", "PHONE", "ADDRESS"];
const view = document.getElementById("view");
const statusBox = document.getElementById("status");
let current = () => {};

function say(text) {
  statusBox.textContent = text || "";
  statusBox.hidden = !text;
}

function fieldName(field) {
  return t(`field.${field}`);
}

function fieldList(fields) {
  return fields.map(fieldName).join(", ") || t("common.none");
}

function show(render) {
  current = render;
  return render();
}

/** A labelled input in a .field div; `required` adds the visible "required"/"optional" tag. */
function input(name, labelKey, { type = "text", required = false, tagged = true, value = "", autocomplete } = {}) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const label = h("label", { for: id }, t(labelKey));
  if (tagged) label.append(h("span", { class: "tag" }, `(${t(required ? "common.required" : "common.optional")})`));
  const control = type === "textarea"
    ? h("textarea", { id, name, rows: 3 }, value || "")
    : h("input", { id, name, type, value: value || "", required, autocomplete });
  return h("div", { class: "field" }, label, control);
}

function formError() {
  return h("p", { class: "form-error", role: "alert", hidden: true });
}

function values(form) {
  const out = {};
  for (const [key, value] of new FormData(form).entries()) out[key] = typeof value === "string" ? value.trim() : value;
  return out;
}

async function submitting(form, work) {
  clearErrors(form);
  say("");
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    await work();
  } catch (error) {
    showError(form, error instanceof ApiError ? error : new ApiError(String(error)), form.querySelector(".form-error"));
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

// -- signed out ---------------------------------------------------------------------------------

async function renderSignedOut() {
  const { policy, purposes } = await trustedData("AccountPublic", {}, { token: null });
  const required = purposes.filter((p) => p.required);
  const optional = purposes.filter((p) => !p.required && p.legalBasis === "CONSENT");
  const contract = purposes.filter((p) => !p.required && p.legalBasis !== "CONSENT");

  const signIn = h("form", { novalidate: true, "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, t("signin.title")),
    input("userId", "field.USER_ID", { tagged: false, autocomplete: "username" }),
    input("password", "field.password", { type: "password", tagged: false, autocomplete: "current-password" }),
    input("otp", "signin.otp", { autocomplete: "one-time-code" }),
    formError(),
    h("button", { type: "submit" }, t("signin.submit")));
  signIn.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(signIn, async () => {
      const v = values(signIn);
      const data = await trustedData("AccountLogin", { u: v.userId, p: v.password, o: v.otp || null },
        { token: null });
      session.set({ token: data.login.accessToken, refreshToken: data.login.refreshToken, role: data.login.role });
      say("");
      await show(renderCenter);
    });
  });

  if (passkeys.supported()) {
    signIn.append(h("button", { type: "button", class: "secondary", onclick: () => submitting(signIn, async () => {
      const userId = values(signIn).userId || null;
      const options = (await trustedData("AccountPasskeyLoginBegin", { u: userId }, { token: null }))
        .beginPasskeyLogin;
      const credential = await passkeys.get(options);
      const data = await trustedData("AccountPasskeyLoginFinish", { c: credential }, { token: null });
      const p = data.finishPasskeyLogin;
      session.set({ token: p.accessToken, refreshToken: p.refreshToken, role: p.role });
      await show(renderCenter);
    }) }, t("signin.passkey")));
  }

  const agreeId = "agree-required";
  const agree = h("div", { class: "field" },
    h("div", { class: "switch" },
      h("input", { type: "checkbox", id: agreeId, name: "agree", required: true }),
      h("label", { for: agreeId }, t("signup.agree", {
        version: policy.version, purposes: required.map((p) => p.name).join(", "),
      }))));
  const optionalSet = h("fieldset", {},
    h("legend", {}, t("signup.optionalPurposes")),
    optional.map((p) => purposeChoice(p, false, `signup-${p.name}`)));
  const signUp = h("form", { novalidate: true, "aria-labelledby": "signup-title" },
    h("h2", { id: "signup-title" }, t("signup.title")),
    h("p", { class: "muted" }, t("signup.intro")),
    input("userId", "field.USER_ID", { required: true, autocomplete: "username" }),
    input("email", "field.EMAIL", { type: "email", required: true, autocomplete: "email" }),
    input("fullName", "field.FULL_NAME", { required: true, autocomplete: "name" }),
    input("password", "field.password", { type: "password", required: true, autocomplete: "new-password" }),
    input("dateOfBirth", "field.DATE_OF_BIRTH", { type: "date", autocomplete: "bday" }),
    input("phone", "field.PHONE", { type: "tel", autocomplete: "tel" }),
    input("address", "field.ADDRESS", { autocomplete: "street-address" }),
    h("h3", {}, t("signup.policy", { version: policy.version, date: when(policy.effectiveAt, lang()) })),
    h("div", { class: "policy-text", tabindex: "0", role: "region", "aria-label": t("signup.policy", {
      version: policy.version, date: when(policy.effectiveAt, lang()) }) }, policy.text),
    agree,
    optional.length ? optionalSet : null,
    contract.length ? h("p", { class: "muted" }, t("signup.contractPurposes", {
      purposes: contract.map((p) => p.name).join(", ") })) : null,
    formError(),
    h("button", { type: "submit" }, t("signup.submit")));
  signUp.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(signUp, async () => {
      if (!signUp.querySelector(`#${agreeId}`).checked) {
        throw new ApiError(t("signup.agreeNeeded"), "BAD_USER_INPUT", "agree");
      }
      const v = values(signUp);
      const fields = { userId: v.userId, email: v.email, fullName: v.fullName, password: v.password,
        dateOfBirth: v.dateOfBirth || null, phone: v.phone || null, address: v.address || null };
      const data = await trustedData("AccountRegister", { i: fields }, { token: null });
      session.set({ token: data.register.accessToken, refreshToken: data.register.refreshToken, role: data.register.role });
      for (const box of signUp.querySelectorAll("input[data-purpose]:checked")) {
        await trustedData("AccountGiveConsent", { p: box.dataset.purpose, v: policy.version });
      }
      say(t("signup.verifySent", { email: fields.email }));
      await show(renderCenter);
    });
  });

  const left = h("div", {}, h("section", {}, signIn), forgotPassword());
  view.replaceChildren(h("div", { class: "cols" }, left, h("section", {}, signUp)));
}

function purposeChoice(purpose, checked, id) {
  const detailId = `${id}-detail`;
  return h("div", { class: "switch" },
    h("input", { type: "checkbox", id, name: `purpose-${purpose.name}`, checked, dataset: { purpose: purpose.name },
      "aria-describedby": detailId }),
    h("div", {},
      h("label", { for: id }, purpose.name),
      h("div", { class: "detail", id: detailId }, purpose.description, " · ",
        t("consents.basis", { basis: t(`basis.${purpose.legalBasis}`) }))));
}

function forgotPassword() {
  const form = h("form", { novalidate: true, "aria-labelledby": "forgot-title" },
    h("h2", { id: "forgot-title" }, t("signin.forgot")),
    input("email", "field.EMAIL", { type: "email", tagged: false, autocomplete: "email" }),
    formError(),
    h("button", { type: "submit", class: "secondary" }, t("reset.ask")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      await trustedData("AccountRequestPasswordReset", { e: values(form).email }, { token: null });
      say(t("reset.sent"));
    });
  });
  return h("section", {}, form);
}

function resetPasswordForm(token) {
  const form = h("form", { novalidate: true, "aria-labelledby": "reset-title" },
    h("h2", { id: "reset-title" }, t("reset.title")),
    input("newPassword", "reset.newPassword", { type: "password", tagged: false, autocomplete: "new-password" }),
    formError(),
    h("button", { type: "submit" }, t("reset.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      await trustedData("AccountResetPassword", { t: token, p: values(form).newPassword }, { token: null });
      history.replaceState(null, "", "/account/");
      say(t("reset.done"));
      await show(renderSignedOut);
    });
  });
  view.replaceChildren(h("section", {}, form));
}

// -- signed in ----------------------------------------------------------------------------------

async function renderCenter() {
  if (!session.get()) return show(renderSignedOut);
  let data;
  try {
    data = await trustedData("AccountCenter");
  } catch (error) {
    if (error.code === "UNAUTHENTICATED" || error.code === "FORBIDDEN") {
      session.clear();
      return show(renderSignedOut);
    }
    throw error;
  }
  const { me, policy, purposes } = data;
  if (!me) {
    session.clear();
    return show(renderSignedOut);
  }
  const toolbar = h("div", { class: "toolbar" },
    h("span", {}, t("center.signedInAs", { userId: me.userId })),
    h("button", { type: "button", class: "secondary", onclick: signOut }, t("center.signOut")),
    h("button", { type: "button", class: "secondary", onclick: signOutEverywhere }, t("center.signOutEverywhere")));
  const sections = [
    profileSection(me),
    consentsSection(me, policy, purposes),
    disclosuresSection(me),
    upcomingSection(me),
    requestsSection(me),
    inaccuracySection(),
    exportSection(me),
    sessionsSection(me),
    passkeysSection(me),
    passwordSection(),
    withdrawSection(),
  ].filter(Boolean);
  const contents = h("nav", { class: "contents", "aria-label": t("center.contents") },
    h("ul", {}, sections.map((s) => h("li", {}, h("a", { href: `#${s.id}` }, s.querySelector("h2").textContent)))));
  view.replaceChildren(...[toolbar, contents, verificationNotice(me), ...sections].filter(Boolean));
  return undefined;
}

function section(id, titleKey, ...children) {
  return h("section", { id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, t(titleKey)), ...children);
}

function verificationNotice(me) {
  if (me.emailVerified) return null;
  const resend = h("button", { type: "button", class: "secondary", onclick: async () => {
    await trustedData("AccountResendVerification");
    say(t("verify.resent"));
  } }, t("verify.resend"));
  return h("p", { class: "notice" }, t("verify.pending"), " ", resend);
}

function profileSection(me) {
  const list = h("dl", { class: "kv" },
    ...[["USER_ID", me.userId], ["EMAIL", me.email], ["FULL_NAME", me.fullName],
      ["DATE_OF_BIRTH", me.dateOfBirth], ["PHONE", me.phone], ["ADDRESS", me.address]]
      .flatMap(([field, value]) => [h("dt", {}, fieldName(field)), h("dd", {}, value || "—")]),
    h("dt", {}, t("profile.status")), h("dd", {}, t(`status.${me.status}`)),
    h("dt", {}, t("profile.since")), h("dd", {}, when(me.createdAt, lang())));
  const pending = me.pendingEmail ? h("p", { class: "notice" }, t("profile.pendingEmail", { email: me.pendingEmail })) : null;
  const form = h("form", { novalidate: true, hidden: true },
    input("email", "field.EMAIL", { type: "email", required: true, value: me.email, autocomplete: "email" }),
    input("fullName", "field.FULL_NAME", { required: true, value: me.fullName, autocomplete: "name" }),
    input("dateOfBirth", "field.DATE_OF_BIRTH", { type: "date", value: me.dateOfBirth, autocomplete: "bday" }),
    input("phone", "field.PHONE", { type: "tel", value: me.phone, autocomplete: "tel" }),
    input("address", "field.ADDRESS", { value: me.address, autocomplete: "street-address" }),
    formError(),
    h("button", { type: "submit" }, t("common.save")),
    h("button", { type: "button", class: "secondary", onclick: () => { form.hidden = true; edit.hidden = false; } },
      t("common.cancel")));
  const edit = h("button", { type: "button", class: "secondary", onclick: () => {
    form.hidden = false;
    edit.hidden = true;
    form.querySelector("input").focus();
  } }, t("profile.edit"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const v = values(form);
      const changes = {};
      for (const key of ["email", "fullName", "dateOfBirth", "phone", "address"]) {
        if ((v[key] || null) !== (me[key] || null)) changes[key] = v[key] || null;
      }
      await trustedData("AccountUpdateProfile", { i: changes });
      await show(renderCenter);
      say(t("profile.saved"));
    });
  });
  return section("profile", "profile.title", list, pending, edit, form);
}

function consentLine(consent) {
  if (!consent) return t("consents.never");
  const date = when(consent.at, lang());
  return consent.state === "GIVEN"
    ? t("consents.given", { version: consent.policyVersion, date })
    : t("consents.withdrawn", { version: consent.policyVersion, date });
}

function receiptLine(consent) {
  if (!consent) return null;
  const status = h("span", { class: "receipt-status", "aria-live": "polite" }, t("receipt.checking"));
  verifyReceipt(consent.receipt).then((ok) => {
    status.textContent = t(ok ? "receipt.verified" : "receipt.notVerified");
    status.className = `receipt-status ${ok ? "ok" : "bad"}`;
  });
  const name = `receipt-${consent.purpose.replace(/[^\w-]/g, "_")}-${consent.at.replace(/[^\dT]/g, "")}.jws`;
  return h("div", { class: "receipt" },
    `${t("receipt.label")}: `, status, " ",
    h("button", { type: "button", class: "secondary", "aria-label": t("receipt.downloadFor", { purpose: consent.purpose }),
      onclick: () => download(name, consent.receipt, "application/jose") }, t("receipt.download")));
}

function consentsSection(me, policy, purposes) {
  const byPurpose = Object.fromEntries(me.consents.map((c) => [c.purpose, c]));
  const switchable = purposes.filter((p) => p.legalBasis === "CONSENT");
  const needed = purposes.filter((p) => p.legalBasis !== "CONSENT");
  const rows = switchable.map((purpose) => {
    const consent = byPurpose[purpose.name];
    const id = `consent-${purpose.name.replace(/[^\w-]/g, "_")}`;
    const line = h("div", { class: "detail" }, consentLine(consent));
    const receipt = h("div", {}, receiptLine(consent));
    const box = h("input", { type: "checkbox", id, checked: consent && consent.state === "GIVEN",
      dataset: { purpose: purpose.name }, "aria-describedby": `${id}-detail` });
    const error = h("p", { class: "field-error", role: "alert", hidden: true });
    box.addEventListener("change", async () => {
      box.disabled = true;
      error.hidden = true;
      try {
        const data = box.checked
          ? await trustedData("AccountGiveConsent", { p: purpose.name, v: policy.version })
          : await trustedData("AccountWithdrawConsent", { p: purpose.name });
        const updated = data.giveConsent || data.withdrawConsent;
        line.textContent = consentLine(updated);
        receipt.replaceChildren(receiptLine(updated));
      } catch (err) {
        box.checked = !box.checked;
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        box.disabled = false;
      }
    });
    const stale = consent && consent.state === "GIVEN" && consent.policyVersion !== policy.version
      ? h("div", { class: "detail" }, t("consents.newVersion", { version: policy.version })) : null;
    return h("div", { class: "switch" }, box,
      h("div", {},
        h("label", { for: id }, purpose.name),
        h("div", { class: "detail", id: `${id}-detail` }, purpose.description, " · ",
          t("consents.basis", { basis: t(`basis.${purpose.legalBasis}`) })),
        line, stale, receipt, error));
  });
  return section("consents", "consents.title",
    h("p", { class: "muted" }, t("consents.intro")),
    ...rows,
    needed.length ? h("p", { class: "muted" }, t("consents.needed", {
      purposes: needed.map((p) => `${p.name} (${t(`basis.${p.legalBasis}`)})`).join(", ") })) : null);
}

function table(caption, headers, rows) {
  // Focusable, so a table wider than the screen can be scrolled from the keyboard.
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
}

function disclosuresSection(me) {
  if (!me.disclosures.length) return section("disclosures", "disclosures.title", h("p", {}, t("disclosures.none")));
  const headers = [t("disclosures.partner"), t("disclosures.fields"), t("disclosures.when"), t("disclosures.basis"),
    t("disclosures.deletion")];
  const rows = me.disclosures.map((d) => [d.partner, fieldList(d.fields), when(d.at, lang()),
    `${t(`basis.${d.legalBasis}`)} (${d.purpose})`,
    d.deletionConfirmedAt ? t("disclosures.deletionConfirmed", { date: when(d.deletionConfirmedAt, lang()) })
      : d.deletionDueAt ? t("disclosures.deletionDue", { date: when(d.deletionDueAt, lang()) }) : "—"]);
  return section("disclosures", "disclosures.title", table(t("disclosures.title"), headers, rows));
}

function upcomingSection(me) {
  if (!me.upcomingDisclosures.length) {
    return section("upcoming", "upcoming.title", h("p", {}, t("upcoming.none")),
      h("p", {}, h("a", { href: "/notices" }, t("upcoming.notices"))));
  }
  const rows = me.upcomingDisclosures.map((u) => {
    const action = u.objected
      ? t("upcoming.objected")
      : h("button", { type: "button", class: "secondary", "aria-label": t("upcoming.objectTo", { partner: u.partner }),
        onclick: async (event) => {
          event.target.disabled = true;
          try {
            await trustedData("AccountObjectToPartner", { p: u.partnerId });
            await show(renderCenter);
          } catch (err) {
            say(err.message);
            event.target.disabled = false;
          }
        } }, t("upcoming.object"));
    return [u.partner, fieldList(u.fields), t(`basis.${u.legalBasis}`), when(u.effectiveAt, lang()), action];
  });
  return section("upcoming", "upcoming.title", table(t("upcoming.title"),
    [t("disclosures.partner"), t("disclosures.fields"), t("disclosures.basis"), t("upcoming.effective"), t("upcoming.objection")], rows));
}

function requestsSection(me) {
  if (!me.dataRequests.length) return section("requests", "requests.title", h("p", {}, t("requests.none")));
  const rows = me.dataRequests.map((r) => [
    `${t(`kind.${r.kind}`)}${r.fields.length ? ` (${fieldList(r.fields)})` : ""}`,
    t(`status.${r.status}`), when(r.receivedAt, lang()), when(r.dueAt, lang()), when(r.resolvedAt, lang()) || "—"]);
  return section("requests", "requests.title", table(t("requests.title"),
    [t("requests.kind"), t("requests.status"), t("requests.received"), t("requests.due"), t("requests.resolved")], rows));
}

function inaccuracySection() {
  const form = h("form", { novalidate: true },
    h("p", { class: "muted" }, t("inaccuracy.intro")),
    h("fieldset", { class: "checks" }, h("legend", {}, t("inaccuracy.fields")),
      FIELDS.map((field) => {
        const id = `wrong-${field}`;
        return h("div", {}, h("input", { type: "checkbox", id, name: "fields", value: field }),
          " ", h("label", { for: id }, fieldName(field)));
      })),
    input("note", "field.note", { type: "textarea", tagged: false }),
    formError(),
    h("button", { type: "submit" }, t("inaccuracy.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const fields = [...form.querySelectorAll("input[name=fields]:checked")].map((box) => box.value);
      if (!fields.length) throw new ApiError(t("inaccuracy.pickOne"), "BAD_USER_INPUT", null);
      await trustedData("AccountReportInaccuracy", { f: fields, n: values(form).note || null });
      await show(renderCenter);
      say(t("inaccuracy.done"));
    });
  });
  return section("inaccuracy", "inaccuracy.title", form);
}

function exportSection(me) {
  const button = h("button", { type: "button", onclick: async () => {
    button.disabled = true;
    try {
      const data = await trustedData("AccountExport");
      download(`consentry-export-${me.userId}.json`, JSON.stringify(data.exportMyData, null, 2));
      say(t("export.done"));
    } catch (err) {
      say(err.message);
    } finally {
      button.disabled = false;
    }
  } }, t("export.submit"));
  return section("export", "export.title", h("p", { class: "muted" }, t("export.intro")), button);
}

function sessionsSection(me) {
  const rows = me.sessions.map((s) => [
    s.userAgent || "—", when(s.createdAt, lang()), when(s.lastUsedAt, lang()),
    s.current ? t("sessions.current") : h("button", { type: "button", class: "secondary", onclick: async () => {
      await trustedData("AccountRevokeSession", { i: s.id });
      await show(renderCenter);
    } }, t("sessions.revoke"))]);
  return section("sessions", "sessions.title",
    table(t("sessions.title"),
      [t("sessions.device"), t("disclosures.when"), t("sessions.lastUsed"), t("sessions.action")], rows));
}

function passkeysSection(me) {
  const rows = me.passkeys.map((k) => [k.name, when(k.createdAt, lang()), when(k.lastUsedAt, lang()) || "—",
    h("button", { type: "button", class: "secondary", "aria-label": t("passkeys.removeNamed", { name: k.name }),
      onclick: async () => {
        await trustedData("AccountRemovePasskey", { i: k.id });
        await show(renderCenter);
      } }, t("passkeys.remove"))]);
  const form = h("form", { novalidate: true },
    input("name", "passkeys.name", { tagged: false }),
    formError(),
    h("button", { type: "submit", class: "secondary" }, t("passkeys.add")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const options = (await trustedData("AccountPasskeyRegisterBegin")).beginPasskeyRegistration;
      const credential = await passkeys.create(options);
      await trustedData("AccountPasskeyRegisterFinish", { c: credential, n: values(form).name || null });
      await show(renderCenter);
      say(t("passkeys.added"));
    });
  });
  const canAdd = passkeys.supported();
  return section("passkeys", "passkeys.title",
    rows.length ? table(t("passkeys.title"),
      [t("passkeys.name"), t("disclosures.when"), t("sessions.lastUsed"), t("sessions.action")], rows)
      : h("p", {}, t("passkeys.none")),
    canAdd ? form : null);
}

function passwordSection() {
  const form = h("form", { novalidate: true },
    input("currentPassword", "password.current", { type: "password", tagged: false, autocomplete: "current-password" }),
    input("newPassword", "reset.newPassword", { type: "password", tagged: false, autocomplete: "new-password" }),
    formError(),
    h("button", { type: "submit" }, t("password.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const v = values(form);
      await trustedData("AccountChangePassword", { c: v.currentPassword, n: v.newPassword });
      form.reset();
      say(t("password.changed"));
    });
  });
  return section("password", "password.title", form);
}

function withdrawSection() {
  const confirmId = "withdraw-confirm";
  const form = h("form", { novalidate: true },
    h("p", {}, t("withdraw.intro")),
    input("password", "field.password", { type: "password", tagged: false, autocomplete: "current-password" }),
    h("div", { class: "field switch" },
      h("input", { type: "checkbox", id: confirmId, name: "confirm" }),
      h("label", { for: confirmId }, t("withdraw.confirm"))),
    formError(),
    h("button", { type: "submit", class: "danger" }, t("withdraw.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      if (!form.querySelector(`#${confirmId}`).checked) {
        throw new ApiError(t("withdraw.confirm"), "BAD_USER_INPUT", "confirm");
      }
      const data = await trustedData("AccountWithdrawMembership", { p: values(form).password });
      session.clear();
      const receipt = data.withdrawMembership;
      await show(() => renderWithdrawn(receipt));
    });
  });
  return section("withdraw", "withdraw.title", form);
}

function renderWithdrawn(receipt) {
  const yes = (flag) => t(flag ? "withdraw.yes" : "withdraw.no");
  const list = h("dl", { class: "kv" },
    h("dt", {}, t("withdraw.at")), h("dd", {}, when(receipt.withdrawnAt, lang())),
    h("dt", {}, t("withdraw.destroyed")), h("dd", {}, yes(receipt.destroyed)),
    h("dt", {}, t("withdraw.retainedFields")), h("dd", {}, fieldList(receipt.retainedFields)),
    h("dt", {}, t("withdraw.retainedUntil")), h("dd", {}, when(receipt.retainedUntil, lang()) || "—"),
    h("dt", {}, t("withdraw.partners")), h("dd", {}, receipt.partnersNotified.join(", ") || t("common.none")));
  let signed = null;
  if (receipt.receipt) {
    const status = h("span", { "aria-live": "polite" }, t("receipt.checking"));
    verifyReceipt(receipt.receipt).then((ok) => {
      status.textContent = t(ok ? "receipt.verified" : "receipt.notVerified");
      status.className = ok ? "ok" : "bad";
    });
    let sub = "";
    try {
      sub = decode(receipt.receipt).claims.sub || "";
    } catch (_) {
      sub = "";
    }
    signed = h("div", { class: "receipt" }, `${t("receipt.label")}: `, status, " ",
      h("button", { type: "button", class: "secondary", onclick: () => download(
        `withdrawal-receipt${sub ? `-${sub}` : ""}.jws`, receipt.receipt, "application/jose") }, t("receipt.download")));
  }
  view.replaceChildren(h("section", { id: "withdrawn", "aria-labelledby": "withdrawn-title" },
    h("h2", { id: "withdrawn-title" }, t("withdraw.receipt")), list, signed,
    h("p", {}, h("a", { href: "/account/" }, t("withdraw.again")))));
}

async function signOut() {
  const s = session.get();
  try {
    if (s && s.refreshToken) await trustedData("AccountLogout", { r: s.refreshToken });
  } catch (_) {
    // the session ends here either way
  }
  session.clear();
  say("");
  await show(renderSignedOut);
}

async function signOutEverywhere() {
  try {
    await trustedData("AccountSignOutEverywhere");
  } catch (_) {
    // ended or not, this tab forgets its tokens
  }
  session.clear();
  await show(renderSignedOut);
}

// -- start --------------------------------------------------------------------------------------

async function start() {
  document.getElementById("lang").append(languageSwitch());
  apply();
  onLangChange(() => current());
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const path = location.pathname.replace(/\/+$/, "");
  if (token && path.endsWith("/verify-email")) {
    history.replaceState(null, "", "/account/");
    try {
      const ok = (await trustedData("AccountVerifyEmail", { t: token }, { token: null })).verifyEmail;
      say(t(ok ? "verify.done" : "verify.failed"));
    } catch (_) {
      say(t("verify.failed"));
    }
  } else if (token && path.endsWith("/reset-password")) {
    return show(() => resetPasswordForm(token));
  }
  return show(session.get() ? renderCenter : renderSignedOut);
}

start().catch((error) => {
  view.replaceChildren(h("p", { class: "form-error", role: "alert" }, `${t("common.error")}: ${error.message || error}`));
});
