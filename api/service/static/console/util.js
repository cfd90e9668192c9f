// Helpers shared by the console's sections: running forms against the API, field pickers,
// dates that respect the 30-day notice, and the small table builder.

import { ApiError, gql } from "../common/api.js";
import { clearErrors, h, showError, when } from "../common/dom.js";
import { lang, t } from "../common/i18n.js";

export const FIELDS = ["USER_ID", "EMAIL", "FULL_NAME", "DATE_OF_BIRTH", "PHONE", "ADDRESS"];
export const NOTICE_DAYS = 30;

/** Run an operation; resolve to data, or throw an ApiError (first error). */
export async function call(query, variables = {}) {
  const body = await gql(query, variables);
  if (body.errors && body.errors.length) throw ApiError.from(body.errors[0]);
  return body.data;
}

/** Run a registered (trusted) document, schema/trusted/<name>.graphql, sent with its SHA-256:
 * anonymous and member callers may be held to those (CONSENTRY_TRUSTED_DOCUMENTS_ONLY). */
export async function persisted(doc, variables = {}, token = null) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch("/graphql", {
    method: "POST", headers, credentials: "omit", cache: "no-store",
    body: JSON.stringify({ query: doc.text, variables, extensions: { persistedQuery: { version: 1, sha256Hash: doc.sha256 } } }),
  });
  const body = await response.json();
  if (body.errors && body.errors.length) throw ApiError.from(body.errors[0]);
  return body.data;
}

/** Submit handler: clears old errors, runs `work()`, shows an error by its field. */
export function onSubmit(form, work) {
  const fallback = form.querySelector(".form-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await work(new FormData(form));
    } catch (error) {
      showError(form, error instanceof ApiError ? error : new ApiError(String(error)), fallback);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
}

let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;

/** A labelled control wrapped in .field (the label names it, errors attach under it).
 * `control` is an element, or attributes for an <input>. */
export function field(labelKey, control, hintKey = null) {
  const input = control instanceof Element ? control : h("input", { type: "text", ...control });
  if (!input.id) input.id = nextId(input.name || "f");
  const hint = hintKey ? h("p", { class: "muted hint", id: `${input.id}-hint` }, t(hintKey)) : null;
  if (hint) input.setAttribute("aria-describedby", hint.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, t(labelKey)), input, hint);
}

/** A <select> named `name` with [value, label] options. */
export function select(name, options, attrs = {}) {
  return h("select", { name, ...attrs }, options.map(([value, label]) => h("option", { value }, label)));
}

/** A fieldset of PersonalField checkboxes named `name`; `allowed` limits which are enabled. */
export function fieldPicker(name, legendKey, { checked = [], allowed = FIELDS } = {}) {
  return h("fieldset", { class: "field-picker", "data-name": name },
    h("legend", {}, t(legendKey)),
    FIELDS.map((f) => {
      const id = nextId(`${name}-${f}`);
      return h("div", { class: "check" },
        h("input", { type: "checkbox", id, name, value: f, checked: checked.includes(f),
          disabled: !allowed.includes(f) }),
        h("label", { for: id }, t(`field.${f}`)));
    }));
}

/** Restrict a field picker to the fields an adapter accepts. */
export function limitPicker(fieldset, allowed) {
  fieldset.querySelectorAll("input[type=checkbox]").forEach((box) => {
    box.disabled = !allowed.includes(box.value);
    if (box.disabled) box.checked = false;
  });
}

export const picked = (data, name) => data.getAll(name).map(String);

const pad = (n) => String(n).padStart(2, "0");
const localDate = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

/** The earliest date a new partner, a widening or a policy may take effect (local date). */
export function earliestDate(now = new Date()) {
  return localDate(new Date(now.getTime() + NOTICE_DAYS * 86400000 + 60000));
}

/** A date input's value as an ISO instant: the earliest allowed day keeps today's time (plus a
 * margin, so it is still 30 days on when it arrives), other days start at local midnight (an
 * earlier day is sent as it is, and the API refuses it next to the field). */
export function effectiveFrom(value, now = new Date()) {
  if (!value) return null;
  if (value === earliestDate(now)) return new Date(now.getTime() + NOTICE_DAYS * 86400000 + 300000).toISOString();
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d).toISOString();
}

/** A date input that refuses dates sooner than the notice period, with the rule stated. */
export function noticeDateField(name, labelKey, { required = false } = {}) {
  const min = earliestDate();
  const wrap = field(labelKey, { type: "date", name, min, required, value: required ? min : null });
  wrap.append(h("p", { class: "muted hint", id: nextId("notice") }, t("notice.rule", { date: min })));
  const input = wrap.querySelector("input");
  input.setAttribute("aria-describedby", wrap.lastChild.id);
  return wrap;
}

export const date = (iso) => when(iso, lang());

/** A table with a caption; rows are arrays of cells (strings or nodes). */
export function table(captionKey, headKeys, rows) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", { class: "visually-hidden" }, t(captionKey)),
      h("thead", {}, h("tr", {}, headKeys.map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
}

export const fieldList = (fields) => (fields.length ? fields.map((f) => t(`field.${f}`)).join(", ") : t("common.none"));

/** A status line (polite live region) for results of actions. */
export function status(el, text, kind = "ok") {
  el.textContent = text;
  el.className = `status ${kind}`;
  el.hidden = !text;
}
