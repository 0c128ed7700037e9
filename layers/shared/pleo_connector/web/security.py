"""The security headers every page and redirect carries.

The pages load nothing from anywhere: the one stylesheet is inlined and allowed by its hash, the
one script (the settings page's progress check, which asks this app alone) likewise, and forms may
only post back to this app (plus, when a page needs it, the
authorization server). Framing is refused unless the operator names the allowed ancestors.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

STYLESHEET_PATH = Path(__file__).parent / "templates" / "style.css"
PROGRESS_SCRIPT_PATH = Path(__file__).parent / "templates" / "progress.js"


@cache
def stylesheet() -> str:
    """The inline stylesheet, read once; its exact text is what the CSP hash covers."""
    return STYLESHEET_PATH.read_text(encoding="utf-8")


@cache
def progress_script() -> str:
    """The settings page's progress check, inlined: it polls `/settings/progress`, waiting longer
    each time, and reloads the page once when what it shows has changed."""
    return PROGRESS_SCRIPT_PATH.read_text(encoding="utf-8")


def _hash_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@cache
def stylesheet_hash() -> str:
    """The CSP source expression that allows exactly the inline stylesheet."""
    return _hash_source(stylesheet())


@cache
def progress_script_hash() -> str:
    """The CSP source expression that allows exactly the inline progress script."""
    return _hash_source(progress_script())


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of `url`, lowercased, default ports dropped (as browsers send it)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an absolute http(s) URL is needed to name an origin")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


SELF = "'self'"


def _ancestor(source: str) -> str:
    return SELF if source.strip().lower() in (SELF, "self") else origin_of(source)


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """What the CSP allows beyond the strict default.

    `frame_ancestors`: origins (or `'self'`) allowed to frame the pages (default: no framing).
    `form_targets`: origins forms may post to besides this app (e.g. the authorization server).
    `hsts`: send Strict-Transport-Security (only meaningful when the app is served over HTTPS).
    """

    frame_ancestors: tuple[str, ...] = ()
    form_targets: tuple[str, ...] = ()
    hsts: bool = False

    @classmethod
    def for_base_url(
        cls,
        public_base_url: str,
        *,
        frame_ancestors: tuple[str, ...] = (),
        form_targets: tuple[str, ...] = (),
    ) -> SecurityPolicy:
        """The policy for an app served at `public_base_url` (HSTS when it is HTTPS)."""
        return cls(
            frame_ancestors=tuple(_ancestor(source) for source in frame_ancestors),
            form_targets=tuple(origin_of(url) for url in form_targets),
            hsts=urlsplit(public_base_url).scheme.lower() == "https",
        )

    def content_security_policy(self) -> str:
        ancestors = " ".join(self.frame_ancestors) if self.frame_ancestors else "'none'"
        form_action = " ".join(("'self'", *self.form_targets))
        return "; ".join(
            (
                "default-src 'none'",
                f"style-src {stylesheet_hash()}",
                f"script-src {progress_script_hash()}",
                "connect-src 'self'",
                f"form-action {form_action}",
                f"frame-ancestors {ancestors}",
                "base-uri 'none'",
            )
        )

    def headers(self) -> dict[str, str]:
        """The full header set; X-Frame-Options only where it can say the same as the CSP."""
        headers = {
            "Content-Security-Policy": self.content_security_policy(),
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        }
        # Older browsers ignore frame-ancestors: X-Frame-Options says the same where it can. It
        # cannot name other origins; there modern browsers follow the CSP alone.
        if not self.frame_ancestors:
            headers["X-Frame-Options"] = "DENY"
        elif self.frame_ancestors == (SELF,):
            headers["X-Frame-Options"] = "SAMEORIGIN"
        if self.hsts:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return headers


DEFAULT_POLICY = SecurityPolicy()


def security_headers(policy: SecurityPolicy | None = None) -> dict[str, str]:
    """The headers of `policy` (default: the strictest one)."""
    return (policy or DEFAULT_POLICY).headers()
