"""argon2 runs off the event loop: a hash or a check costs tens of milliseconds of CPU, and on
the loop it would hold up every other request of the process for that long."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from api.core.errors import Unauthenticated
from api.members import auth, records
from tests.conftest import PASSWORD


class _Recording(ThreadPoolExecutor):
    """The loop's default executor, naming each function handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.ran: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        # asyncio.to_thread hands over functools.partial(context.run, func, *args)
        inner = fn.args[0] if isinstance(fn, functools.partial) and fn.args else fn
        self.ran.append(getattr(inner, "__qualname__", repr(inner)))
        return super().submit(fn, *args, **kwargs)


@contextmanager
def _recorded() -> Iterator[_Recording]:
    loop = asyncio.get_running_loop()
    executor = _Recording()
    loop.set_default_executor(executor)
    try:
        yield executor
    finally:
        loop.set_default_executor(ThreadPoolExecutor())
        executor.shutdown(wait=True)


async def test_registration_and_sign_in_hash_and_check_on_a_worker_thread(rt):
    with _recorded() as executor:
        await records.register(rt, user_id="offloop01", email="offloop01@example.org",
                               full_name="Off Loop", password=PASSWORD)
        assert executor.ran.count("PasswordHasher.hash") == 1
        await auth.login(rt, "offloop01", PASSWORD)
        with pytest.raises(Unauthenticated):
            await auth.login(rt, "offloop01", PASSWORD + "x")
        with pytest.raises(Unauthenticated):
            await auth.login(rt, "nobody-here", PASSWORD)  # the dummy check, same cost
    assert executor.ran.count("_verify") == 3
