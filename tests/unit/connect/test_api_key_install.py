"""The API-key install: the shape check of a pasted key (clear messages that never repeat it),
and an installation create whose outcome is unknown (read back, never sent twice)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pleo_connector.aio import run
from pleo_connector.connect.api_key_install import (
    ApiKeyInstallDeps,
    ApiKeyInstallOutcome,
    check_api_key_shape,
    install_with_api_key,
)
from pleo_connector.connect.errors import InvalidApiKeyError, PleoUnavailableError
from pleo_connector.pleo.errors import APITimeoutError, NotFoundError, OutcomeUnknownError
from pleo_connector.pleo.models import Installation, Introspection
from pleo_connector.vocabulary import InstallationStatus
from tests.unit.connect.fakes import (
    COMPANY,
    INSTALLATION,
    FakeInstallations,
    FakeInstallationsApi,
    FakePleo,
    FakePleoClients,
    FakeQueue,
    FakeTokens,
    installation,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.conftest import MetricKey

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "pasted",
    [
        "",
        "   ",
        "short-key",
        "pleo_key_\u00e6" + "k" * 20,
        "pleo key with spaces 123",
        "k" * 513,
        None,
    ],
)
def test_a_malformed_key_is_refused_without_repeating_it(pasted: str | None) -> None:
    with pytest.raises(InvalidApiKeyError) as raised:
        check_api_key_shape(pasted)

    assert raised.value.http_status == 400
    if pasted and pasted.strip():
        assert pasted.strip() not in raised.value.user_message


def test_a_well_formed_key_is_returned_without_surrounding_whitespace() -> None:
    assert check_api_key_shape("  pleo_key_0123456789abcdef\n") == "pleo_key_0123456789abcdef"


# An installation create whose outcome is unknown -------------------------------------------------


class UnconfirmedCreate(FakeInstallationsApi):
    """Pleo's `/v1/installations/me` for a key with no installation yet; `create` fails with
    an unknown outcome, and `exists_after_create` says whether Pleo had made it anyway."""

    def __init__(self, *, exists_after_create: bool) -> None:
        super().__init__(installation(InstallationStatus.ACTIVATED))
        self.exists_after_create = exists_after_create
        self.created = False
        self.creates = 0
        self.gets = 0

    async def get(self) -> Installation:
        self.gets += 1
        if not self.created:
            raise NotFoundError("getClientInstallation: HTTP 404", status_code=404)
        return self.installation

    async def create(
        self, status: InstallationStatus | None = None, metadata: dict[str, Any] | None = None
    ) -> Installation:
        self.creates += 1
        self.created = self.exists_after_create
        raise OutcomeUnknownError(
            "createClientInstallation: no response in time (outcome unknown)",
            operation="createClientInstallation",
            cause=APITimeoutError("createClientInstallation: no response in time"),
        )


class ApiKeyPleo(FakePleo):
    async def introspect(self) -> Introspection:
        return Introspection.model_validate(
            {"authMethod": "API_KEY", "clientId": "c", "subjectURN": f"urn:pleo:company:{COMPANY}"}
        )


class ApiKeyClients(FakePleoClients):
    def with_api_key(self, api_key: str) -> ApiKeyPleo:
        return ApiKeyPleo(self.api)


def install(
    api: UnconfirmedCreate,
) -> tuple[ApiKeyInstallOutcome, FakeTokens, FakeQueue, FakeInstallations]:
    tokens, queue, installations = FakeTokens(), FakeQueue(), FakeInstallations()
    deps = ApiKeyInstallDeps(
        pleo=ApiKeyClients(api), tokens=tokens, installations=installations, sync_queue=queue
    )
    outcome = run(install_with_api_key(deps, "pleo_key_" + "k" * 30))
    return outcome, tokens, queue, installations


def test_an_unconfirmed_create_that_pleo_made_is_adopted_after_a_re_read() -> None:
    api = UnconfirmedCreate(exists_after_create=True)

    outcome, tokens, queue, installations = install(api)

    assert outcome.installation_id == INSTALLATION
    assert (api.creates, api.gets) == (1, 2)  # never a second create
    assert tokens.saved == [INSTALLATION]
    assert [request.installation_id for request in queue.sent] == [INSTALLATION]
    assert installations.get(INSTALLATION) is not None


def test_an_unconfirmed_create_that_pleo_did_not_make_asks_to_try_again() -> None:
    api = UnconfirmedCreate(exists_after_create=False)

    with pytest.raises(PleoUnavailableError) as raised:
        install(api)

    assert raised.value.http_status == 502
    assert "try again" in raised.value.user_message
    assert (api.creates, api.gets) == (1, 2)


# Installs by outcome ---------------------------------------------------------------------------


def test_each_api_key_install_is_counted_by_its_outcome(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    install(UnconfirmedCreate(exists_after_create=True))
    with pytest.raises(PleoUnavailableError):  # a 502: Pleo's problem, not the user's
        install(UnconfirmedCreate(exists_after_create=False))
    deps = ApiKeyInstallDeps(
        pleo=ApiKeyClients(UnconfirmedCreate(exists_after_create=True)),
        tokens=FakeTokens(),
        installations=FakeInstallations(),
        sync_queue=FakeQueue(),
    )
    with pytest.raises(InvalidApiKeyError):
        run(install_with_api_key(deps, "short-key"))

    assert recorded_metrics() == {
        ("Installs", (("Method", "api_key"), ("Outcome", "installed"))): [1],
        ("Installs", (("Method", "api_key"), ("Outcome", "failed"))): [1],
        ("Installs", (("Method", "api_key"), ("Outcome", "refused"))): [1],
    }
