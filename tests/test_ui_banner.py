"""The embeddable cookie banner (/consent.js): the read-back query it uses, then the banner on a
page of another origin in Chromium, through a real ``consentry serve``: a script tagged
``type="text/plain" data-consent="analytics"`` runs only after analytics is accepted, the
choice is recorded under the device id and reads back through the API, axe-core passes."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import error_code
from tests.helpers_browser import axe_check, chromium, require_browser, screenshot
from tests.helpers_serve import free_port, serve

READ = """query($d: String!) { cookiePreferences(deviceId: $d) {
  deviceId necessary analytics personalization marketing } }"""
SET = """mutation($d: String!, $a: Boolean!, $p: Boolean!, $m: Boolean!) {
  setCookiePreferences(deviceId: $d, analytics: $a, personalization: $p, marketing: $m) { at } }"""


async def test_cookie_preferences_read_back_by_device_id(gql):
    assert (await gql(READ, {"d": "device-unknown"}))["data"]["cookiePreferences"] is None
    await gql(SET, {"d": "device-1", "a": True, "p": False, "m": False})
    await gql(SET, {"d": "device-1", "a": True, "p": True, "m": False})
    await gql(SET, {"d": "device-2", "a": False, "p": False, "m": True})
    body = await gql(READ, {"d": "device-1"})
    assert body["data"]["cookiePreferences"] == {
        "deviceId": "device-1", "necessary": True, "analytics": True, "personalization": True,
        "marketing": False}


async def test_cookie_preferences_refuses_a_bad_device_id(gql):
    body = await gql(READ, {"d": " padded "})
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "deviceId"
