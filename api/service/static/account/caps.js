// Which optional parts of the API this server serves (v2 blocks land one capability at a time).
// One request: a document whose executed operation is `{ __typename }` and whose other
// operations name every optional field. Validation covers the whole document, so each unknown
// field comes back as "Cannot query field 'x' on type 'T'" and nothing else runs. Works with
// introspection off (production). Screens ask has("Type.field") and stay hidden when absent.

const PROBE = `
query probe { __typename }
mutation probeMutations {
  verifyEmail(token: "-")
  requestPasswordReset(email: "-")
  resetPassword(token: "-", newPassword: "-")
  resendEmailVerification
  signOutEverywhere
  revokeSession(id: "-")
  objectToPartner(partnerId: "-") { partnerId }
  withdrawMembership(password: "-") { receipt }
  changePassword(currentPassword: "-", newPassword: "-")
  beginPasskeyRegistration
  finishPasskeyRegistration(credential: {}) { id }
  removePasskey(id: "-")
  beginPasskeyLogin
  finishPasskeyLogin(credential: {}) { accessToken }
}
query probeMember {
  me {
    emailVerified pendingEmail
    sessions { id }
    passkeys { id }
    upcomingDisclosures { partnerId }
    disclosures { deletionDueAt deletionConfirmedAt }
  }
}`;

const NAMES = [
  "Mutation.verifyEmail", "Mutation.requestPasswordReset", "Mutation.resetPassword",
  "Mutation.resendEmailVerification", "Mutation.signOutEverywhere", "Mutation.revokeSession",
  "Mutation.objectToPartner", "WithdrawalReceipt.receipt", "Member.emailVerified",
  "Member.pendingEmail", "Member.sessions", "Member.upcomingDisclosures",
  "Disclosure.deletionDueAt", "Disclosure.deletionConfirmedAt", "Mutation.changePassword",
  "Mutation.beginPasskeyRegistration", "Mutation.finishPasskeyRegistration", "Mutation.removePasskey",
  "Mutation.beginPasskeyLogin", "Mutation.finishPasskeyLogin", "Member.passkeys",
];

/** Resolves to a Set of the "Type.field" names served. */
export async function probe() {
  let body;
  try {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: PROBE, operationName: "probe" }),
      credentials: "omit",
    });
    body = await response.json();
  } catch (_) {
    return new Set();
  }
  if (body.data && body.data.__typename) return new Set(NAMES);
  const missing = new Set();
  for (const error of body.errors || []) {
    const match = /Cannot query field ['"](\w+)['"] on type ['"](\w+)['"]/.exec(error.message || "");
    if (match) missing.add(`${match[2]}.${match[1]}`);
    // A validation error about a served field's arguments still means the field is served; a
    // refusal of the request itself (no location in the document) tells nothing: assume none.
    else if (!error.locations) return new Set();
  }
  return new Set(NAMES.filter((name) => !missing.has(name)));
}
