"""``python -m schema.trusted``: write ``manifest.json`` from the ``*.graphql`` files, and the
pages' name -> hash map (``api/service/static/common/trusted.js``) from the manifest."""

from __future__ import annotations

from schema.trusted import CLIENT_MAP, MANIFEST, build, render, render_client_map

if __name__ == "__main__":
    manifest = build()
    MANIFEST.write_text(render(manifest), encoding="utf-8")
    CLIENT_MAP.write_text(render_client_map(manifest), encoding="utf-8")
    print(f"{MANIFEST}: {len(manifest)} trusted document(s); {CLIENT_MAP} written")
