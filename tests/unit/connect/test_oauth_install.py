"""The OAuth callback's service: strict parsing, and the order of the checks (state first, then
browser, issuer, Pleo's error, code), with every collaborator faked.

Callbacks carry `iss` unless a test says otherwise: PLEO_REQUIRE_ISS is on by default."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pleo_connector.aio import run
from pleo_connector.connect.errors import (
    AuthorizationDeniedError,
    BadCallbackError,
    GrantExchangeError,
    IssuerMismatchError,
    PleoUnavailableError,
    StateRejectedError,
)
from pleo_connector.connect.oauth_install import (
    MAX_QUERY_CHARS,
    CallbackParams,
    OAuthInstallDeps,
    complete_oauth_install,
    idempotency_key,
)
from pleo_connector.pleo.errors import APITimeoutError, InvalidGrantError
from pleo_connector.vocabulary import InstallationStatus
from tests.unit.connect.fakes import (
    ISSUER,
    FakeBinding,
    FakeInstallationsApi,
    FakeOAuthClient,
    FakePleoClients,
    FakeQueue,
    FakeStates,
    FakeTokens,
    installation,
    oauth_deps,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.conftest import MetricKey

pytestmark = pytest.mark.unit

STATE = "s" * 43
CODE_CALLBACK = f"state={STATE}&code=c&iss={ISSUER}"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "code=abc",
        "code=abc&state=",
        f"state={STATE}&code=",
        f"state={STATE}&code=abc&iss=",
        f"state={STATE}&error=",
        f"code=abc&state={STATE}&state={STATE}",
        f"code=abc&code=def&state={STATE}",
        f"state={STATE}%0D%0Ax",
        f"state={STATE}&code=%C3%A9",
        f"state={STATE}%FF",
        f"state={STATE}&code=" + "c" * 3000,
        f"state={STATE}&code=" + "c" * MAX_QUERY_CHARS,
    ],
    ids=[
        "empty",
        "no state",
        "empty state",
        "empty code",
        "empty iss",
        "empty error",
        "state twice",
        "code twice",
        "CR/LF",
        "non-ASCII",
        "invalid UTF-8",
        "long value",
        "long query",
    ],
)
def test_a_malformed_callback_is_refused(query: str) -> None:
    with pytest.raises(BadCallbackError) as raised:
        CallbackParams.parse(query)

    assert "c" * 100 not in raised.value.user_message


def test_a_callback_is_read_with_prose_allowed_only_in_the_description() -> None:
    params = CallbackParams.parse(
        f"state={STATE}&error=access_denied&error_description=The+user+said+no&iss={ISSUER}&x=1"
    )

    assert (params.state, params.error, params.iss) == (STATE, "access_denied", ISSUER)
    assert params.error_description == "The user said no"
    with pytest.raises(BadCallbackError):
        CallbackParams.parse(f"state={STATE}&error=access+denied")


def test_the_idempotency_key_depends_on_the_state_and_the_browser() -> None:
    params = CallbackParams.parse(f"state={STATE}&code=abc")
    other = CallbackParams.parse(f"state={'t' * 43}&code=abc")

    assert idempotency_key(params, ["a=1", "b=2"]) == idempotency_key(params, ["b=2", "a=1"])
    assert idempotency_key(params, ["a=1"]) != idempotency_key(params, ["a=2"])
    assert idempotency_key(params, ["a=1"]) != idempotency_key(other, ["a=1"])


def setup(
    *,
    binding: bool = True,
    exchange_error: Exception | None = None,
    requires_configuration: bool = True,
    pleo_env: dict[str, str | None] | None = None,
) -> tuple[
    OAuthInstallDeps, FakeStates, FakeOAuthClient, FakeInstallationsApi, FakeQueue, FakeTokens
]:
    states = FakeStates(STATE)
    oauth = FakeOAuthClient(error=exchange_error)
    api = FakeInstallationsApi(installation(InstallationStatus.AUTHORIZED))
    queue = FakeQueue()
    tokens = FakeTokens()
    deps = oauth_deps(
        requires_configuration=requires_configuration,
        pleo_env=pleo_env,
        states=states,
        binding=FakeBinding(binding),
        oauth=oauth,
        pleo=FakePleoClients(api),
        tokens=tokens,
        queue=queue,
    )
    return deps, states, oauth, api, queue, tokens


def test_another_browser_uses_the_state_up_and_exchanges_nothing() -> None:
    deps, states, oauth, *_ = setup(binding=False)

    with pytest.raises(StateRejectedError):
        run(complete_oauth_install(deps, CallbackParams.parse(f"state={STATE}&code=c"), []))

    assert states.consumed == [STATE]
    assert oauth.exchanges == []


def test_an_error_from_another_issuer_is_refused_as_a_mix_up() -> None:
    deps, states, oauth, *_ = setup()
    query = f"state={STATE}&error=access_denied&iss=https://evil.example"

    with pytest.raises(IssuerMismatchError):
        run(complete_oauth_install(deps, CallbackParams.parse(query), []))

    assert states.consumed == [STATE]
    assert oauth.exchanges == []


def test_a_callback_without_iss_is_refused_when_the_server_sends_it() -> None:
    deps, states, oauth, _, _, tokens = setup()

    with pytest.raises(IssuerMismatchError) as raised:
        run(complete_oauth_install(deps, CallbackParams.parse(f"state={STATE}&code=c"), []))

    assert "did not say which server" in raised.value.user_message
    assert states.consumed == [STATE]
    assert (oauth.exchanges, tokens.saved) == ([], [])


def test_a_callback_without_iss_is_accepted_when_not_required() -> None:
    deps, _, oauth, *_ = setup(pleo_env={"PLEO_REQUIRE_ISS": "false"})

    run(complete_oauth_install(deps, CallbackParams.parse(f"state={STATE}&code=c"), []))

    assert len(oauth.exchanges) == 1


@pytest.mark.parametrize("require_iss", ["true", "false"])
@pytest.mark.parametrize(
    "iss",
    [f"{ISSUER}/", ISSUER.upper(), f"{ISSUER}:443", f"{ISSUER}/oauth"],
    ids=["trailing slash", "other case", "explicit port", "longer path"],
)
def test_the_issuer_is_compared_exactly(iss: str, require_iss: str) -> None:
    deps, _, oauth, *_ = setup(pleo_env={"PLEO_REQUIRE_ISS": require_iss})
    query = f"state={STATE}&code=c&iss={iss}"

    with pytest.raises(IssuerMismatchError):
        run(complete_oauth_install(deps, CallbackParams.parse(query), []))

    assert oauth.exchanges == []


def test_without_pleo_issuer_the_auth_urls_origin_is_expected() -> None:
    deps, _, oauth, *_ = setup(pleo_env={"PLEO_ISSUER": None, "PLEO_AUTH_URL": f"{ISSUER}/"})

    run(complete_oauth_install(deps, CallbackParams.parse(CODE_CALLBACK), []))

    assert len(oauth.exchanges) == 1


def test_pleos_error_is_reported_and_nothing_is_exchanged() -> None:
    deps, _, oauth, *_ = setup()
    query = f"state={STATE}&error=access_denied&error_description=no&iss={ISSUER}"

    with pytest.raises(AuthorizationDeniedError) as raised:
        run(complete_oauth_install(deps, CallbackParams.parse(query), []))

    assert (raised.value.error, raised.value.description) == ("access_denied", "no")
    assert oauth.exchanges == []


def test_a_refused_code_stores_nothing() -> None:
    deps, _, oauth, api, queue, tokens = setup(exchange_error=InvalidGrantError("invalid_grant"))

    with pytest.raises(GrantExchangeError):
        run(complete_oauth_install(deps, CallbackParams.parse(CODE_CALLBACK), []))

    assert len(oauth.exchanges) == 1
    assert (tokens.saved, queue.sent, api.updates) == ([], [], [])


def test_the_exchange_uses_the_stored_verifier_and_redirect_uri() -> None:
    deps, _, oauth, _, queue, tokens = setup()

    outcome = run(
        complete_oauth_install(
            deps,
            CallbackParams.parse(f"state={STATE}&code=the-code&iss={ISSUER}"),
            [],
        )
    )

    assert oauth.exchanges == [("the-code", "v" * 43, "https://app.example/oauth/callback")]
    assert (outcome.status, outcome.needs_configuration) == (InstallationStatus.AUTHORIZED, True)
    assert tokens.saved == [outcome.installation_id]
    assert queue.sent == []  # configured on the settings page first


def test_without_configuration_an_authorized_installation_starts_its_first_sync() -> None:
    deps, _, _, api, queue, _ = setup(requires_configuration=False)

    outcome = run(complete_oauth_install(deps, CallbackParams.parse(CODE_CALLBACK), []))

    assert api.updates == [("PENDING_INTEGRATION", {"kept": {"by": "someone else"}})]
    assert outcome.status == InstallationStatus.PENDING_INTEGRATION
    (request,) = queue.sent
    assert request.activate_on_success is True


def test_each_oauth_callback_is_counted_by_its_outcome(
    recorded_metrics: Callable[[], dict[MetricKey, list[float]]],
) -> None:
    deps, *_ = setup()
    run(complete_oauth_install(deps, CallbackParams.parse(CODE_CALLBACK), []))
    refused, *_ = setup(binding=False)
    with pytest.raises(StateRejectedError):
        run(complete_oauth_install(refused, CallbackParams.parse(CODE_CALLBACK), []))
    failing, *_ = setup(exchange_error=APITimeoutError("token endpoint: no response in time"))
    with pytest.raises(PleoUnavailableError):
        run(complete_oauth_install(failing, CallbackParams.parse(CODE_CALLBACK), []))

    assert recorded_metrics() == {
        ("Installs", (("Method", "oauth"), ("Outcome", "installed"))): [1],
        ("Installs", (("Method", "oauth"), ("Outcome", "refused"))): [1],
        ("Installs", (("Method", "oauth"), ("Outcome", "failed"))): [1],
    }
