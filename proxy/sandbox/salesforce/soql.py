"""A SOQL subset, parsed into a small syntax tree:

    SELECT f1, f2 | COUNT() FROM Type
    [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]

Conditions: `f op literal` (=, !=, <>, <, <=, >, >=), `f LIKE 'pat%'`, `f [NOT] IN (...)`,
NOT, parentheses, and AND/OR, which (as in SOQL) cannot be mixed without parentheses.
Literals: 'strings' with backslash escapes, numbers, true/false, null, and unquoted
date (2026-01-01) and datetime (2026-01-01T00:00:00Z) literals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal as TypingLiteral

from .errors import malformed_query

LiteralKind = TypingLiteral["string", "number", "boolean", "null", "date", "datetime"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    def keyword(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


@dataclass(frozen=True)
class Literal:
    kind: LiteralKind
    value: object


@dataclass(frozen=True)
class Compare:
    field: str
    op: str  # =, !=, <, <=, >, >=, LIKE
    value: Literal


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Not:
    inner: Condition


@dataclass(frozen=True)
class Junction:
    op: str  # AND | OR
    parts: tuple[Condition, ...]


Condition = Compare | InList | Not | Junction


@dataclass(frozen=True)
class OrderKey:
    field: str
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]  # empty for COUNT()
    count: bool
    type_name: str
    where: Condition | None
    order: tuple[OrderKey, ...]
    limit: int | None
    offset: int


def tokenize(text: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise malformed_query(f"unexpected token: '{text[position:].split()[0]}'")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group()))
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise malformed_query("unexpected token: <EOF>")
        self.index += 1
        return token

    def unexpected(self) -> Exception:
        token = self.peek()
        return malformed_query(f"unexpected token: {f'{token.text!r}' if token else '<EOF>'}")

    def expect_keyword(self, *words: str) -> Token:
        token = self.peek()
        if token is None or not token.keyword(*words):
            raise self.unexpected()
        return self.take()

    def accept_keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.keyword(*words):
            self.index += 1
            return True
        return False

    def accept_punct(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == text:
            self.index += 1
            return True
        return False

    def expect_punct(self, text: str) -> None:
        if not self.accept_punct(text):
            raise self.unexpected()

    def identifier(self) -> str:
        token = self.peek()
        if token is None or token.kind != "ident":
            raise self.unexpected()
        return self.take().text

    def integer(self) -> int:
        token = self.peek()
        if token is None or token.kind != "number" or not token.text.isdigit():
            raise self.unexpected()
        return int(self.take().text)

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[str] = []
        count = False
        token = self.peek()
        if token is not None and token.keyword("COUNT") and self._next_is_paren():
            self.take()
            self.expect_punct("(")
            self.expect_punct(")")
            count = True
        else:
            fields.append(self.identifier())
            while self.accept_punct(","):
                fields.append(self.identifier())
        self.expect_keyword("FROM")
        type_name = self.identifier()
        where = self.condition() if self.accept_keyword("WHERE") else None
        order: list[OrderKey] = []
        if self.accept_keyword("ORDER"):
            self.expect_keyword("BY")
            order.append(self.order_key())
            while self.accept_punct(","):
                order.append(self.order_key())
        limit = self.integer() if self.accept_keyword("LIMIT") else None
        offset = self.integer() if self.accept_keyword("OFFSET") else 0
        if self.peek() is not None:
            raise self.unexpected()
        return Query(tuple(fields), count, type_name, where, tuple(order), limit, offset)

    def _next_is_paren(self) -> bool:
        after = self.index + 1
        return after < len(self.tokens) and self.tokens[after].text == "("

    def order_key(self) -> OrderKey:
        name = self.identifier()
        descending = False
        if self.accept_keyword("DESC"):
            descending = True
        else:
            self.accept_keyword("ASC")
        nulls_last = descending
        if self.accept_keyword("NULLS"):
            nulls_last = self.expect_keyword("FIRST", "LAST").text.upper() == "LAST"
        return OrderKey(name, descending, nulls_last)

    def condition(self) -> Condition:
        parts = [self.unary()]
        joiner: str | None = None
        while (token := self.peek()) is not None and token.keyword("AND", "OR"):
            word = token.text.upper()
            if joiner is not None and word != joiner:
                raise self.unexpected()
            joiner = word
            self.take()
            parts.append(self.unary())
        return parts[0] if joiner is None else Junction(joiner, tuple(parts))

    def unary(self) -> Condition:
        if self.accept_keyword("NOT"):
            return Not(self.unary())
        if self.accept_punct("("):
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        name = self.identifier()
        if self.accept_keyword("NOT"):
            self.expect_keyword("IN")
            return InList(name, self.literal_list(), True)
        if self.accept_keyword("IN"):
            return InList(name, self.literal_list(), False)
        if self.accept_keyword("LIKE"):
            pattern = self.literal()
            if pattern.kind != "string":
                raise malformed_query("LIKE needs a string literal")
            return Compare(name, "LIKE", pattern)
        token = self.peek()
        if token is None or token.kind != "op":
            raise self.unexpected()
        op = self.take().text
        return Compare(name, "!=" if op == "<>" else op, self.literal())

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        values = [self.literal()]
        while self.accept_punct(","):
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            return Literal("string", _unquote(token.text))
        if token.kind == "number":
            return Literal("number", float(token.text))
        if token.kind in ("date", "datetime"):
            return Literal("date" if token.kind == "date" else "datetime", token.text)
        if token.keyword("TRUE", "FALSE"):
            return Literal("boolean", token.text.upper() == "TRUE")
        if token.keyword("NULL"):
            return Literal("null", None)
        self.index -= 1
        raise self.unexpected()


def parse(text: str) -> Query:
    return _Parser(tokenize(text)).query()
