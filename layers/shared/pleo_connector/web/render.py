"""Jinja2 rendering of the pages, autoescaped, from templates shipped inside this package.

The environment is built on first use (Jinja2 costs tens of milliseconds to import), once per
process, so a function that only redirects never pays for it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pleo_connector.web.security import progress_script, stylesheet

if TYPE_CHECKING:
    import jinja2

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_APP_NAME = "Pleo connector"


@cache
def environment() -> jinja2.Environment:
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Our own constant text: marked safe so the bytes match the CSP hash exactly.
    env.globals["stylesheet"] = Markup(stylesheet())  # noqa: S704
    env.globals["progress_script"] = Markup(progress_script())  # noqa: S704
    env.globals["app_name"] = DEFAULT_APP_NAME
    env.globals["base_path"] = ""
    return env


def render_page(name: str, **context: Any) -> str:
    """Render template `name` (e.g. "settings.html"); every value is escaped unless marked safe."""
    return environment().get_template(name).render(**context)
