// The one way pages talk to the API: POST /graphql on this origin, JSON in and out.
// Tokens live in memory and sessionStorage (gone when the tab closes), never localStorage.

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

async function post(query, variables, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch("/graphql", {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
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
    refreshing = post(
      "mutation($r: String!) { refresh(refreshToken: $r) { accessToken refreshToken role } }",
      { r: s.refreshToken },
      null,
    ).finally(() => {
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

/**
 * Run a GraphQL operation; resolves to the parsed body ({data, errors}).
 * Without an explicit `token`, the stored session's token is sent, and an UNAUTHENTICATED
 * answer is retried once after refreshing the session.
 */
export async function gql(query, variables = {}, { token } = {}) {
  const explicit = token !== undefined;
  const used = explicit ? token : (session.get() || {}).token;
  const body = await post(query, variables, used);
  if (!explicit && used && unauthenticated(body) && (await refreshSession())) {
    return post(query, variables, session.get().token);
  }
  return body;
}

/** As gql, but resolves to `data` and rejects with the first error as an ApiError. */
export async function gqlData(query, variables = {}, options = {}) {
  const body = await gql(query, variables, options);
  if (body.errors && body.errors.length) throw ApiError.from(body.errors[0]);
  return body.data;
}
