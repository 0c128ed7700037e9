"""Forms rendered from pydantic models, and submitted forms parsed back with per-field errors."""

from __future__ import annotations

import enum
from typing import Literal

import pytest
from pydantic import BaseModel, Field, SecretStr

from pleo_connector.adapters.placeholder import PlaceholderConnectionSettings
from pleo_connector.web.forms import (
    FormError,
    FormField,
    MalformedFormError,
    form_fields,
    parse_form,
    parse_form_body,
    parse_sync_choices,
    single_value,
)

pytestmark = pytest.mark.unit


class Region(enum.Enum):
    EU = "eu"
    US = "us"


class Example(BaseModel):
    name: str = Field(min_length=2, max_length=20, description="Shown <to> people.")
    count: int = Field(default=3, ge=1, le=9)
    ratio: float = 0.5
    enabled: bool = True
    mode: Literal["fast", "careful"] = "careful"
    region: Region = Region.EU
    token: SecretStr
    note: str | None = None
    limit: int = Field(default=5, gt=0, lt=100)


def by_name(fields: list[FormField]) -> dict[str, FormField]:
    return {item.name: item for item in fields}


def test_each_type_gets_its_input() -> None:
    fields = by_name(form_fields(Example))

    assert fields["name"].input_type == "text"
    assert fields["count"].input_type == "number"
    assert fields["ratio"].attributes == (("step", "any"),)
    assert fields["enabled"].input_type == "checkbox"
    assert fields["mode"].input_type == "select"
    assert fields["mode"].options == (("fast", "fast"), ("careful", "careful"))
    assert fields["region"].options == (("eu", "eu"), ("us", "us"))
    assert fields["token"].input_type == "password"
    assert fields["note"].input_type == "text"


def test_constraints_become_html_attributes_and_descriptions_help_text() -> None:
    fields = by_name(form_fields(Example))

    assert dict(fields["name"].attributes) == {"minlength": "2", "maxlength": "20"}
    assert dict(fields["count"].attributes) == {"step": "1", "min": "1", "max": "9"}
    assert dict(fields["limit"].attributes) == {"step": "1", "min": "1", "max": "99"}
    assert fields["name"].required
    assert not fields["note"].required
    assert fields["name"].help == "Shown <to> people."
    assert fields["token"].required


def test_defaults_fill_a_new_form_but_never_a_secret() -> None:
    fields = by_name(form_fields(Example))
    assert fields["count"].value == "3"
    assert fields["mode"].value == "careful"
    assert fields["region"].value == "eu"
    assert fields["enabled"].checked
    assert fields["token"].value is None


def test_a_saved_model_fills_the_form_except_the_secret() -> None:
    saved = Example(name="Acme", count=7, enabled=False, token=SecretStr("s3cret-token"))
    fields = by_name(form_fields(Example, saved))

    assert fields["name"].value == "Acme"
    assert fields["count"].value == "7"
    assert not fields["enabled"].checked
    assert fields["token"].value is None
    assert not fields["token"].required
    assert fields["token"].help is not None
    assert "leave empty to keep it" in fields["token"].help


def test_a_submitted_form_refills_the_inputs_except_the_secret() -> None:
    submitted = {"name": ["A"], "token": ["typed-secret"], "enabled": ["on"], "count": ["x"]}
    fields = by_name(form_fields(Example, submitted, {"name": "Too short."}))

    assert fields["name"].value == "A"
    assert fields["name"].error == "Too short."
    assert fields["count"].value == "x"
    assert fields["token"].value is None
    assert fields["enabled"].checked


def test_a_valid_form_parses_into_the_model() -> None:
    form = {
        "name": [" Acme "],
        "count": ["4"],
        "ratio": ["0.25"],
        "mode": ["fast"],
        "region": ["us"],
        "token": ["abc"],
        "limit": ["10"],
        "csrf_token": ["ignored"],
    }
    parsed = parse_form(Example, form)

    assert parsed.name == "Acme"
    assert parsed.count == 4
    assert parsed.ratio == 0.25
    assert parsed.enabled is False  # an unticked checkbox is simply absent
    assert parsed.mode == "fast"
    assert parsed.region is Region.US
    assert parsed.token.get_secret_value() == "abc"
    assert parsed.note is None


def test_errors_are_per_field_and_never_repeat_the_input() -> None:
    form = {"name": ["x"], "count": ["42"], "mode": ["<script>"], "token": [""], "limit": ["0"]}
    with pytest.raises(FormError) as caught:
        parse_form(Example, form)

    errors = caught.value.errors
    assert set(errors) == {"name", "count", "mode", "token", "limit"}
    assert errors["token"] == "This field is required."
    assert "2" in errors["name"]
    assert "<script>" not in " ".join(errors.values())
    assert "<script>" not in str(caught.value)


def test_a_field_sent_twice_is_an_error() -> None:
    with pytest.raises(FormError) as caught:
        parse_form(Example, {"name": ["Acme", "Evil"], "token": ["abc"]})
    assert set(caught.value.errors) == {"name"}


def test_an_empty_secret_keeps_the_stored_one() -> None:
    saved = Example(name="Acme", token=SecretStr("stored-secret"))
    parsed = parse_form(Example, {"name": ["Acme"], "token": [""]}, current=saved)
    assert parsed.token.get_secret_value() == "stored-secret"

    replaced = parse_form(Example, {"name": ["Acme"], "token": ["new"]}, current=saved)
    assert replaced.token.get_secret_value() == "new"


def test_a_prefix_keeps_sections_of_one_form_apart() -> None:
    fields = form_fields(Example, prefix="conn_")
    assert all(item.name.startswith("conn_") for item in fields)
    parsed = parse_form(
        Example, {"conn_name": ["Acme"], "conn_token": ["t"], "name": ["Other"]}, prefix="conn_"
    )
    assert parsed.name == "Acme"


def test_an_unsupported_type_is_a_programming_error() -> None:
    class Odd(BaseModel):
        items: list[str]

    with pytest.raises(TypeError):
        form_fields(Odd)


def test_the_placeholder_settings_round_trip() -> None:
    form = {
        "source_url": ["https://erp.example/export"],
        "api_token": ["token-123456"],
        "environment": ["sandbox"],
        "timeout_s": ["30"],
        "include_archived": ["on"],
    }
    parsed = parse_form(PlaceholderConnectionSettings, form)
    refilled = by_name(form_fields(PlaceholderConnectionSettings, parsed))

    assert refilled["source_url"].value == "https://erp.example/export"
    assert refilled["environment"].value == "sandbox"
    assert refilled["timeout_s"].value == "30"
    assert refilled["include_archived"].checked
    assert refilled["api_token"].value is None
    assert (
        parse_form(PlaceholderConnectionSettings, {**form, "api_token": [""]}, current=parsed)
        == parsed
    )


def test_the_placeholder_settings_reject_a_bad_url_and_short_token() -> None:
    with pytest.raises(FormError) as caught:
        parse_form(
            PlaceholderConnectionSettings,
            {"source_url": ["not a url"], "api_token": ["short"], "timeout_s": ["0"]},
        )
    assert set(caught.value.errors) == {"source_url", "api_token", "timeout_s"}


def test_form_bodies_parse_and_bad_ones_are_malformed() -> None:
    assert parse_form_body("a=1&b=&a=2") == {"a": ["1", "2"], "b": [""]}
    assert parse_form_body(None) == {}
    with pytest.raises(MalformedFormError):
        parse_form_body("x=" + "a" * (70 * 1024))
    with pytest.raises(MalformedFormError):
        parse_form_body("&".join(f"f{i}=1" for i in range(500)))
    with pytest.raises(MalformedFormError):
        parse_form_body("a=%ff%fe")


def test_single_value_refuses_duplicates() -> None:
    assert single_value({"a": ["1"]}, "a") == "1"
    assert single_value({}, "a") is None
    with pytest.raises(MalformedFormError):
        single_value({"a": ["1", "2"]}, "a")


def test_sync_choices_parse_ticked_boxes() -> None:
    form = {
        "sync_tag_groups": ["DEPT", "PROJ", "DEPT"],
        "sync_tax_codes": ["on"],
        "sync_accounts": ["on"],
    }
    choices = parse_sync_choices(form, {"DEPT", "PROJ", "COST"})
    assert choices.tag_groups == ["DEPT", "PROJ"]
    assert choices.tax_codes is True
    assert choices.vendors is False
    assert choices.accounts is True


def test_sync_choices_allow_at_most_five_known_tag_groups() -> None:
    available = {f"G{i}" for i in range(8)}
    with pytest.raises(FormError) as too_many:
        parse_sync_choices({"sync_tag_groups": [f"G{i}" for i in range(6)]}, available)
    assert too_many.value.errors == {"tag_groups": "Choose at most 5 tag groups."}
    with pytest.raises(FormError) as unknown:
        parse_sync_choices({"sync_tag_groups": ["NOPE"]}, available)
    assert set(unknown.value.errors) == {"tag_groups"}
    five = parse_sync_choices({"sync_tag_groups": [f"G{i}" for i in range(5)]}, available)
    assert len(five.tag_groups) == 5
