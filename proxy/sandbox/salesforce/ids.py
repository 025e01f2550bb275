"""Salesforce record ids: a 3-character key prefix naming the object type, 12 more
case-sensitive base-62 characters, and the 3-character case-safe checksum that turns the
15-character id into the 18-character one the API returns."""

from __future__ import annotations

import itertools
import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID15 = re.compile(r"^[A-Za-z0-9]{15}$")
_ID18 = re.compile(r"^[A-Za-z0-9]{15}[A-Za-z0-5]{3}$")
# Serial numbers are spread over the 9-character space (the multiplier is coprime with
# 62**9) so consecutive ids differ the way real ones do, case included.
_SPREAD = 25_214_903_917
_SPACE = 62**9
POD = "Dn"


def checksum(id15: str) -> str:
    """Each 5-character chunk gives one character: bit i set when character i is A-Z."""
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for offset, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << offset
        suffix += _CHECKSUM[bits]
    return suffix


def to18(raw: str) -> str | None:
    """The canonical 18-character id for a 15- or 18-character one; None if malformed
    (wrong length or characters, or an 18-character id whose checksum does not match)."""
    if _ID15.match(raw):
        return raw + checksum(raw)
    if _ID18.match(raw):
        head = raw[:15]
        expected = checksum(head)
        return head + expected if raw[15:].upper() == expected else None
    return None


def _base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 62)
        digits = _BASE62[digit] + digits
    return digits.rjust(width, "0")


def fixed_id(prefix: str, serial: int) -> str:
    id15 = prefix + POD + "0" + _base62(serial * _SPREAD % _SPACE, 9)
    return id15 + checksum(id15)


ORG_ID = fixed_id("00D", 1)
USER_ID = fixed_id("005", 1)


class IdMint:
    """Hands out fresh 18-character ids; never reused, even across resets."""

    def __init__(self) -> None:
        self._serials = itertools.count(1000)

    def new(self, key_prefix: str) -> str:
        return fixed_id(key_prefix, next(self._serials))
