"""A small HTML reader for page tests: elements with their attributes, and the visible text."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]


@dataclass
class Page(HTMLParser):
    elements: list[Element] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        return [
            element
            for element in self.elements
            if element.tag == tag and all(element.attrs.get(k) == v for k, v in attrs.items())
        ]

    def forms(self) -> list[Element]:
        return self.find_all("form")


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def forms_with_token(html: str) -> list[tuple[str | None, str | None]]:
    """(action, csrf token) of every form, in order; the token is None when a form has none."""
    result: list[tuple[str | None, str | None]] = []
    current: list[str | None] | None = None
    for element in parse(html).elements:
        if element.tag == "form":
            current = [element.attrs.get("action"), None]
            result.append((current[0], None))
        elif (
            current is not None
            and element.tag == "input"
            and element.attrs.get("name") == "csrf_token"
        ):
            result[-1] = (current[0], element.attrs.get("value"))
    return result
