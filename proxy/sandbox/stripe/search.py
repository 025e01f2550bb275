"""Stripe's Search Query Language, the subset the sandbox's resources need:
`field:'value'` (exact), `field~'sub'` (substring), `created>1700000000` (and `>=`, `<`,
`<=`), `metadata['key']:'value'`, `-` to negate, `null` values, and clauses joined by
AND or OR (not both in one query; a space means AND), at most 10 of them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from . import errors
from .store import Obj

FieldKind = Literal["string", "token", "boolean", "number", "metadata"]
MAX_CLAUSES = 10

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
    (?P<field>metadata\[(?P<mq>['"])(?P<mkey>(?:\\.|(?!(?P=mq)).)*)(?P=mq)\]|[A-Za-z_][\w.]*)
    (?P<op>:|~|>=|<=|>|<)
    (?:(?P<q>['"])(?P<str>(?:\\.|(?!(?P=q)).)*)(?P=q)|(?P<num>-?\d+)|(?P<null>null))""",
    re.X,
)
_JOIN = re.compile(r"\s+(?:(?P<word>AND|OR)\s+)?", re.I)


@dataclass(frozen=True)
class SearchField:
    kind: FieldKind
    attr: str


@dataclass(frozen=True)
class Clause:
    field: str
    metadata_key: str | None
    op: str
    value: str | int | None
    negated: bool


@dataclass(frozen=True)
class Query:
    clauses: tuple[Clause, ...]
    any_of: bool  # OR-joined

    def matches(self, obj: Obj, fields: Mapping[str, SearchField]) -> bool:
        verdicts = (_holds(c, obj, fields) != c.negated for c in self.clauses)
        return any(verdicts) if self.any_of else all(verdicts)


def parse(text: str, fields: Mapping[str, SearchField], resource: str) -> Query:
    clauses: list[Clause] = []
    joins: set[str] = set()
    pos = 0
    while True:
        found = _CLAUSE.match(text, pos)
        if found is None:
            raise _syntax(text, pos)
        clauses.append(_clause(found, fields, resource))
        pos = found.end()
        if not text[pos:].strip():
            break
        join = _JOIN.match(text, pos)
        if join is None:
            raise _syntax(text, pos)
        joins.add((join["word"] or "AND").upper())
        pos = join.end()
    if len(joins) > 1:
        raise errors.invalid("Search queries cannot mix AND and OR.", "query")
    if len(clauses) > MAX_CLAUSES:
        raise errors.invalid(
            f"Search queries can have at most {MAX_CLAUSES} clauses ({len(clauses)} given).",
            "query",
        )
    return Query(tuple(clauses), joins == {"OR"})


def _clause(found: re.Match[str], fields: Mapping[str, SearchField], resource: str) -> Clause:
    name = "metadata" if found["mkey"] is not None else found["field"]
    spec = fields.get(name)
    if spec is None:
        raise errors.invalid(
            f"Field `{name}` is an unsupported search field for resource `{resource}`. See "
            f"http://stripe.com/docs/search#query-fields-for-{resource} for a list of "
            "supported fields.",
            "query",
        )
    op = found["op"]
    value: str | int | None
    if found["null"] is not None:
        value = None
    elif found["num"] is not None:
        value = int(found["num"])
    else:
        value = re.sub(r"\\(.)", r"\1", found["str"])
    allowed = {"number": {":", ">", "<", ">=", "<="}, "string": {":", "~"}}.get(spec.kind, {":"})
    if op not in allowed:
        raise errors.invalid(
            f"The `{op}` operator cannot be used with the field `{name}`.", "query"
        )
    if op == "~" and (not isinstance(value, str) or len(value) < 3):
        raise errors.invalid(
            "Substring (`~`) search values must be at least 3 characters long.", "query"
        )
    if spec.kind == "number" and value is not None and not isinstance(value, int):
        raise errors.invalid(f"The field `{name}` must be compared with a number.", "query")
    mkey = re.sub(r"\\(.)", r"\1", found["mkey"]) if found["mkey"] is not None else None
    return Clause(name, mkey, op, value, found["neg"] is not None)


def _holds(clause: Clause, obj: Obj, fields: Mapping[str, SearchField]) -> bool:
    spec = fields[clause.field]
    actual = obj.get(spec.attr)
    if spec.kind == "metadata":
        metadata = actual if isinstance(actual, dict) else {}
        actual = metadata.get(clause.metadata_key or "")
    expected = clause.value
    if expected is None:
        return actual is None
    if actual is None:
        return False
    if spec.kind == "boolean":
        return str(actual).lower() == str(expected).lower()
    if spec.kind == "number":
        number = int(str(actual))
        target = int(expected)
        return {
            ":": number == target,
            ">": number > target,
            "<": number < target,
            ">=": number >= target,
            "<=": number <= target,
        }[clause.op]
    if spec.kind == "string":
        have, want = str(actual).lower(), str(expected).lower()
        return want in have if clause.op == "~" else have == want
    return str(actual) == str(expected)


def _syntax(text: str, pos: int) -> errors.StripeError:
    return errors.invalid(
        f"We were unable to parse your search query at position {pos}: `{text}`. Search "
        "clauses look like `field:'value'` (or `metadata['key']:'value'`), joined by AND or "
        "OR. See https://stripe.com/docs/search#search-query-language.",
        "query",
    )
