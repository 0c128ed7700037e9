"""The cold-start benchmark measures what Lambda would run: the right environment, the right
architecture, and an honest verdict on shipped bytecode."""

from __future__ import annotations

import copy
import py_compile
from pathlib import Path

import pytest

from bench import bench_cold_start
from bench.__main__ import discover
from local.resources import load_template

pytestmark = pytest.mark.unit


def test_environment_resolves_the_template_with_default_parameters() -> None:
    template = load_template()

    environment = bench_cold_start.function_environment(template, "SyncWorkerFunction")

    assert environment["PLEO_API_URL"] == "https://external.staging.pleo.io"
    assert environment["PLEO_AUTH_URL"] == "https://auth.staging.pleo.io"
    assert (
        environment["PUBLIC_BASE_URL"] == "https://bench0api1.execute-api.eu-west-1.amazonaws.com"
    )
    assert environment["SYNC_QUEUE_URL"].startswith("https://sqs.eu-west-1.amazonaws.com/")
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(
        template["Resources"]["SyncWorkerFunction"]["Properties"]["MemorySize"]
    )
    declared = template["Globals"]["Function"]["Environment"]["Variables"]
    assert set(declared) <= set(environment)


def test_environment_follows_the_public_base_url_parameter() -> None:
    template = load_template()
    template["Parameters"]["PublicBaseUrl"]["Default"] = "https://connector.example.com"

    environment = bench_cold_start.function_environment(template, "HealthFunction")

    assert environment["PUBLIC_BASE_URL"] == "https://connector.example.com"


def test_host_template_changes_only_the_architecture_and_code_paths() -> None:
    template = load_template()
    original = copy.deepcopy(template)

    host = bench_cold_start.host_template(template, "x86_64")

    assert template == original
    assert host["Globals"]["Function"]["Architectures"] == ["x86_64"]
    layer = host["Resources"]["SharedLayer"]
    assert layer["Metadata"] == {**original["Resources"]["SharedLayer"]["Metadata"],
                                 "BuildArchitecture": "x86_64"}  # fmt: skip
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    code = Path(host["Resources"]["HealthFunction"]["Properties"]["CodeUri"])
    assert code.is_absolute()
    assert (code / "app.py").exists()
    assert host["Resources"]["Table"] == original["Resources"]["Table"]


def test_sources_without_unchecked_hash_bytecode_are_reported(tmp_path: Path) -> None:
    compiled = tmp_path / "compiled.py"
    timestamped = tmp_path / "pkg" / "timestamped.py"
    bare = tmp_path / "pkg" / "bare.py"
    for source in (compiled, timestamped, bare):
        source.parent.mkdir(exist_ok=True)
        source.write_text("VALUE = 1\n")
    py_compile.compile(
        str(compiled), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    py_compile.compile(str(timestamped), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)

    missing = bench_cold_start.sources_without_bytecode(tmp_path)

    assert missing == [bare, timestamped]


def test_bench_line_format() -> None:
    assert bench_cold_start.bench_line("cold_start.X.init_median", 123.456, "ms") == (
        "bench: cold_start.X.init_median = 123.5 ms"
    )
    assert bench_cold_start.bench_line("cold_start.X.ratio_to_boto3", 0.7123, "x") == (
        "bench: cold_start.X.ratio_to_boto3 = 0.71 x"
    )
    assert bench_cold_start.bench_line("build.sources_without_bytecode", 0, "files") == (
        "bench: build.sources_without_bytecode = 0 files"
    )


def test_every_bench_module_is_discovered() -> None:
    assert "bench_cold_start" in discover([])
    assert discover(["no-such-benchmark"]) == []


def test_each_function_is_measured_with_its_own_layers_and_the_gnucash_reader_apart() -> None:
    template = load_template()
    build = bench_cold_start.ROOT / ".aws-sam" / "not-built"

    found = {
        target.name: target
        for target in bench_cold_start.targets(template, build, build / "runtime")
    }

    worker = found["SyncWorkerFunction"]
    assert worker.paths[1:4] == [
        str(build / "SharedLayer" / "python"),
        str(build / "TracingLayer" / "python"),
        str(build / "GnuCashLayer" / "python"),
    ]
    assert str(build / "GnuCashLayer" / "python") not in found["SettingsFunction"].paths
    gnucash = found[bench_cold_start.GNUCASH_TARGET]
    assert gnucash.paths == worker.paths
    assert gnucash.environment["ADAPTER"] == "gnucash"
    assert "import pleo_connector.adapters.gnucash_book" in gnucash.body
