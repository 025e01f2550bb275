"""ParameterStatus ('S'): the server reports a run-time parameter's current value (at
startup, and whenever a reported one such as ``client_encoding`` changes)."""

from __future__ import annotations

CLIENT_ENCODING = "client_encoding"


def parse_parameter_status(body: bytes) -> tuple[str, str]:
    """The parameter's name and value (both ASCII for the parameters that matter)."""
    name_end = body.index(b"\0")
    value_end = body.index(b"\0", name_end + 1)
    return (
        body[:name_end].decode("ascii", "replace"),
        body[name_end + 1 : value_end].decode("ascii", "replace"),
    )
