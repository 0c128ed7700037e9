"""What the flow and security tests share: a cookie-keeping browser that records every page it
gets from the local API, the world's table and key as seen from the test, and the ledger of the
secrets (codes, verifiers, states, tokens, keys) that no log line and no page may contain.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx

from local.services import LOCAL_AWS_ENV
from pleo_connector.crypto import CredentialCipher
from pleo_connector.store.credentials import CredentialRepository
from pleo_connector.store.dynamodb import DynamoTable
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.store.oauth_state import hash_state
from tests.support.emulator import EmulatorControl, consent_form_fields

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

# Shorter values could occur by chance in a log line (an id, a word); every real secret is longer.
MIN_SECRET_CHARS = 12
WAIT_S = 60.0


# ---------------------------------------------------------------------------------------------
# The ledger of secrets and captured pages (security bar item 17)
# ---------------------------------------------------------------------------------------------


@dataclass
class SecretLedger:
    """Every secret a test saw, and every page the local API served during the session."""

    secrets: dict[str, str] = field(default_factory=dict)  # value -> what it is
    pages: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    log_dirs: list[Path] = field(default_factory=list)

    def add(self, kind: str, value: str | None) -> None:
        if value and len(value) >= MIN_SECRET_CHARS:
            self.secrets.setdefault(value, kind)

    def record_page(self, where: str, text: str) -> None:
        self.pages.append((where, text))

    def texts(self) -> Iterator[tuple[str, str]]:
        """The pages, then every log file under the registered directories."""
        yield from self.pages
        for directory in self.log_dirs:
            for path in sorted(directory.rglob("*")):
                if path.is_file() and path.suffix in {".log", ".jsonl", ".txt"}:
                    yield str(path), path.read_text(encoding="utf-8", errors="replace")


def find_leaks(texts: Iterable[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    """Which secret (by kind, never by value) shows up where, as is or percent/HTML-escaped."""
    found: list[str] = []
    forms = {value: {value, html.escape(value), value.replace("~", "%7E")} for value in secrets}
    for where, text in texts:
        for value, kind in secrets.items():
            if any(form in text for form in forms[value]):
                found.append(f"a {kind} appears in {where}")
    return found


# ---------------------------------------------------------------------------------------------
# The world's storage, seen from the test
# ---------------------------------------------------------------------------------------------


class WorldStore:
    """The local world's table, key and secrets through the layer's own repositories."""

    def __init__(self, dynamodb_url: str, moto_url: str, resources: Any) -> None:
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=LOCAL_AWS_ENV["AWS_REGION"],
        )
        self.dynamodb = session.client("dynamodb", endpoint_url=dynamodb_url)
        self.kms = session.client("kms", endpoint_url=moto_url)
        self.secretsmanager = session.client("secretsmanager", endpoint_url=moto_url)
        self.sqs = session.client("sqs", endpoint_url=moto_url)
        self.resources = resources
        self.table_name = resources.tables["Table"]
        self.table = DynamoTable(self.table_name, client=self.dynamodb)
        self.cipher = CredentialCipher(resources.keys["CredentialsKey"], kms_client=self.kms)
        self.installations = InstallationRepository(self.table)
        self.credentials = CredentialRepository(self.table)

    # -- OAuth state ---------------------------------------------------------------------------

    def state_item(self, state: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"STATE#{hash_state(state)}"}, "sk": {"S": "STATE"}},
            ConsistentRead=True,
        ).get("Item")
        return dict(item) if item else None

    def expire_state(self, state: str) -> None:
        """Backdate a state's expiry, as if the user took too long (TTL has not removed it)."""
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"STATE#{hash_state(state)}"}, "sk": {"S": "STATE"}},
            UpdateExpression="SET expires_at = :past",
            ExpressionAttributeValues={":past": {"N": str(time.time() - 1)}},
        )

    # -- installations and credentials ---------------------------------------------------------

    def installation_of(self, company_id: str) -> InstallationRecord | None:
        return self.installations.find_by_company(company_id)

    def items_of(self, installation_id: str) -> list[dict[str, Any]]:
        response = self.dynamodb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"INST#{installation_id}"}},
            ConsistentRead=True,
        )
        return list(response.get("Items", []))

    def all_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table_name):
            items.extend(page.get("Items", []))
        return items

    def plaintext_credentials(self, installation_id: str) -> list[str]:
        """The stored tokens or key, decrypted (the test's view; the app never shows them)."""
        stored = self.credentials.get(installation_id)
        if stored is None:
            return []
        values = []
        for ciphertext in (stored.access_token, stored.refresh_token, stored.api_key):
            if ciphertext is not None:
                values.append(self.cipher.decrypt_text(installation_id, ciphertext))
        return values

    def every_credential(self) -> Iterator[str]:
        for item in self.all_items():
            if item["sk"]["S"] == "CRED":
                installation_id = item["pk"]["S"].removeprefix("INST#")
                try:
                    yield from self.plaintext_credentials(installation_id)
                except Exception:  # noqa: S112 - a test may have planted a foreign ciphertext
                    continue

    def copy_credential(self, source_id: str, target_id: str) -> None:
        """Copy one installation's encrypted credential onto another's row (item 16)."""
        source = self.dynamodb.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"INST#{source_id}"}, "sk": {"S": "CRED"}},
            ConsistentRead=True,
        )["Item"]
        target = {**source, "pk": {"S": f"INST#{target_id}"}, "installation_id": {"S": target_id}}
        self.dynamodb.put_item(TableName=self.table_name, Item=target)

    def session_secret(self) -> str:
        secret_id = self.resources.secrets["SessionSigningKey"]
        value: str = self.secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"]
        return value

    def queued_messages(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_urls["SyncQueue"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def wait_for[T](probe: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
    """Poll `probe` until it returns something truthy (a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.25)


# ---------------------------------------------------------------------------------------------
# A browser without a browser: httpx with cookies, every page recorded
# ---------------------------------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
INSTALLATION_FIELD = re.compile(r'name="installation_id" value="([^"]+)"')


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Browser:
    """One user agent: its own cookie jar; never follows redirects by itself, so every step of
    a flow can be looked at."""

    def __init__(
        self, api_url: str, emulator: EmulatorControl, store: WorldStore, ledger: SecretLedger
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.emulator = emulator
        self.store = store
        self.ledger = ledger
        self.http = httpx.Client(
            base_url=self.api_url, timeout=60, event_hooks={"response": [self._record]}
        )

    def close(self) -> None:
        self.http.close()

    def _record(self, response: httpx.Response) -> None:
        if str(response.url).startswith(self.api_url):
            response.read()
            self.ledger.record_page(
                f"page {response.request.method} {response.url.path}", response.text
            )

    # -- plain requests ------------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def page_form(self, path: str) -> dict[str, str]:
        """The hidden fields (CSRF token, installation id) of the page at `path`."""
        page = self.get(path)
        assert page.status_code == 200, page.text
        return hidden_fields(page.text)

    def submit(
        self,
        path: str,
        *,
        form_page: str = "/settings",
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> httpx.Response:
        """POST a form as the app's own page would (its hidden fields, same-origin headers)."""
        data = {**self.page_form(form_page), **fields}
        sent = {"Origin": self.api_url, "Sec-Fetch-Site": "same-origin", **(headers or {})}
        return self.post(path, data=data, headers=sent)

    # -- OAuth ---------------------------------------------------------------------------------

    def start_oauth(self, **params: str) -> str:
        """GET /oauth/start; returns the authorize URL (state and verifier go to the ledger)."""
        response = self.get("/oauth/start", params=params or None)
        assert response.status_code == 302, response.text
        authorize_url = response.headers["location"]
        state = query_of(authorize_url)["state"]
        self.ledger.add("OAuth state", state)
        item = self.store.state_item(state)
        if item is not None:
            self.ledger.add("PKCE verifier", item["code_verifier"]["S"])
        for cookie in self.http.cookies.jar:
            self.ledger.add(f"cookie {cookie.name}", cookie.value)
        return authorize_url

    def approve(self, authorize_url: str, company_id: str | None = None) -> str:
        """Consent at the emulator (auto-approve or its form); returns the callback URL."""
        with httpx.Client(timeout=30) as pleo_user:
            page = pleo_user.get(authorize_url)
            if page.status_code == 200:  # the consent page: approve like a person would
                fields = consent_form_fields(page.text)
                if company_id is not None:
                    fields["company_id"] = company_id
                page = pleo_user.post(
                    authorize_url.split("?")[0],
                    data={**fields, "decision": "approve"},
                    headers={"Origin": self.emulator.base_url},
                )
        assert page.status_code in (302, 303), page.text
        callback_url = page.headers["location"]
        self.ledger.add("authorization code", query_of(callback_url).get("code"))
        return callback_url

    def callback(self, callback_url: str) -> httpx.Response:
        split = urlsplit(callback_url)
        return self.get(f"{split.path}?{split.query}")

    def install_oauth(self, company_id: str | None = None) -> httpx.Response:
        """The whole OAuth install; returns the callback's answer."""
        return self.callback(self.approve(self.start_oauth(), company_id))

    def remember_credentials(self, installation_id: str) -> None:
        for value in self.store.plaintext_credentials(installation_id):
            self.ledger.add("stored token or key", value)

    # -- API key -------------------------------------------------------------------------------

    def install_api_key(self, api_key: str) -> httpx.Response:
        self.ledger.add("API key", api_key)
        return self.submit("/install/api-key", form_page="/install/api-key", api_key=api_key)

    # -- settings ------------------------------------------------------------------------------

    def settings_status(self) -> str:
        page = self.get("/settings")
        assert page.status_code == 200, page.text
        return status_text(page.text)


def hidden_fields(page: str) -> dict[str, str]:
    fields = {}
    if (csrf := CSRF_FIELD.search(page)) is not None:
        fields["csrf_token"] = html.unescape(csrf.group(1))
    if (installation := INSTALLATION_FIELD.search(page)) is not None:
        fields["installation_id"] = html.unescape(installation.group(1))
    return fields


STATUS_BLOCK = re.compile(r'<section aria-labelledby="status-title">(.*?)</section>', re.S)


def status_text(page: str) -> str:
    """The settings page's status section as plain text."""
    found = STATUS_BLOCK.search(page)
    block = found.group(1) if found else page
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", block)).split())


ERP_SETTINGS: dict[str, Any] = {
    "source_url": "https://erp.example.com/export",
    "api_token": "erp-secret-token-0123456789",
    "environment": "sandbox",
    "company_code": "ACME",
    "timeout_s": "20",
}
