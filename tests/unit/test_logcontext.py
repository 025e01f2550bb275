"""Log lines name the session whose task logged them, and only that session."""

from __future__ import annotations

import asyncio
import logging

from proxy.logcontext import ContextFilter, for_session, set_backend_pid, set_xid
from proxy.server import TEXT_FORMAT


def _record(message: str) -> logging.LogRecord:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    ContextFilter().filter(record)
    return record


async def test_each_sessions_tasks_carry_its_own_fields() -> None:
    records: dict[str, logging.LogRecord] = {}

    async def statement(name: str, xid: int) -> None:
        set_xid(xid)
        await asyncio.sleep(0)  # interleave with the other session
        records[name] = _record(name)
        set_xid(None)

    loop = asyncio.get_running_loop()
    first, second = for_session("7.1"), for_session("7.2")
    set_backend_pid(first, 4242)
    await asyncio.gather(
        loop.create_task(statement("a", 10), context=first),
        loop.create_task(statement("b", 11), context=second),
    )
    a, b = records["a"], records["b"]
    assert (a.session, a.backend_pid, a.xid) == ("7.1", 4242, 10)  # type: ignore[attr-defined]
    assert (b.session, b.xid) == ("7.2", 11) and not hasattr(b, "backend_pid")  # type: ignore[attr-defined]
    text = logging.Formatter(TEXT_FORMAT, defaults={"context": ""}).format(a)
    assert text.endswith("t: a [session=7.1 backend_pid=4242 xid=10]")


def test_a_line_outside_any_session_has_no_fields() -> None:
    record = _record("plain")
    assert record.context == "" and not hasattr(record, "session")  # type: ignore[attr-defined]


def test_fields_given_with_extra_are_kept() -> None:
    context = for_session("9.9")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None)
    record.session = "explicit"
    context.run(ContextFilter().filter, record)
    assert record.session == "explicit"
