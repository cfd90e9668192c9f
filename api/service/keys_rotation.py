"""``consentry keys rotate``: re-wrap every data key and sealed secret under the active KEK.

Field ciphertexts are never touched: only the small wrapped keys change, so rotation cost is
one row per member, whatever the size of their data.
"""

from __future__ import annotations

from api.members import vault
from api.models.member import Admin, MemberKey
from api.models.partner import Partner
from api.platform.runtime import Runtime
from api.security.envelope import rewrap
from api.security.sealed import reseal

__all__ = ["rotate"]


async def rotate(rt: Runtime, batch: int = 500) -> dict[str, int]:
    active = rt.keys.active_kek
    counts = {"member_keys": 0, "admins": 0, "partners": 0, "vault_records": 0}
    while True:
        rows = await MemberKey.exclude(kek_version=active).limit(batch)
        if not rows:
            break
        for row in rows:
            wrapped, version = rewrap(rt.keys, row.wrapped, row.kek_version, str(row.member_id))
            await MemberKey.filter(member_id=row.member_id, kek_version=row.kek_version).update(
                wrapped=wrapped, kek_version=version)
            counts["member_keys"] += 1
    for admin in await Admin.all():
        new = reseal(rt.keys, f"totp/{admin.id}", admin.totp_secret_ct)
        if new is not None:
            await Admin.filter(id=admin.id).update(totp_secret_ct=new)
            counts["admins"] += 1
    for partner in await Partner.exclude(config_ct=None):
        if partner.config_ct is None:
            continue  # excluded by the query; narrows the type
        new = reseal(rt.keys, f"partner-config/{partner.id}", partner.config_ct)
        if new is not None:
            await Partner.filter(id=partner.id).update(config_ct=new)
            counts["partners"] += 1
    counts["vault_records"] = await vault.rewrap_all(rt, batch)
    return counts
