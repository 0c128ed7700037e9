"""Fixtures shared by every tier.

Service fixtures are session-scoped and start real processes on free loopback ports, so a test run
never clashes with a local world that a person left running with `make up`.

Property tests are reproducible: the "ci" hypothesis profile, used unless another is named, draws
the same examples on every run (derandomized, no example database) and prints the blob that
replays a failure. `make fuzz` runs them with the "fuzz" profile: many more examples, random seeds,
to find what the fixed examples miss (each find then becomes an `@example`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from local.pleo_emulator.launcher import start_pleo_emulator
from local.resources import LocalResources, create_all
from local.services import (
    Service,
    aws_endpoint_env,
    free_port,
    start_dynamodb_local,
    start_moto_server,
)
from tests.support.emulator import EmulatorControl, RunningEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

# The local-world fixtures (one session world, shared by the e2e and browser tiers).
pytest_plugins = ["tests.support.world_fixtures"]

settings.register_profile(
    "ci", derandomize=True, database=None, print_blob=True, max_examples=300, deadline=None
)
settings.register_profile(
    "fuzz", derandomize=False, print_blob=True, max_examples=10_000, deadline=None
)
# `--hypothesis-profile=NAME` is applied after this, so it wins.
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_dynamodb_local(free_port(), tmp_path_factory.mktemp("dynamodb-local"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_moto_server(free_port(), tmp_path_factory.mktemp("moto"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def local_resources(dynamodb_local: Service, moto_server: Service) -> LocalResources:
    """Every table, queue, key and secret of template.yaml, created on the stand-ins."""
    return create_all(dynamodb_local.url, moto_server.url, prefix="pleo-connector-test")


@pytest.fixture
def aws_local_env(
    dynamodb_local: Service, moto_server: Service, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point boto3 at the stand-ins for one test."""
    env = aws_endpoint_env(dynamodb_local.url, moto_server.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach an AWS account: fake credentials unless a fixture sets local endpoints."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def pleo_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """The Pleo emulator on a free loopback port, for the whole session."""
    service = start_pleo_emulator(free_port(), tmp_path_factory.mktemp("pleo-emulator"))
    control = EmulatorControl(service.url)
    yield RunningEmulator(url=service.url, control=control, service=service)
    control.close()
    service.stop()


@pytest.fixture
def emulator(pleo_emulator: RunningEmulator) -> RunningEmulator:
    """The session's emulator, reset to its initial state before the test."""
    pleo_emulator.control.reset()
    return pleo_emulator
