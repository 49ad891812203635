"""JSON bytes as PHP's json_encode writes them (what Matomo sends), at orjson speed.

json_encode escapes `/` as `\\/` and every non-ASCII character as `\\uXXXX` (astral ones as a
surrogate pair). orjson writes neither; since `/` can only occur inside strings, a byte replace
is exact, and an encode error handler escapes the non-ASCII runs while ASCII stays in C.
Every captured Matomo body round-trips byte for byte through `php_json(orjson.loads(body))`.
"""

from __future__ import annotations

import codecs
from typing import Any

import orjson

_HANDLER = "php_json_escape"


def _escape_non_ascii(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeEncodeError)
    escaped = []
    for char in error.object[error.start : error.end]:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            escaped.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            escaped.append(f"\\u{code:04x}")
    return "".join(escaped), error.end


codecs.register_error(_HANDLER, _escape_non_ascii)


def php_json(value: Any) -> bytes:
    body = orjson.dumps(value).replace(b"/", b"\\/")
    return body if body.isascii() else body.decode().encode("ascii", _HANDLER)
