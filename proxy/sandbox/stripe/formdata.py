"""Stripe's request encoding: `application/x-www-form-urlencoded` (or the query string)
with bracket keys, `metadata[plan]=pro`, `expand[]=x`, `items[0][price]=p`, decoded
into nested dicts and lists.

Index-keyed groups stay dicts here (`items[0][price]` -> `{"items": {"0": {...}}}`):
only a parameter's schema knows whether `metadata[0]` is a key or `items[0]` an index,
so params.py turns them into lists where a list is expected."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

Value = str | list["Value"] | dict[str, "Value"]
Params = dict[str, Value]


def decode(raw: str) -> Params:
    return decode_pairs(parse_qsl(raw, keep_blank_values=True))


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> Params:
    root: Params = {}
    for key, value in pairs:
        path = split_key(key)
        append = len(path) > 1 and path[-1] == ""
        if append:
            path = path[:-1]
        node = root
        for segment in path[:-1]:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = {}
                node[segment] = child
            node = child
        leaf = path[-1]
        if append:
            existing = node.get(leaf)
            if not isinstance(existing, list):
                existing = []
                node[leaf] = existing
            existing.append(value)
        else:
            node[leaf] = value
    return root


def split_key(key: str) -> list[str]:
    """`a[b][]` -> ["a", "b", ""]; a malformed key (`a[b`, `a]`) is one literal name."""
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    parts = [head]
    rest = "[" + rest
    while rest:
        end = rest.find("]")
        if not rest.startswith("[") or end < 0:
            return [key]
        parts.append(rest[1:end])
        rest = rest[end + 1 :]
    return parts
