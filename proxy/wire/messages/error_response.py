"""ErrorResponse ('E') and NoticeResponse ('N'): built for errors the proxy itself
raises, parsed when the proxy needs to read an upstream error."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.wire.framing import message

#: Field codes as in PostgreSQL's protocol documentation.
FIELD_CODES = {
    "severity": b"S",
    "severity_nonlocalized": b"V",
    "sqlstate": b"C",
    "message": b"M",
    "detail": b"D",
    "hint": b"H",
    "position": b"P",
    "schema_name": b"s",
    "table_name": b"t",
    "column_name": b"c",
    "constraint_name": b"n",
}
_NAMES_BY_CODE = {code[0]: name for name, code in FIELD_CODES.items()}


@dataclass(frozen=True)
class PgError:
    """The fields of an ErrorResponse the proxy raises on its own behalf."""

    sqlstate: str
    message: str
    severity: str = "ERROR"
    detail: str | None = None
    hint: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def encode(self, kind: bytes = b"E") -> bytes:
        fields = {
            "severity": self.severity,
            "severity_nonlocalized": self.severity,
            "sqlstate": self.sqlstate,
            "message": self.message,
            "detail": self.detail,
            "hint": self.hint,
            **self.extra,
        }
        body = b"".join(
            FIELD_CODES[name] + value.encode() + b"\0"
            for name, value in fields.items()
            if value is not None
        )
        return message(kind, body + b"\0")


def parse_fields(body: bytes) -> dict[str, str]:
    """Decode an ErrorResponse/NoticeResponse body into named fields."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(body) and body[pos] != 0:
        end = body.index(b"\0", pos + 1)
        name = _NAMES_BY_CODE.get(body[pos], chr(body[pos]))
        fields[name] = body[pos + 1 : end].decode(errors="replace")
        pos = end + 1
    return fields


def protocol_violation(text: str) -> bytes:
    """The FATAL 08P01 PostgreSQL sends before closing a connection it cannot parse."""
    return PgError("08P01", text, severity="FATAL").encode()
