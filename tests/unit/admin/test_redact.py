"""The export's redaction: stored items become plain JSON with every secret replaced, and the ids,
statuses and counts a support case needs kept."""

from __future__ import annotations

import base64
import json
import os

import pytest

from pleo_connector_admin.redact import REDACTED, Redactor, looks_like_key_material

pytestmark = pytest.mark.unit

INSTALLATION = "660f693a-3f4e-4914-b422-d12f6bf5e5eb"
CIPHERTEXT = os.urandom(116)
SEALED = base64.b64encode(os.urandom(90)).decode()


def test_binary_values_are_replaced_by_their_size() -> None:
    redactor = Redactor()

    item = redactor.item(
        {
            "pk": {"S": f"INST#{INSTALLATION}"},
            "sk": {"S": "CRED"},
            "access_token": {"B": CIPHERTEXT},
            "refresh_token": {"B": CIPHERTEXT[:50]},
            "version": {"N": "3"},
        }
    )

    assert item == {
        "pk": f"INST#{INSTALLATION}",
        "sk": "CRED",
        "access_token": f"{REDACTED}: 116 encrypted bytes",
        "refresh_token": f"{REDACTED}: 50 encrypted bytes",
        "version": 3,
    }
    assert redactor.count == 2


def test_sealed_connection_secrets_and_secret_names_inside_documents_are_redacted() -> None:
    config = {
        "connection": {
            "adapter": "placeholder",
            "values": {"source_url": "https://erp.example.com/export", "password": "hunter22x"},
            "secrets": {"api_token": SEALED},
        }
    }
    redactor = Redactor()

    item = redactor.item({"config": {"S": json.dumps(config)}, "status": {"S": "ACTIVATED"}})

    text = json.dumps(item)
    assert SEALED not in text
    assert "hunter22x" not in text
    assert item["config"]["connection"]["secrets"] == {"api_token": REDACTED}
    assert item["config"]["connection"]["values"]["source_url"] == "https://erp.example.com/export"
    assert item["status"] == "ACTIVATED"


def test_a_url_keeps_its_host_and_path_but_not_its_user_query_or_fragment() -> None:
    redactor = Redactor()

    shown = redactor.value("source_url", "https://me:pw123456@erp.example.com/x.json?sig=abc#k")

    assert shown == f"https://{REDACTED}@erp.example.com/x.json?{REDACTED}#{REDACTED}"
    assert redactor.count == 3


def test_key_material_in_a_free_text_field_is_caught_but_ids_are_not() -> None:
    redactor = Redactor()

    assert redactor.value("message", f"stored {SEALED}") == REDACTED
    assert redactor.value("holder", "9f86d081884c7d659a2feaa0c55ad015") == (
        "9f86d081884c7d659a2feaa0c55ad015"
    )
    assert redactor.value("sk", f"OWN#tag#{INSTALLATION}") == f"OWN#tag#{INSTALLATION}"
    assert redactor.value("reason", "The source answered 404 Not Found.") == (
        "The source answered 404 Not Found."
    )


def test_numbers_named_like_secrets_are_kept_and_strings_so_named_are_not() -> None:
    redactor = Redactor()

    item = redactor.item({"token": {"N": "7"}, "session_secret": {"S": "short"}})

    assert item == {"token": 7, "session_secret": REDACTED}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SEALED, True),
        ("A" * 20 + "b" * 20 + "1", True),
        (INSTALLATION, False),
        ("a" * 40, False),
        ("short+Mixed1", False),
    ],
)
def test_what_looks_like_key_material(text: str, expected: bool) -> None:
    assert looks_like_key_material(text) is expected


def test_unknown_attribute_types_are_never_shown() -> None:
    redactor = Redactor()

    assert redactor.item({"odd": {"XX": "value"}}) == {"odd": REDACTED}
