// Strings by language (English and Korean). Pages add theirs with addStrings(lang, dict);
// elements with data-i18n="key" are filled by apply(); the switch is made by languageSwitch().

const LANGS = ["en", "ko"];
const dictionaries = {
  en: {
    "lang.label": "Language",
    "lang.en": "English",
    "lang.ko": "한국어",
    "common.required": "required",
    "common.optional": "optional",
    "common.loading": "Loading…",
    "common.error": "Something went wrong",
    "common.save": "Save",
    "common.cancel": "Cancel",
    "common.none": "None",
    "field.USER_ID": "User ID",
    "field.EMAIL": "Email",
    "field.FULL_NAME": "Full name",
    "field.DATE_OF_BIRTH": "Date of birth",
    "field.PHONE": "Phone",
    "field.ADDRESS": "Address",
    "basis.CONSENT": "Consent",
    "basis.CONTRACT": "Contract",
    "basis.LEGAL_OBLIGATION": "Legal obligation",
    "basis.VITAL_INTEREST": "Vital interest",
  },
  ko: {
    "lang.label": "언어",
    "lang.en": "English",
    "lang.ko": "한국어",
    "common.required": "필수",
    "common.optional": "선택",
    "common.loading": "불러오는 중…",
    "common.error": "문제가 발생했습니다",
    "common.save": "저장",
    "common.cancel": "취소",
    "common.none": "없음",
    "field.USER_ID": "아이디",
    "field.EMAIL": "이메일",
    "field.FULL_NAME": "이름",
    "field.DATE_OF_BIRTH": "생년월일",
    "field.PHONE": "전화번호",
    "field.ADDRESS": "주소",
    "basis.CONSENT": "동의",
    "basis.CONTRACT": "계약",
    "basis.LEGAL_OBLIGATION": "법적 의무",
    "basis.VITAL_INTEREST": "생명·신체의 이익",
  },
};

function initial() {
  try {
    const saved = sessionStorage.getItem("consentry.lang");
    if (LANGS.includes(saved)) return saved;
  } catch (_) {
    // no storage
  }
  const nav = (navigator.language || "en").slice(0, 2).toLowerCase();
  return LANGS.includes(nav) ? nav : "en";
}

let currentLang = initial();
const listeners = [];

export function addStrings(language, dict) {
  dictionaries[language] = Object.assign(dictionaries[language] || {}, dict);
}

/** The string for `key` in the current language, else English, else the key itself. */
export function t(key, vars = {}) {
  const text = (dictionaries[currentLang] || {})[key] ?? dictionaries.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function lang() {
  return currentLang;
}

export function setLang(language) {
  if (!LANGS.includes(language)) return;
  currentLang = language;
  try {
    sessionStorage.setItem("consentry.lang", language);
  } catch (_) {
    // no storage
  }
  document.documentElement.lang = language;
  apply();
  listeners.forEach((fn) => fn(language));
}

/** Call `fn(lang)` after each language change (pages re-render their dynamic parts). */
export function onLangChange(fn) {
  listeners.push(fn);
}

/** Fill every [data-i18n] element under `root` (text) and [data-i18n-*] attributes. */
export function apply(root = document) {
  document.documentElement.lang = currentLang;
  root.querySelectorAll("[data-i18n]").forEach((el) => {
    el.textContent = t(el.dataset.i18n);
  });
  root.querySelectorAll("[data-i18n-aria-label]").forEach((el) => {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
  });
}

/** A visible <select> that switches the language; put it in the page header. */
export function languageSwitch() {
  const label = document.createElement("label");
  label.className = "lang-switch";
  const span = document.createElement("span");
  span.dataset.i18n = "lang.label";
  span.textContent = t("lang.label");
  const select = document.createElement("select");
  for (const code of LANGS) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = dictionaries[code]["lang." + code];
    option.lang = code;
    select.append(option);
  }
  select.value = currentLang;
  select.addEventListener("change", () => setLang(select.value));
  label.append(span, select);
  return label;
}
