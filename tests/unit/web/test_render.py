"""The Jinja2 environment: built once, autoescaped, strict about missing values."""

from __future__ import annotations

import jinja2
import pytest

from pleo_connector.web.render import environment, render_page

pytestmark = pytest.mark.unit


def test_the_environment_is_built_once() -> None:
    assert environment() is environment()


def test_values_are_escaped_in_templates_and_strings() -> None:
    assert environment().from_string("{{ x }}").render(x="<b>&") == "&lt;b&gt;&amp;"
    body = render_page(
        "error.html", title="<i>t</i>", message="<b>m</b>", start_again=False, back_url=None
    )
    assert "<i>t</i>" not in body
    assert "&lt;b&gt;m&lt;/b&gt;" in body


def test_a_missing_value_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render_page("error.html", title="t")
