/*
 * Consentry cookie banner. Embed with one tag (no inline script needed on the page):
 *
 *   <script src="https://consentry.example/consent.js" data-api="https://consentry.example"></script>
 *
 * data-api is the API origin (default: this script's own origin); data-lang picks "en" or "ko"
 * (default: the page's lang, then the browser's). The site's origin must be listed in the
 * API's CONSENTRY_CORS_ORIGINS, and a site CSP must allow the API origin in script-src,
 * style-src and connect-src.
 *
 * Categories (Art. 3): necessary (always on), analytics, personalization, marketing. The
 * choice is recorded with setCookiePreferences under a random device id kept in this site's
 * localStorage (or a first-party cookie when storage is refused): it identifies the device's
 * choice, it is not a credential. Scripts the site marks
 *   <script type="text/plain" data-consent="analytics" src="..."></script>
 * are cloned into real scripts only once their categories (space or comma separated) are
 * allowed. API: window.consentry.allowed(category), .choice(), .open(), .set({analytics, ...});
 * every change dispatches "consentry:change" on window with the choice as event.detail, and
 * a page that opens with a known choice gets "consentry:ready" (same detail) once.
 * Elements with a data-consentry-open attribute reopen the banner when clicked.
 * Styles come from a stylesheet on the API origin (banner/consent.css): no inline styles.
 */
(function () {
  "use strict";
  if (window.consentry && window.consentry.version) return; // loaded twice: keep the first

  var CATEGORIES = ["necessary", "analytics", "personalization", "marketing"];
  var OPTIONAL = ["analytics", "personalization", "marketing"];
  var DEVICE_KEY = "consentry.device";
  var CHOICE_KEY = "consentry.choice";
  var COOKIE_DEVICE = "consentry_device";
  var COOKIE_CHOICE = "consentry_choice";
  var YEAR = 365 * 24 * 3600;

  var me = document.currentScript ||
    document.querySelector('script[src$="/consent.js"], script[src*="/consent.js?"]');
  var api = ((me && me.getAttribute("data-api")) || new URL(me ? me.src : location.href, location.href).origin)
    .replace(/\/+$/, "");

  var STRINGS = {
    en: {
      title: "Cookies on this site",
      text: "Necessary cookies keep the site working and are always on. With your permission we also use cookies for the purposes below. You can change your choice at any time.",
      necessary: "Necessary",
      necessaryDetail: "Sign-in, security and your cookie choice. Always on.",
      analytics: "Analytics",
      analyticsDetail: "Counting visits and how pages are used, to improve the site.",
      personalization: "Personalization",
      personalizationDetail: "Remembering your preferences to tailor what you see.",
      marketing: "Marketing",
      marketingDetail: "Measuring campaigns and showing relevant offers.",
      acceptAll: "Accept all",
      necessaryOnly: "Necessary only",
      choose: "Choose",
      legend: "Choose what to allow",
      save: "Save my choices",
      close: "Close",
      saved: "Your cookie choice is saved.",
      failed: "Your choice could not be saved; it applies on this device for now."
    },
    ko: {
      title: "이 사이트의 쿠키",
      text: "필수 쿠키는 사이트 운영에 필요하며 항상 사용됩니다. 동의하시면 아래 목적의 쿠키도 사용합니다. 선택은 언제든지 바꿀 수 있습니다.",
      necessary: "필수",
      necessaryDetail: "로그인, 보안, 쿠키 선택 저장. 항상 사용됩니다.",
      analytics: "분석",
      analyticsDetail: "방문 수와 페이지 이용 방식을 집계하여 사이트를 개선합니다.",
      personalization: "맞춤화",
      personalizationDetail: "설정을 기억하여 보이는 내용을 맞춥니다.",
      marketing: "마케팅",
      marketingDetail: "캠페인 효과를 측정하고 관련 혜택을 보여 줍니다.",
      acceptAll: "모두 허용",
      necessaryOnly: "필수만 허용",
      choose: "직접 선택",
      legend: "허용할 항목 선택",
      save: "선택 저장",
      close: "닫기",
      saved: "쿠키 선택이 저장되었습니다.",
      failed: "선택을 저장하지 못했습니다. 우선 이 기기에서만 적용됩니다."
    }
  };
  function pickLang() {
    var wanted = [me && me.getAttribute("data-lang"), document.documentElement.lang, navigator.language];
    for (var i = 0; i < wanted.length; i++) {
      var code = (wanted[i] || "").slice(0, 2).toLowerCase();
      if (STRINGS[code]) return code;
    }
    return "en";
  }
  var lang = pickLang();
  function t(key) { return STRINGS[lang][key] || STRINGS.en[key]; }

  // --- storage on the embedding site: localStorage, else a first-party cookie
  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return null;
  }
  function writeCookie(name, value) {
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + YEAR + "; Path=/; SameSite=Lax" + secure;
  }
  function load(key, cookie) {
    try {
      var value = window.localStorage.getItem(key);
      if (value !== null) return value;
    } catch (_) { /* storage refused */ }
    return readCookie(cookie);
  }
  function save(key, cookie, value) {
    try {
      window.localStorage.setItem(key, value);
      return;
    } catch (_) { /* storage refused: fall back to a first-party cookie */ }
    writeCookie(cookie, value);
  }

  function newDeviceId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var hex = "";
    for (var i = 0; i < bytes.length; i++) hex += (bytes[i] + 256).toString(16).slice(1);
    return "web-" + hex;
  }
  function deviceId() {
    var id = load(DEVICE_KEY, COOKIE_DEVICE);
    if (!id || !/^[\x21-\x7e]{1,128}$/.test(id)) {
      id = newDeviceId();
      save(DEVICE_KEY, COOKIE_DEVICE, id);
    }
    return id;
  }

  function normalise(raw) {
    if (!raw || typeof raw !== "object") return null;
    return { necessary: true, analytics: raw.analytics === true,
      personalization: raw.personalization === true, marketing: raw.marketing === true,
      at: typeof raw.at === "string" ? raw.at : null };
  }
  var choice = null;
  try { choice = normalise(JSON.parse(load(CHOICE_KEY, COOKIE_CHOICE) || "null")); } catch (_) { choice = null; }

  // --- the API
  // Registered (trusted) documents, schema/trusted/Banner*.graphql: sent with their SHA-256 so
  // a server that accepts only trusted documents from anonymous callers takes them.
  function gql(doc, variables) {
    return fetch(api + "/graphql", {
      method: "POST", mode: "cors", credentials: "omit", cache: "no-store",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: doc.text, variables: variables,
        extensions: { persistedQuery: { version: 1, sha256Hash: doc.sha256 } } })
    }).then(function (response) { return response.json(); }).then(function (body) {
      if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
      return body.data;
    });
  }
  var SET = {
    text: "mutation BannerCookieChoice($d: String!, $a: Boolean!, $p: Boolean!, $m: Boolean!) { setCookiePreferences(" +
      "deviceId: $d, analytics: $a, personalization: $p, marketing: $m) { analytics personalization marketing at } }",
    sha256: "a72f677540bf8f5897ba60202fd1afe17e4a929f029183156f21772267a9ddc6"
  };
  var READ = {
    text: "query BannerCookieRead($d: String!) { cookiePreferences(deviceId: $d) { analytics personalization marketing at } }",
    sha256: "c20f4cd77563499c4c822653b1147e7303932eae29ab2d009a587b76e4c86685"
  };

  // --- gated scripts
  function categoriesOf(el) {
    return (el.getAttribute("data-consent") || "").split(/[\s,]+/).filter(Boolean);
  }
  function allowed(category) {
    if (category === "necessary") return true;
    return Boolean(choice && OPTIONAL.indexOf(category) >= 0 && choice[category] === true);
  }
  function activate(root) {
    var tagged = (root || document).querySelectorAll('script[type="text/plain"][data-consent]:not([data-consentry-done])');
    Array.prototype.forEach.call(tagged, function (original) {
      var cats = categoriesOf(original);
      if (!cats.length || !cats.every(allowed)) return;
      var real = document.createElement("script");
      Array.prototype.forEach.call(original.attributes, function (attr) {
        if (attr.name === "type" || attr.name === "data-type") return;
        real.setAttribute(attr.name, attr.value);
      });
      var type = original.getAttribute("data-type");
      if (type) real.type = type;
      if (!original.src) real.text = original.text; // inline: runs only if the site's CSP allows it
      real.setAttribute("data-consentry-done", "activated");
      original.setAttribute("data-consentry-done", "moved");
      original.parentNode.insertBefore(real, original.nextSibling);
    });
  }

  function announce(name) {
    var detail = snapshot();
    var event;
    try {
      event = new CustomEvent(name || "consentry:change", { detail: detail });
    } catch (_) {
      event = document.createEvent("CustomEvent");
      event.initCustomEvent(name || "consentry:change", false, false, detail);
    }
    window.dispatchEvent(event);
  }
  function snapshot() {
    return choice ? { necessary: true, analytics: choice.analytics, personalization: choice.personalization,
      marketing: choice.marketing, at: choice.at } : null;
  }

  function apply(next, eventName) {
    choice = normalise(next);
    save(CHOICE_KEY, COOKIE_CHOICE, JSON.stringify(snapshot()));
    activate();
    announce(eventName);
  }

  // --- the banner
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) {
      if (attrs[name] === null || attrs[name] === false) continue;
      if (name === "text") node.textContent = attrs[name];
      else node.setAttribute(name, attrs[name] === true ? "" : attrs[name]);
    }
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  var banner = null;
  var styled = false;
  function stylesheet() {
    if (document.querySelector("link[data-consentry-style]")) { styled = true; return; }
    var link = el("link", { rel: "stylesheet", href: api + "/static/banner/consent.css", "data-consentry-style": true });
    link.addEventListener("load", function () { styled = true; if (banner && banner.getAttribute("data-open") === "1") banner.hidden = false; });
    link.addEventListener("error", function () { styled = true; if (banner && banner.getAttribute("data-open") === "1") banner.hidden = false; });
    (document.head || document.documentElement).appendChild(link);
  }

  function build() {
    var status = el("p", { "class": "consentry-status", role: "status", "aria-live": "polite" });
    var boxes = {};
    var options = el("fieldset", { "class": "consentry-options", hidden: true }, [el("legend", { text: t("legend") })]);
    CATEGORIES.forEach(function (cat) {
      var id = "consentry-cat-" + cat;
      var box = el("input", { type: "checkbox", id: id, name: cat, checked: cat === "necessary" || allowed(cat),
        disabled: cat === "necessary", "aria-describedby": id + "-detail" });
      boxes[cat] = box;
      options.appendChild(el("div", { "class": "consentry-option" }, [
        box,
        el("label", { "for": id, text: t(cat) }),
        el("p", { id: id + "-detail", "class": "consentry-detail", text: t(cat + "Detail") })
      ]));
    });
    function button(key, cls, onClick) {
      var b = el("button", { type: "button", "class": "consentry-button " + cls, text: t(key) });
      b.addEventListener("click", onClick);
      return b;
    }
    var saveButton = button("save", "consentry-primary", function () {
      record({ analytics: boxes.analytics.checked, personalization: boxes.personalization.checked,
        marketing: boxes.marketing.checked });
    });
    saveButton.hidden = true;
    var chooseButton = button("choose", "consentry-secondary", function () {
      options.hidden = false;
      saveButton.hidden = false;
      chooseButton.hidden = true;
      boxes.analytics.focus();
    });
    var actions = el("div", { "class": "consentry-actions" }, [
      button("acceptAll", "consentry-primary", function () {
        record({ analytics: true, personalization: true, marketing: true });
      }),
      button("necessaryOnly", "consentry-primary", function () {
        record({ analytics: false, personalization: false, marketing: false });
      }),
      chooseButton, saveButton
    ]);
    var root = el("section", { "class": "consentry-banner", role: "region",
      "aria-labelledby": "consentry-title", lang: lang, hidden: true }, [
      el("h2", { id: "consentry-title", "class": "consentry-title", text: t("title") }),
      el("p", { "class": "consentry-text", text: t("text") }),
      options, actions, status
    ]);
    root.consentryBoxes = boxes;
    root.consentryStatus = status;
    return root;
  }

  var opener = null;
  function show(fromVisitor) {
    if (!document.body) return;
    if (!banner) {
      banner = build();
      document.body.appendChild(banner);
    }
    CATEGORIES.forEach(function (cat) {
      banner.consentryBoxes[cat].checked = cat === "necessary" || allowed(cat);
    });
    banner.setAttribute("data-open", "1");
    if (styled) banner.hidden = false;
    if (fromVisitor === true) {
      // Opened on request (not on arrival): take focus, give it back when done.
      opener = document.activeElement;
      var first = banner.querySelector("button:not([hidden])");
      if (first) first.focus();
    }
  }
  function hide() {
    if (!banner) return;
    banner.setAttribute("data-open", "0");
    banner.hidden = true;
    if (opener && opener.focus && document.contains(opener)) opener.focus();
    opener = null;
  }

  var pending = null;
  function record(next) {
    var device = deviceId();
    apply(next);  // the choice applies at once on this device; the record follows
    hide();
    pending = gql(SET, { d: device, a: next.analytics, p: next.personalization, m: next.marketing })
      .then(function (data) {
        choice.at = data.setCookiePreferences.at;
        save(CHOICE_KEY, COOKIE_CHOICE, JSON.stringify(snapshot()));
        return snapshot();
      }, function (error) {
        if (banner) { show(); banner.consentryStatus.textContent = t("failed"); }
        throw error;
      });
    return pending;
  }

  function start() {
    stylesheet();
    activate();
    document.addEventListener("click", function (event) {
      var target = event.target && event.target.closest ? event.target.closest("[data-consentry-open]") : null;
      if (target) { event.preventDefault(); show(true); }
    });
    document.addEventListener("keydown", function (event) {
      // Escape closes a reopened banner; on first arrival a choice is still needed.
      if (event.key === "Escape" && choice && banner && !banner.hidden) hide();
    });
    if (window.MutationObserver) {
      new MutationObserver(function () { activate(); }).observe(document.documentElement, { childList: true, subtree: true });
    }
    if (choice) {
      announce("consentry:ready");
      return;
    }
    var known = load(DEVICE_KEY, COOKIE_DEVICE);
    if (!known) { show(); return; }
    // A device id without a local choice (storage cleared in part): ask the API.
    gql(READ, { d: known }).then(function (data) {
      if (data.cookiePreferences) apply(data.cookiePreferences, "consentry:ready");
      else show();
    }, function () { show(); });
  }

  window.consentry = {
    version: 1,
    api: api,
    categories: CATEGORIES.slice(),
    allowed: allowed,
    choice: snapshot,
    deviceId: deviceId,
    open: function () { show(true); },
    close: hide,
    /** Record a choice from the site's own controls; resolves once the API has it. */
    set: function (next) { return record(normalise(next) || {}); },
    /** The last save to the API (a Promise), or null before any. */
    saved: function () { return pending; }
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
