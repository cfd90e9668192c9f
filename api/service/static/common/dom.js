// Small DOM helpers shared by the pages: build elements without innerHTML (no markup injection).

/** h("p", {class: "x", onclick: fn}, "text", child) -> element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Show API errors next to the field they concern (extensions.field), else in `fallback`. */
export function showError(form, error, fallback) {
  clearErrors(form);
  const field = error && error.field ? form.querySelector(`[name="${CSS.escape(error.field)}"]`) : null;
  const message = (error && error.message) || String(error);
  if (field) {
    const id = `${field.id || field.name}-error`;
    const note = h("p", { class: "field-error", id, role: "alert" }, message);
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", id);
    field.closest(".field, label, div")?.append(note);
    field.focus();
  } else if (fallback) {
    fallback.textContent = message;
    fallback.hidden = false;
  }
}

export function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((el) => el.remove());
  form.querySelectorAll("[aria-invalid]").forEach((el) => {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-describedby");
  });
  form.querySelectorAll(".form-error").forEach((el) => {
    el.hidden = true;
    el.textContent = "";
  });
}

/** A date-time from the API, shown in the reader's locale. */
export function when(iso, language) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(language || undefined);
}

/** Save `text` as a file download named `name`. */
export function download(name, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
