// The one way pages talk to the API: POST /graphql on this origin, JSON in and out.
// Tokens live in memory and sessionStorage (gone when the tab closes), never localStorage.
// Anonymous and member operations are registered documents (schema/trusted/*.graphql), sent
// by name as their SHA-256 only (gqlTrusted, trustedData): a server with
// CONSENTRY_TRUSTED_DOCUMENTS_ONLY=true refuses any other document from those callers. gql and
// gqlData send a document's text: for admins, who keep ad-hoc documents.

import { TRUSTED } from "./trusted.js";

const STORE_KEY = "consentry.session";

/** An error answered by the API: `code` is the contract code, `field` the input it concerns. */
export class ApiError extends Error {
  constructor(message, code = "INTERNAL", field = null) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.field = field;
  }

  static from(error) {
    const ext = (error && error.extensions) || {};
    return new ApiError((error && error.message) || "error", ext.code || "INTERNAL", ext.field || null);
  }
}

let current = null;
try {
  const saved = sessionStorage.getItem(STORE_KEY);
  current = saved ? JSON.parse(saved) : null;
} catch (_) {
  current = null;
}

/** The signed-in session: {token, refreshToken, role} or null. */
export const session = {
  get() {
    return current;
  },
  set({ token, refreshToken, role }) {
    current = { token, refreshToken, role };
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify(current));
    } catch (_) {
      // storage refused (private mode): the session lives in memory only
    }
  },
  clear() {
    current = null;
    try {
      sessionStorage.removeItem(STORE_KEY);
    } catch (_) {
      // nothing stored
    }
  },
};

/** The request body naming the registered operation `name` by its hash (no text). */
function registered(name, variables) {
  const sha256Hash = TRUSTED[name];
  // A name missing from the map is a page bug: fail here rather than send an ad-hoc document.
  if (!sha256Hash) throw new Error(`${name} is not a registered document (schema/trusted/)`);
  return { operationName: name, variables, extensions: { persistedQuery: { version: 1, sha256Hash } } };
}

async function post(payload, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch("/graphql", {
    method: "POST",
    headers,
    body: JSON.stringify(payload),
    credentials: "omit",
    cache: "no-store",
  });
  try {
    return await response.json();
  } catch (_) {
    return { data: null, errors: [{ message: `HTTP ${response.status}`, extensions: { code: "INTERNAL" } }] };
  }
}

const unauthenticated = (body) =>
  (body.errors || []).some((e) => e.extensions && e.extensions.code === "UNAUTHENTICATED");

let refreshing = null;

async function refreshSession() {
  const s = session.get();
  if (!s || !s.refreshToken) return false;
  if (!refreshing) {
    refreshing = post(registered("SessionRefresh", { r: s.refreshToken }), null).finally(() => {
      refreshing = null;
    });
  }
  const body = await refreshing;
  const payload = body.data && body.data.refresh;
  if (!payload) {
    session.clear();
    return false;
  }
  session.set({ token: payload.accessToken, refreshToken: payload.refreshToken, role: payload.role });
  return true;
}

// Without an explicit `token`, the stored session's token is sent, and an UNAUTHENTICATED
// answer is retried once after refreshing the session.
async function run(payload, token) {
  const explicit = token !== undefined;
  const used = explicit ? token : (session.get() || {}).token;
  const body = await post(payload, used);
  if (!explicit && used && unauthenticated(body) && (await refreshSession())) {
    return post(payload, session.get().token);
  }
  return body;
}

function dataOf(body) {
  if (body.errors && body.errors.length) throw ApiError.from(body.errors[0]);
  return body.data;
}

/** Run an ad-hoc GraphQL document (admins); resolves to the parsed body ({data, errors}). */
export async function gql(query, variables = {}, { token } = {}) {
  return run({ query, variables }, token);
}

/** As gql, but resolves to `data` and rejects with the first error as an ApiError. */
export async function gqlData(query, variables = {}, options = {}) {
  return dataOf(await gql(query, variables, options));
}

/**
 * Run the registered operation `name` (schema/trusted/<name>.graphql), sent by its hash;
 * resolves to the parsed body ({data, errors}). Tokens as for gql.
 */
export async function gqlTrusted(name, variables = {}, { token } = {}) {
  return run(registered(name, variables), token);
}

/** As gqlTrusted, but resolves to `data` and rejects with the first error as an ApiError. */
export async function trustedData(name, variables = {}, options = {}) {
  return dataOf(await gqlTrusted(name, variables, options));
}
