"""Stored items made safe to hand to a support case: DynamoDB's attribute values become plain JSON,
and every secret is replaced by a marker that says what was there.

What counts as a secret, from the strongest rule to the safety net:
- binary values (every credential ciphertext is one);
- everything under a `secrets` key (the sealed connection settings);
- a string whose name says secret, token, password, key, credential, signature, cookie or verifier;
- the user, password, query and fragment of a URL (where sources carry their tokens);
- any long string that looks like key material (base64 or hex with mixed character classes).
Ids (UUIDs, hex run holders) are kept: a support case needs them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"
SECRET_NAME = re.compile(
    r"token|secret|passw|api_?key|credential|signature|cookie|verifier|cipher|private|sealed",
    re.IGNORECASE,
)
# Names that match the words above but hold no secret (the names of the secret fields).
NOT_SECRET_NAMES = frozenset({"secret_fields"})
_MATERIAL = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_HEX_ID = re.compile(r"[0-9a-f]{32,64}")


@dataclass
class Redactor:
    """Converts and redacts; `count` is how many values it replaced."""

    count: int = 0

    def item(self, item: dict[str, Any]) -> dict[str, Any]:
        """One stored item (attribute-value format) as redacted plain JSON."""
        return {name: self._attribute(name, value) for name, value in sorted(item.items())}

    def value(self, name: str, value: Any) -> Any:
        """A plain JSON value (already converted) named `name`, redacted."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, dict):
            if name == "secrets":
                return {key: self._replace(f"{key}") for key in sorted(value)}
            return {key: self.value(str(key), inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [self.value(name, inner) for inner in value]
        if not isinstance(value, str):
            return value  # a number is a count, a time or a fencing token, never key material
        if name not in NOT_SECRET_NAMES and SECRET_NAME.search(name):
            return self._replace(name)
        return self._string(value)

    # --- attribute values --------------------------------------------------------------------

    def _attribute(self, name: str, value: dict[str, Any]) -> Any:
        ((kind, inner),) = value.items()
        if kind in ("B", "BS"):
            self.count += 1
            size = len(inner) if kind == "B" else sum(len(part) for part in inner)
            return f"{REDACTED}: {size} encrypted bytes"
        if kind == "S":
            return self.value(name, _maybe_json(inner))
        if kind == "N":
            return self.value(name, _number(inner))
        if kind == "BOOL" or kind == "NULL":
            return None if kind == "NULL" else bool(inner)
        if kind == "SS":
            return [self.value(name, text) for text in inner]
        if kind == "NS":
            return [self.value(name, _number(text)) for text in inner]
        if kind == "L":
            return [self._attribute(name, element) for element in inner]
        if kind == "M":
            return {key: self._attribute(key, element) for key, element in inner.items()}
        return self._replace(name)  # a type this tool does not know: never shown

    # --- strings -------------------------------------------------------------------------------

    def _string(self, text: str) -> str:
        if "://" in text:
            return self._url(text)
        if looks_like_key_material(text):
            return self._replace("value")
        return text

    def _url(self, text: str) -> str:
        try:
            parts = urlsplit(text)
        except ValueError:
            return self._replace("url")
        netloc = parts.netloc
        query = parts.query
        fragment = parts.fragment
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
            self.count += 1
        if query:
            query = REDACTED
            self.count += 1
        if fragment:
            fragment = REDACTED
            self.count += 1
        return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))

    def _replace(self, what: str) -> str:
        self.count += 1
        return REDACTED


def looks_like_key_material(text: str) -> bool:
    """A long unbroken run of base64 or hex that is not an id: mixed case and digits, or '+/='."""
    for run in _MATERIAL.findall(text):
        if _UUID.fullmatch(run) or _HEX_ID.fullmatch(run):
            continue
        classes = sum(
            (
                any(c.islower() for c in run),
                any(c.isupper() for c in run),
                any(c.isdigit() for c in run),
            )
        )
        if classes == 3 or any(c in "+/=" for c in run):
            return True
    return False


def _maybe_json(text: str) -> Any:
    """The stores keep documents (settings, counts, problems) as JSON strings: open them, so
    their insides are redacted and readable."""
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _number(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number
