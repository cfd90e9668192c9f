"""``python -m schema.trusted``: write ``manifest.json`` from the ``*.graphql`` files."""

from __future__ import annotations

from schema.trusted import MANIFEST, build, render

if __name__ == "__main__":
    manifest = build()
    MANIFEST.write_text(render(manifest), encoding="utf-8")
    print(f"{MANIFEST}: {len(manifest)} trusted document(s)")
