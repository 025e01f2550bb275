"""PostgreSQL's client encodings and the Python codecs that read them.

Everything a client sends and receives is in its session's ``client_encoding``
(reported by the server in ParameterStatus whenever it changes). The proxy reads
the text of a synced write and the row images PostgreSQL returns, and writes its
own statements, in that encoding; the relay never decodes anything.
"""

from __future__ import annotations

#: PostgreSQL encoding name (as ParameterStatus reports it) -> Python codec.
_CODECS = {
    "UTF8": "utf-8",
    "SQL_ASCII": "ascii",  # no conversion at all: only ASCII text is unambiguous
    "LATIN1": "latin-1",
    "LATIN2": "iso8859-2",
    "LATIN3": "iso8859-3",
    "LATIN4": "iso8859-4",
    "LATIN5": "iso8859-9",
    "LATIN6": "iso8859-10",
    "LATIN7": "iso8859-13",
    "LATIN8": "iso8859-14",
    "LATIN9": "iso8859-15",
    "LATIN10": "iso8859-16",
    "ISO_8859_5": "iso8859-5",
    "ISO_8859_6": "iso8859-6",
    "ISO_8859_7": "iso8859-7",
    "ISO_8859_8": "iso8859-8",
    "WIN866": "cp866",
    "WIN874": "cp874",
    "WIN1250": "cp1250",
    "WIN1251": "cp1251",
    "WIN1252": "cp1252",
    "WIN1253": "cp1253",
    "WIN1254": "cp1254",
    "WIN1255": "cp1255",
    "WIN1256": "cp1256",
    "WIN1257": "cp1257",
    "WIN1258": "cp1258",
    "KOI8R": "koi8-r",
    "KOI8U": "koi8-u",
    "EUC_JP": "euc-jp",
    "EUC_KR": "euc-kr",
    "EUC_CN": "gb2312",
    "SJIS": "shift_jis",
    "BIG5": "big5",
    "GBK": "gbk",
    "GB18030": "gb18030",
    "UHC": "cp949",
    "JOHAB": "johab",
}


def codec_for(pg_encoding: str) -> str | None:
    """The Python codec for a client_encoding, or None if the proxy cannot read it
    (PostgreSQL reports the canonical upper-case name; aliases are accepted too)."""
    name = pg_encoding.upper().replace("-", "_")
    return _CODECS.get({"UTF_8": "UTF8", "UNICODE": "UTF8"}.get(name, name))
