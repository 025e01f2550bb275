"""A statement's parameters as the client sent them: the raw Bind values in the
client's own formats, the parameter types PostgreSQL inferred at Parse, and the
result formats the client asked for. The proxy's own statements reuse them as they
are, so nothing is decoded or re-encoded."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from proxy.wire.messages.bind import Bind


@dataclass(frozen=True, slots=True)
class StatementParams:
    bind: Bind | None = None  # None: a simple Query (no parameters, text results)
    param_types: tuple[int, ...] = ()

    @classmethod
    def of(cls, bind: Bind, param_types: tuple[int, ...]) -> StatementParams:
        return cls(bind, param_types)

    @property
    def result_formats(self) -> tuple[int, ...]:
        return self.bind.result_formats if self.bind is not None else ()


#: No parameters: a simple Query, or a statement of the proxy's own.
NO_PARAMS = StatementParams()


#: Marks a Decimal's digits in JSON text until they are unquoted: NUL cannot occur
#: in any PostgreSQL text or jsonb value, so the marker cannot collide with data.
_NUMBER = re.compile(r'"\\u0000([-+0-9.eE]+)\\u0000"')


def _mark_decimal(value: object) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return f"\0{value}\0"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_exact(value: object) -> str:
    """JSON text in which Decimals (exact numbers read from PostgreSQL with
    ``loads_exact``) are numbers with all their digits, not floats."""
    return _NUMBER.sub(r"\1", json.dumps(value, default=_mark_decimal))


def loads_exact(text: str) -> Any:
    """JSON text with its non-integer numbers as Decimals (``numeric`` values keep
    every digit; a float would round 12345678901234567890.123456789)."""
    return json.loads(text, parse_float=Decimal)


def json_param(value: object) -> StatementParams:
    """One parameter of unspecified type carrying ``value`` as JSON text (``$1::jsonb``)."""
    return StatementParams(Bind("", "", (), (dumps_exact(value).encode(),), ()), (0,))


def text_params(*values: str, encoding: str = "utf-8") -> StatementParams:
    """Parameters of unspecified type carrying ``values`` as text (in the session's
    client encoding)."""
    return StatementParams(
        Bind("", "", (), tuple(value.encode(encoding, "surrogateescape") for value in values), ()),
        (0,) * len(values),
    )
