"""Cookie choices per device over HTTP: no token needed, necessary always on, every change kept."""

from __future__ import annotations

from api.consent import cookies
from api.models.consent import CookieChoice
from tests.conftest import error_code

SET = """mutation($d: String!, $a: Boolean!, $p: Boolean!, $m: Boolean!) {
  setCookiePreferences(deviceId: $d, analytics: $a, personalization: $p, marketing: $m) {
    deviceId necessary analytics personalization marketing at } }"""


def choice(device: str, a: bool = False, p: bool = False, m: bool = False) -> dict:
    return {"d": device, "a": a, "p": p, "m": m}


async def test_anonymous_device_choices_are_stored(gql, clock):
    body = await gql(SET, choice("dev-123", a=True))
    prefs = body["data"]["setCookiePreferences"]
    assert prefs == {"deviceId": "dev-123", "necessary": True, "analytics": True,
                     "personalization": False, "marketing": False,
                     "at": clock.now().isoformat()}
    row = await CookieChoice.get(device_id="dev-123")
    assert row.member_id is None and row.analytics and not row.marketing


async def test_each_change_is_kept_and_the_latest_is_in_force(gql, clock):
    await gql(SET, choice("dev-A", a=True, p=True, m=True))
    first_at = clock.now()
    clock.advance(days=3)
    await gql(SET, choice("dev-A", a=False, p=True, m=False))
    await gql(SET, choice("dev-B", m=True))
    rows = await CookieChoice.filter(device_id="dev-A").order_by("at")
    assert [(r.analytics, r.personalization, r.marketing) for r in rows] == [
        (True, True, True), (False, True, False)]
    assert rows[0].at == first_at and rows[1].at == clock.now()
    current = await cookies.current_for_device("dev-A")
    assert (current.analytics, current.personalization, current.marketing) == (False, True, False)
    other = await cookies.current_for_device("dev-B")
    assert other.marketing and not other.analytics


async def test_same_instant_changes_keep_their_order(gql):
    for flag in (True, False, True, False):
        await gql(SET, choice("dev-fast", a=flag))
    assert (await cookies.current_for_device("dev-fast")).analytics is False


async def test_signed_in_member_choice_is_linked(gql, member):
    body = await gql(SET, choice("phone-1", p=True), token=member.token)
    assert body["data"]["setCookiePreferences"]["personalization"] is True
    linked = await cookies.for_member(member.id)
    assert [c.device_id for c in linked] == ["phone-1"]
    assert linked[0].member_id == member.id


async def test_bad_device_id_is_refused(gql):
    for device in ("", "x" * 129, "dev\nid", "dev\x00", " padded ", "dévice"):
        body = await gql(SET, choice(device))
        assert error_code(body) == "BAD_USER_INPUT", (device, body)
    assert await CookieChoice.all().count() == 0
    assert "errors" not in await gql(SET, choice("x" * 128))


async def test_bad_token_is_refused_not_ignored(gql, admin):
    assert error_code(await gql(SET, choice("dev-1"), token="garbage")) == "UNAUTHENTICATED"
    assert error_code(await gql(SET, choice("dev-1"), token=admin.token)) == "FORBIDDEN"
    assert await CookieChoice.all().count() == 0


async def test_cookie_choice_is_audited_without_the_device_id(gql):
    from api.models.audit import AuditEntry

    await gql(SET, choice("device-secret-42", m=True))
    entry = await AuditEntry.get(action="cookies.set")
    assert entry.actor == "device"
    assert "device-secret-42" not in f"{entry.subject}{entry.detail}"
