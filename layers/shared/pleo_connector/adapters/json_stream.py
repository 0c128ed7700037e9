"""A pull reader of one JSON document arriving in chunks, so a large document is never held
whole: the caller walks its objects and arrays and decodes one value at a time (a record), and
what has been read is let go.

Each value is decoded by the standard library's decoder from a window of the text; a value cut
by the end of a chunk is decoded again once the next chunk is in, and a value larger than
`max_value_chars` is refused rather than buffered. Numbers with a fraction or an exponent are
`Decimal`s made from their text (never floats); `NaN` and `Infinity` are not JSON and are
refused, and so is an object that holds a key twice.
"""

from __future__ import annotations

import codecs
import json
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A failure this close to the end of the window may be a token cut by the chunk boundary:
# `-`, `1.`, `1e+`, `\u12`, `fals`.
_LONGEST_CUT_TOKEN = 8


class JsonSyntaxError(ValueError):
    """The text is not JSON. `line` is where the reader was (1-based); the message never quotes
    the text."""

    def __init__(self, reason: str, *, line: int) -> None:
        super().__init__(f"{reason} (line {line})")
        self.reason = reason
        self.line = line


class ValueTooLargeError(ValueError):
    """One value is longer than the reader buffers."""


class DuplicateKeyError(ValueError):
    """An object holds the same key twice: which one counts is not defined."""

    def __init__(self, key: str) -> None:
        super().__init__("an object holds a key twice")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(key)
        result[key] = value
    return result


class _NotJsonError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJsonError(f"{name} is not a JSON number")


class JsonStream:
    """The document's text from `chunks` (UTF-8, a byte order mark allowed), read forward."""

    def __init__(self, chunks: Iterable[bytes], *, max_value_chars: int = 1024 * 1024) -> None:
        self._chunks = iter(chunks)
        self._decode = codecs.getincrementaldecoder("utf-8-sig")("strict").decode
        self._decoder = json.JSONDecoder(
            parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
        )
        self._max = max_value_chars
        self._buffer = ""
        self._position = 0
        self._lines_before = 0  # newlines in the text already let go
        self._ended = False

    # --- structure -------------------------------------------------------------------------

    def peek(self) -> str:
        """The next character that is not whitespace; "" at the end of the text."""
        while True:
            match = _WHITESPACE.match(self._buffer, self._position)
            self._position = match.end() if match else self._position
            if self._position < len(self._buffer):
                return self._buffer[self._position]
            if not self._fill():
                return ""

    def expect(self, character: str, what: str) -> None:
        if self.peek() != character:
            raise self.syntax_error(f"expected {what}")
        self._position += 1

    def object_keys(self) -> Iterator[str]:
        """The keys of the object that starts here; after each, the caller reads its value
        (`value()`, or walks it) before asking for the next key."""
        self.expect("{", "an object")
        if self.peek() == "}":
            self._position += 1
            return
        while True:
            if self.peek() != '"':
                raise self.syntax_error("expected a key in quotes")
            key = self.value()
            self.expect(":", "a colon after a key")
            yield key
            following = self.peek()
            self._position += 1
            if following == "}":
                return
            if following != ",":
                raise self.syntax_error("expected a comma or the end of an object")

    def array_items(self) -> Iterator[int]:
        """The indexes of the array that starts here; the caller reads each item in turn."""
        self.expect("[", "a list")
        if self.peek() == "]":
            self._position += 1
            return
        index = 0
        while True:
            yield index
            following = self.peek()
            self._position += 1
            if following == "]":
                return
            if following != ",":
                raise self.syntax_error("expected a comma or the end of a list")
            index += 1

    def value(self) -> Any:
        """Decode the one value that starts here."""
        if not self.peek():
            raise self.syntax_error("the text ends where a value should be")
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._position)
            except DuplicateKeyError:
                raise
            except _NotJsonError as error:
                raise self.syntax_error(str(error)) from None
            except json.JSONDecodeError as error:
                if self._may_be_cut(error) and self._need_more():
                    continue
                raise self.syntax_error(error.msg, at=error.pos) from None
            except ValueError:
                # An integer past Python's digit limit: no more text can make it shorter.
                raise self.syntax_error("a number has too many digits") from None
            except RecursionError:
                raise self.syntax_error("values are nested too deeply") from None
            # A number near the end of the window may go on in the next chunk (`-0` of `-0.5`).
            if (
                isinstance(value, int | Decimal)
                and end >= len(self._buffer) - _LONGEST_CUT_TOKEN
                and self._need_more()
            ):
                continue
            self._position = end
            return value

    def skip(self) -> None:
        """Read past the value that starts here."""
        self.value()

    def end(self) -> None:
        """Only whitespace may follow the document."""
        if self.peek():
            raise self.syntax_error("there is more text after the end of the document")

    def syntax_error(self, reason: str, *, at: int | None = None) -> JsonSyntaxError:
        position = self._position if at is None else at
        line = self._lines_before + self._buffer.count("\n", 0, position) + 1
        return JsonSyntaxError(reason, line=line)

    # --- the window ------------------------------------------------------------------------

    def _may_be_cut(self, error: json.JSONDecodeError) -> bool:
        """Whether more text could make the value decode: an open string, or a failure within
        the last token of the window (a number, an escape or a literal cut short). A failure
        further back is wrong whatever follows."""
        return (
            error.msg.startswith("Unterminated string")
            or error.pos >= len(self._buffer) - _LONGEST_CUT_TOKEN
        )

    def _need_more(self) -> bool:
        """Read on, for a value that may be cut; False at the end of the text."""
        if len(self._buffer) - self._position > self._max:
            raise ValueTooLargeError(f"a value is longer than {self._max} characters")
        return self._fill()

    def _fill(self) -> bool:
        """Append the next chunk to the window, letting go of what was read; False at the end."""
        while not self._ended:
            try:
                chunk = next(self._chunks, None)
                text = self._decode(chunk or b"", final=chunk is None)
            except UnicodeDecodeError:
                raise self.syntax_error("the text is not UTF-8") from None
            self._ended = chunk is None
            if text:
                self._lines_before += self._buffer.count("\n", 0, self._position)
                self._buffer = self._buffer[self._position :] + text
                self._position = 0
                return True
        return False
