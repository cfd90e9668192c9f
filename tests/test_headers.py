"""Headers read from the raw ASGI list answer as starlette's ``Headers.get`` does."""

from __future__ import annotations

from api.core.headers import first_values

SCOPE = {"headers": [(b"accept", b"text/html"), (b"x-request-id", b"first"),
                     (b"content-type", b"application/json"), (b"x-request-id", b"second")]}


def test_the_first_occurrence_of_each_name_in_the_order_asked():
    assert first_values(SCOPE, b"x-request-id", b"accept") == [b"first", b"text/html"]
    assert first_values(SCOPE, b"x-request-id", b"authorization") == [b"first", b""]


def test_a_header_the_request_does_not_carry_is_empty():
    assert first_values(SCOPE, b"authorization", b"content-type") == [b"", b"application/json"]
    assert first_values({}, b"accept") == [b""]
