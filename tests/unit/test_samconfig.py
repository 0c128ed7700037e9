"""samconfig.toml deploys three environments from one template, with nothing account-specific."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from local.resources import load_template

pytestmark = pytest.mark.unit

SAMCONFIG = Path(__file__).resolve().parents[2] / "samconfig.toml"
PLEO_OF_ENVIRONMENT = {"dev": "staging", "staging": "staging", "prod": "production"}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))


def overrides(deploy: dict[str, Any]) -> dict[str, str]:
    raw = deploy["parameter_overrides"]
    pairs = raw if isinstance(raw, list) else raw.split()
    return dict(pair.split("=", 1) for pair in pairs)


def test_defaults_lint_on_validate_and_build_without_docker(config: dict[str, Any]) -> None:
    assert config["default"]["validate"]["parameters"]["lint"] is True
    build = config["default"]["build"]["parameters"]
    assert not build.get("use_container"), "the layer builds without Docker"


@pytest.mark.parametrize("environment", sorted(PLEO_OF_ENVIRONMENT))
def test_environment_deploys_with_a_managed_bucket(
    config: dict[str, Any], environment: str
) -> None:
    deploy = config[environment]["deploy"]["parameters"]

    assert deploy["resolve_s3"] is True
    assert "s3_bucket" not in deploy, "a hard-coded bucket only exists in one account"
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    assert deploy["stack_name"].endswith(environment)


@pytest.mark.parametrize("environment", sorted(PLEO_OF_ENVIRONMENT))
def test_environment_talks_to_its_pleo(config: dict[str, Any], environment: str) -> None:
    parameters = load_template()["Parameters"]
    values = overrides(config[environment]["deploy"]["parameters"])

    assert values["PleoEnvironment"] == PLEO_OF_ENVIRONMENT[environment]
    for name, value in values.items():
        assert name in parameters, f"{environment}: no template parameter {name}"
        allowed = parameters[name].get("AllowedValues")
        assert allowed is None or value in allowed, f"{environment}: {name}={value}"


def test_environments_are_separate_stacks(config: dict[str, Any]) -> None:
    stacks = {config[env]["deploy"]["parameters"]["stack_name"] for env in PLEO_OF_ENVIRONMENT}
    assert len(stacks) == len(PLEO_OF_ENVIRONMENT)


def test_production_changes_are_confirmed(config: dict[str, Any]) -> None:
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
