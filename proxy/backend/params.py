"""A statement's parameters as the client sent them: the raw Bind values in the
client's own formats, the parameter types PostgreSQL inferred at Parse, and the
result formats the client asked for. The proxy's own statements reuse them as they
are, so nothing is decoded or re-encoded."""

from __future__ import annotations

import json
from dataclasses import dataclass

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


def json_param(value: object) -> StatementParams:
    """One parameter of unspecified type carrying ``value`` as JSON text (``$1::jsonb``)."""
    return StatementParams(Bind("", "", (), (json.dumps(value).encode(),), ()), (0,))


def text_params(*values: str) -> StatementParams:
    """Parameters of unspecified type carrying ``values`` as text."""
    return StatementParams(
        Bind("", "", (), tuple(value.encode() for value in values), ()), (0,) * len(values)
    )
