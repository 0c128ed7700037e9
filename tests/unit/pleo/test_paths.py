"""Path parameters: checked and quoted in one place, so an id can never name another resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pleo_connector.pleo import errors
from pleo_connector.pleo.client import PleoClient
from pleo_connector.pleo.transport import api_path
from tests.unit.pleo.conftest import Recorder

pytestmark = pytest.mark.unit

MakeClient = Callable[..., PleoClient]


def test_a_plain_id_goes_in_as_it_is() -> None:
    assert (
        api_path("/v1/vendors/{id}:archive", id="5f0d8a36-1f6b")
        == "/v1/vendors/5f0d8a36-1f6b:archive"
    )


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("a b", "a%20b"),
        ("a?b#c", "a%3Fb%23c"),
        ("100%", "100%25"),
        ("a:archive", "a%3Aarchive"),
        ("a\\b", "a%5Cb"),
        ("\u00c6ble", "%C3%86ble"),
        ("...", "..."),
    ],
)
def test_every_other_character_is_quoted_into_the_segment(value: str, segment: str) -> None:
    assert api_path("/v0/tags/{tagId}", tagId=value) == f"/v0/tags/{segment}"


@pytest.mark.parametrize(
    "value",
    ["", "   ", ".", "..", "a/b", "../companies", "/", "a\nb", "a\rb", "\x00", "a\x7f", "a\x85b"],
)
def test_a_value_that_could_name_another_resource_is_refused(value: str) -> None:
    with pytest.raises(errors.InvalidPathParameterError) as caught:
        api_path("/v1/vendors/{id}", id=value)

    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, errors.PleoError)
    assert caught.value.parameter == "id"
    assert str(caught.value).startswith("id ")
    if len(value.strip()) > 2:
        assert value not in str(caught.value)  # the message names the problem, not the value


def test_a_value_that_is_not_a_string_is_refused() -> None:
    not_a_string: Any = None
    with pytest.raises(errors.InvalidPathParameterError, match="must be a string"):
        api_path("/v1/vendors/{id}", id=not_a_string)


@pytest.mark.parametrize(
    "params", [{}, {"groupId": "g", "tagId": "t"}, {"tagId": "t"}], ids=["none", "extra", "other"]
)
def test_the_parameters_must_match_the_template(params: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidPathParameterError, match="path parameters"):
        api_path("/v0/tag-groups/{groupId}/tags", **params)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(min_size=1, max_size=40))
def test_any_accepted_value_is_exactly_one_segment_that_reads_back(value: str) -> None:
    try:
        built = api_path("/v1/vendors/{id}:activate", id=value)
    except errors.InvalidPathParameterError:
        assert (
            not value.strip()
            or value in (".", "..")
            or "/" in value
            or any(ord(char) < 32 or 127 <= ord(char) < 160 for char in value)
        )
        return
    segment = built.removeprefix("/v1/vendors/").removesuffix(":activate")
    assert built.count("/") == 3
    assert all(char.isascii() and char.isprintable() for char in segment)
    assert not set(segment) & set("?#:/ ")
    assert unquote(segment) == value


@pytest.mark.anyio
async def test_resources_refuse_a_bad_id_before_any_request(make_client: MakeClient) -> None:
    recorder = Recorder([])

    async with make_client(recorder) as pleo:
        with pytest.raises(errors.InvalidPathParameterError):
            await pleo.vendors.get("../../v0/tags")
        with pytest.raises(errors.InvalidPathParameterError):
            await pleo.tags.update("", code="A")
        with pytest.raises(errors.InvalidPathParameterError):
            _ = [tag async for tag in pleo.tags.list("g/../h")]

    assert recorder.requests == []


@pytest.mark.anyio
async def test_resources_send_a_quoted_id(make_client: MakeClient) -> None:
    recorder = Recorder([httpx.Response(204)])

    async with make_client(recorder) as pleo:
        await pleo.vendors.archive("a?b")

    assert recorder.requests[0].url.raw_path == b"/v1/vendors/a%3Fb:archive"
