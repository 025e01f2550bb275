"""Which session, transaction and vendor request a log line is about.

A session's work runs in tasks created with the session's own ``contextvars.Context``
(``for_session``), so every line logged on its behalf — by the write path, the
connectors, the journal — carries the session id and, once known, the upstream
backend's pid (what PostgreSQL's own log shows as ``%p``) and the transaction id of
the synced statement, without passing them through every call. ``ContextFilter`` puts
them on each record; the JSON format prints them as fields, the text format appends
them. Vendor request ids are passed per line with ``extra`` (they belong to one call).
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os

_session: contextvars.ContextVar[str | None] = contextvars.ContextVar("wp_session", default=None)
_backend_pid: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "wp_backend_pid", default=None
)
_xid: contextvars.ContextVar[int | None] = contextvars.ContextVar("wp_xid", default=None)
_numbers = itertools.count(1)


def new_session_id() -> str:
    """Unique among this host's workers: the worker's pid and a counter."""
    return f"{os.getpid()}.{next(_numbers)}"


def for_session(session_id: str) -> contextvars.Context:
    """A context for a session's tasks, carrying its id."""
    context = contextvars.copy_context()
    context.run(_session.set, session_id)
    context.run(_backend_pid.set, None)
    context.run(_xid.set, None)
    return context


def set_backend_pid(context: contextvars.Context, pid: int) -> None:
    context.run(_backend_pid.set, pid)


def set_xid(xid: int | None) -> None:
    """The transaction of the synced statement running in the current task."""
    _xid.set(xid)


def fields() -> dict[str, object]:
    """The current context's fields (only those that are set)."""
    found: dict[str, object] = {}
    if (session := _session.get()) is not None:
        found["session"] = session
    if (pid := _backend_pid.get()) is not None:
        found["backend_pid"] = pid
    if (xid := _xid.get()) is not None:
        found["xid"] = xid
    return found


class ContextFilter(logging.Filter):
    """Adds the session's fields to every record (a handler filter: records from any
    logger get them), and a text ``context`` suffix for the plain format."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = fields()
        for key, value in found.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        record.context = (
            " [" + " ".join(f"{k}={v}" for k, v in found.items()) + "]" if found else ""
        )
        return True


__all__ = [
    "ContextFilter",
    "fields",
    "for_session",
    "new_session_id",
    "set_backend_pid",
    "set_xid",
]
