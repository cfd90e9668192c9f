// Consent (and withdrawal) receipts are compact JWS signed with the service's Ed25519 key.
// The page checks them itself against /.well-known/jwks.json with WebCrypto: a receipt shown as
// "verified" was signed by the key this service publishes, not merely displayed by it.

function b64urlBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** The decoded header and claims of a compact JWS (no check). */
export function decode(jws) {
  const [header, payload] = jws.split(".");
  const text = (part) => new TextDecoder().decode(b64urlBytes(part));
  return { header: JSON.parse(text(header)), claims: JSON.parse(text(payload)) };
}

let keysPromise = null;

function publishedKeys() {
  if (!keysPromise) {
    keysPromise = fetch("/.well-known/jwks.json", { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : { keys: [] }))
      .catch(() => ({ keys: [] }));
  }
  return keysPromise;
}

/** True when `jws` carries a valid EdDSA signature by a key in the service's JWKS. */
export async function verifyReceipt(jws) {
  try {
    const parts = jws.split(".");
    if (parts.length !== 3) return false;
    const { header } = decode(jws);
    if (header.alg !== "EdDSA") return false;
    const { keys } = await publishedKeys();
    const candidates = keys.filter((k) => k.kty === "OKP" && k.crv === "Ed25519" && (!header.kid || k.kid === header.kid));
    for (const jwk of candidates) {
      const key = await crypto.subtle.importKey(
        "jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
      const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, b64urlBytes(parts[2]), signed)) return true;
    }
    return false;
  } catch (_) {
    return false; // malformed receipt or a browser without Ed25519: never claim "verified"
  }
}
