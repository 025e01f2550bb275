"""Client encodings (proxy.wire.encodings) and ParameterStatus parsing."""

from __future__ import annotations

import pytest

from proxy.wire.encodings import codec_for
from proxy.wire.messages.parameter_status import parse_parameter_status


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("UTF8", "utf-8"),
        ("utf-8", "utf-8"),
        ("UNICODE", "utf-8"),
        ("LATIN1", "latin-1"),
        ("WIN1252", "cp1252"),
        ("EUC_JP", "euc-jp"),
        ("SQL_ASCII", "ascii"),
        ("MULE_INTERNAL", None),
        ("", None),
    ],
)
def test_codec_for(name: str, codec: str | None) -> None:
    assert codec_for(name) == codec


def test_every_mapped_codec_exists() -> None:
    from proxy.wire import encodings

    for codec in encodings._CODECS.values():
        "é".encode(codec, "replace")


def test_parameter_status() -> None:
    assert parse_parameter_status(b"client_encoding\0LATIN1\0") == ("client_encoding", "LATIN1")
    with pytest.raises(ValueError):
        parse_parameter_status(b"client_encoding")
