"""Cold start of every function of template.yaml, as `sam build` ships it.

For each function: the init, i.e. importing the handler module with the code directory and the
layer on sys.path (as /var/task and /opt/python are), timed inside a fresh interpreter, median of
several runs. Beside it, in the same run and the same way, the baseline every Python Lambda pays
anyway: `import boto3` plus one client. Also the built layer's size, and whether the build ships
compiled bytecode for every source file (Lambda cannot write .pyc into its read-only code
directory, so without it every cold start compiles again). See bench/README.md for the method.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.resources import load_template, resources_of_type

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".aws-sam" / "build"
BENCH_DIR = ROOT / ".aws-sam" / "bench"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
LAYER = "SharedLayer"
GNUCASH_LAYER = "GnuCashLayer"
WORKER = "SyncWorkerFunction"
# The worker as a GnuCash deployment cold-starts it for its first sync: the handler, and the
# reader with piecash and SQLAlchemy from its own layer.
GNUCASH_TARGET = f"{WORKER}.gnucash"
GNUCASH_READER = "pleo_connector.adapters.gnucash_book"
RUNS = int(os.environ.get("BENCH_COLD_START_RUNS", "11"))
TARGET_RATIO = 1.2
REGION = "eu-west-1"
ACCOUNT = "123456789012"
BASELINE = "boto3"
# What the Lambda runtime brings besides the standard library (it lives in /var/runtime).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
ARCHITECTURE_OF_MACHINE = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
}
PSEUDO_PARAMETERS = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "pleo-connector-bench",
}
MIB = 1024 * 1024

# Runs in the measured interpreter. Only `sys` and `time` (both built in) precede the clock.
CHILD = """\
import sys, time
sys.path[:0] = {paths!r}
start = time.perf_counter_ns()
{body}
elapsed = time.perf_counter_ns() - start
sys.stdout.write(str(elapsed))
"""
BASELINE_BODY = f"import boto3\nboto3.client('dynamodb', region_name={REGION!r})"


@dataclass(frozen=True)
class Variant:
    """One way of running every function: a name (empty for the template's defaults) and the
    environment variables it sets over the template's. Each variant is one more row per function
    in this benchmark and in bench_first_request.py, measured in the same rounds."""

    name: str
    environment: dict[str, str] = field(default_factory=dict)


# Tracing off is the template's default (EnableTracing=false); on, each function loads
# Powertools' Tracer and the X-Ray SDK of the TracingLayer on its first invocation, so its init
# should cost what it costs off (bench_first_request.py sees the rest).
VARIANTS: tuple[Variant, ...] = (Variant(""), Variant("tracing", {"TRACING_ENABLED": "true"}))


@dataclass
class Target:
    """One thing to cold-start: a function of the template, or the boto3 baseline."""

    name: str
    body: str
    paths: list[str]
    cwd: Path
    environment: dict[str, str]
    samples_ms: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)


# ---------------------------------------------------------------------------------------------
# Template values, resolved the way CloudFormation would with default parameters
# ---------------------------------------------------------------------------------------------
def placeholder(template: Mapping[str, Any], logical: str) -> str:
    """What `!Ref <resource>` would give once deployed: a plausible physical id."""
    kind = template["Resources"][logical]["Type"]
    if kind == "AWS::SQS::Queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/bench-{logical}"
    if kind == "AWS::KMS::Key":
        return "0b0e0e0e-0000-4000-8000-00000000be7c"
    if kind == "AWS::SecretsManager::Secret":
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bench-{logical}-AbCdEf"
    if kind == "AWS::Serverless::HttpApi":
        return "bench0api1"
    return f"bench-{logical}"


def resolve(value: Any, template: Mapping[str, Any]) -> str:
    """A template value (literal or intrinsic) as the string a function would see."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"cannot resolve {value!r}")
    [(function, argument)] = value.items()
    if function == "Ref":
        if argument in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[argument]
        if argument in template.get("Parameters", {}):
            return resolve(template["Parameters"][argument].get("Default", ""), template)
        return placeholder(template, argument)
    if function == "Fn::GetAtt":
        logical, attribute = argument
        return f"arn:aws:bench:{REGION}:{ACCOUNT}:{logical}/{attribute}"
    if function == "Fn::FindInMap":
        mapping, key, attribute = (resolve(part, template) for part in argument)
        return resolve(template["Mappings"][mapping][key][attribute], template)
    if function == "Fn::If":
        condition, when_true, when_false = argument
        chosen = when_true if holds(condition, template) else when_false
        return resolve(chosen, template)
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {name: resolve(item, template) for name, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return local[name]
            if "." in name:
                logical, attribute = name.split(".", 1)
                return resolve({"Fn::GetAtt": [logical, attribute]}, template)
            return resolve({"Ref": name}, template)

        return re.sub(r"\$\{([\w:.]+)\}", substitute, text)
    raise ValueError(f"cannot resolve {function}")


def holds(condition: str | Mapping[str, Any], template: Mapping[str, Any]) -> bool:
    """Evaluate a named condition (or a condition expression) with default parameters."""
    expression = template["Conditions"][condition] if isinstance(condition, str) else condition
    [(function, argument)] = expression.items()
    if function == "Fn::Equals":
        left, right = (resolve(part, template) for part in argument)
        return left == right
    if function == "Fn::Not":
        return not holds(argument[0], template)
    if function == "Fn::And":
        return all(holds(part, template) for part in argument)
    if function == "Fn::Or":
        return any(holds(part, template) for part in argument)
    if function == "Condition":
        return holds(argument, template)
    raise ValueError(f"cannot evaluate {function}")


def function_environment(template: Mapping[str, Any], name: str) -> dict[str, str]:
    """What Lambda puts in a function's environment: its own variables over Globals, plus the
    runtime's. Credentials are dummies: creating a client must not look for real ones."""
    globals_ = template.get("Globals", {}).get("Function", {})
    properties = template["Resources"][name]["Properties"]
    variables = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    memory = properties.get("MemorySize", globals_.get("MemorySize", 128))
    return {
        **runtime_environment(),
        "AWS_LAMBDA_FUNCTION_NAME": f"pleo-connector-bench-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        **{key: resolve(value, template) for key, value in variables.items()},
    }


def runtime_environment() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",  # dummies: nothing is ever sent
        "AWS_SESSION_TOKEN": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


# ---------------------------------------------------------------------------------------------
# The artifact to measure
# ---------------------------------------------------------------------------------------------
def template_architecture(template: Mapping[str, Any]) -> str:
    return str(template["Globals"]["Function"]["Architectures"][0])


def host_architecture() -> str:
    return ARCHITECTURE_OF_MACHINE.get(platform.machine().lower(), platform.machine())


def host_template(template: Mapping[str, Any], architecture: str) -> dict[str, Any]:
    """The same template built for `architecture`, with code paths made absolute."""
    copy: dict[str, Any] = json.loads(json.dumps(template))
    copy["Globals"]["Function"]["Architectures"] = [architecture]
    for resource in copy["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = str((ROOT / properties[key]).resolve())
        if resource["Type"] == "AWS::Serverless::Function" and "Architectures" in properties:
            properties["Architectures"] = [architecture]
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["CompatibleArchitectures"] = [architecture]
            resource.setdefault("Metadata", {})["BuildArchitecture"] = architecture
    return copy


def build_for_host(template: Mapping[str, Any]) -> Path:
    """The build directory to measure: `sam build`'s own when it targets this machine, else a
    copy built by `sam build` for this machine's architecture (same pins, same build method)."""
    architecture = host_architecture()
    if architecture == template_architecture(template):
        return BUILD_DIR
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    template_path = BENCH_DIR / "template.json"
    template_path.write_text(json.dumps(host_template(template, architecture), indent=1))
    build_dir = BENCH_DIR / "build"
    python_dir = Path(sys.executable).resolve().parent  # sam build wants python3.13 on PATH
    environment = {
        **os.environ,
        "PATH": f"{python_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    command = [
        str(SAM), "build", "--template", str(template_path), "--build-dir", str(build_dir),
        "--cache-dir", str(BENCH_DIR / "cache"), "--cached", "--parallel",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"sam build for {architecture} failed:\n{result.stdout}{result.stderr}")
    compile_bytecode(build_dir)
    return build_dir


def compile_bytecode(directory: Path) -> None:
    """What `make build` does after `sam build`."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
         str(directory)],
        check=True,
    )  # fmt: skip


def distributions(layer_python: Path) -> set[str]:
    return {path.name for path in layer_python.glob("*.dist-info")}


def sources_without_bytecode(directory: Path) -> list[Path]:
    """Source files whose unchecked-hash .pyc (for this interpreter) is missing: Lambda would
    compile them again on every cold start."""
    missing = []
    for source in sorted(directory.rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        try:
            header = cached.read_bytes()[:8]
        except FileNotFoundError:
            missing.append(source)
            continue
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != importlib.util.MAGIC_NUMBER or flags != 0b01:
            missing.append(source)
    return missing


def tree_size(directory: Path) -> int:
    return sum(path.lstat().st_size for path in directory.rglob("*") if path.is_file())


def zipped_size(directory: Path) -> int:
    """Size of the deployment zip, compressed as the upload is."""
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "layer.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    bundle.write(path, path.relative_to(directory))
        return archive.stat().st_size


def runtime_directory() -> Path:
    """boto3 and its dependencies, and nothing else of the app's virtualenv: the stand-in for the
    Lambda runtime's own packages. A module missing from the layer then fails here too."""
    runtime = BENCH_DIR / "runtime"
    shutil.rmtree(runtime, ignore_errors=True)
    runtime.mkdir(parents=True)
    for package in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{package} is not installed in {sys.prefix}")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    return runtime


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------
def function_layers(template: Mapping[str, Any], name: str) -> list[str]:
    """The logical ids of a function's layers, in Lambda's order: Globals' first, then its own
    (SAM appends a function's list to Globals')."""
    globals_ = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    own = template["Resources"][name]["Properties"].get("Layers", [])
    return [str(layer["Ref"]) for layer in [*globals_, *own]]


def targets(template: dict[str, Any], build_dir: Path, runtime: Path) -> list[Target]:
    found = [
        Target(
            name=BASELINE,
            body=BASELINE_BODY,
            paths=[str(runtime)],
            cwd=runtime,
            environment=runtime_environment(),
        )
    ]
    functions = resources_of_type(template, "AWS::Serverless::Function").items()
    for variant, (name, function) in ((v, f) for v in VARIANTS for f in functions):
        module, attribute = str(function["Properties"]["Handler"]).rsplit(".", 1)
        code = build_dir / name
        # /var/task, /opt/python (every layer's content merged there), then the runtime's
        # packages, as Lambda orders them.
        layers = [str(build_dir / layer / "python") for layer in function_layers(template, name)]
        body = (
            f"import importlib\nhandler = getattr(importlib.import_module({module!r}), "
            f"{attribute!r})"
        )
        environment = {**function_environment(template, name), "LAMBDA_TASK_ROOT": str(code)}
        found.append(
            Target(
                name=name if not variant.name else f"{name}.{variant.name}",
                body=body,
                paths=[str(code), *layers, str(runtime)],
                cwd=code,
                environment={**environment, **variant.environment},
            )
        )
        module_file = code / (module.replace(".", "/") + ".py")
        if not module_file.exists():
            found[-1].error = f"not built yet: {module_file.relative_to(ROOT)} is missing"
        if name == WORKER and not variant.name:
            found.append(
                Target(
                    name=GNUCASH_TARGET,
                    body=f"{body}\nimport {GNUCASH_READER}",
                    paths=[str(code), *layers, str(runtime)],
                    cwd=code,
                    environment={**environment, "ADAPTER": "gnucash"},
                    error=found[-1].error,
                )
            )
    return found


def measure_once(target: Target) -> float:
    """Milliseconds of init in a fresh interpreter: isolated (-I), without site-packages (-S),
    never writing bytecode (-B: Lambda's code directory is read-only)."""
    script = CHILD.format(paths=target.paths, body=target.body)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", script],
        cwd=target.cwd,
        env=target.environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(last)
    return int(result.stdout.strip()) / 1e6


def measure(all_targets: Iterable[Target], runs: int) -> None:
    """Round-robin over the targets, so a busy moment of the machine hits all of them alike; the
    first round only warms the page cache and is dropped."""
    live = [target for target in all_targets if target.error is None]
    for round_number in range(runs + 1):
        for target in live:
            if target.error is not None:
                continue
            try:
                elapsed = measure_once(target)
            except (RuntimeError, subprocess.TimeoutExpired) as failure:
                target.error = f"init failed: {failure}"
                continue
            if round_number:
                target.samples_ms.append(elapsed)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
def bench_line(name: str, value: float | int, unit: str) -> str:
    shown = f"{value:.1f}" if isinstance(value, float) and unit != "x" else f"{value}"
    if unit == "x":
        shown = f"{value:.2f}"
    return f"bench: {name} = {shown} {unit}"


def report(
    all_targets: list[Target],
    layer_dir: Path,
    build_dir: Path,
    without_bytecode: list[Path],
    note: str,
) -> list[str]:
    lines: list[str] = []
    baseline = next(target for target in all_targets if target.name == BASELINE)
    if baseline.samples_ms:
        lines.append(bench_line("cold_start.boto3_client.init_median", baseline.median_ms, "ms"))
    for target in all_targets:
        if target.name == BASELINE or not target.samples_ms:
            continue
        lines.append(bench_line(f"cold_start.{target.name}.init_median", target.median_ms, "ms"))
        if baseline.samples_ms:
            ratio = target.median_ms / baseline.median_ms
            lines.append(bench_line(f"cold_start.{target.name}.ratio_to_boto3", ratio, "x"))
    size, zipped = tree_size(layer_dir), zipped_size(layer_dir)
    lines.append(bench_line(f"layer.{LAYER}.size", size / MIB, "MiB"))
    lines.append(bench_line(f"layer.{LAYER}.zip_size", zipped / MIB, "MiB"))
    gnucash_dir = build_dir / GNUCASH_LAYER
    if gnucash_dir.is_dir():
        lines.append(bench_line(f"layer.{GNUCASH_LAYER}.size", tree_size(gnucash_dir) / MIB, "MiB"))
        lines.append(
            bench_line(f"layer.{GNUCASH_LAYER}.zip_size", zipped_size(gnucash_dir) / MIB, "MiB")
        )
    lines.append(bench_line("build.sources_without_bytecode", len(without_bytecode), "files"))

    lines.append("")
    lines.append(
        f"Cold start: init of the built artifact, fresh process, median of {RUNS} ({note})"
    )
    header = (
        f"  {'':28} {'median':>9} {'min':>9} {'max':>9} {'x boto3':>8}  target <= {TARGET_RATIO}x"
    )
    lines.append(header)
    for target in all_targets:
        label = {
            BASELINE: "import boto3 + one client",
            GNUCASH_TARGET: "worker + GnuCash reader",
        }.get(target.name, target.name)
        if not target.samples_ms:
            lines.append(f"  {label:28} {target.error or 'no samples'}")
            continue
        ratio = target.median_ms / baseline.median_ms if baseline.samples_ms else float("nan")
        verdict = "" if target.name == BASELINE else ("met" if ratio <= TARGET_RATIO else "NOT met")
        lines.append(
            f"  {label:28} {target.median_ms:7.1f}ms {min(target.samples_ms):7.1f}ms "
            f"{max(target.samples_ms):7.1f}ms {ratio:7.2f}x  {verdict}"
        )
    lines.append(f"Layer {LAYER} ({layer_dir.relative_to(ROOT)}): {size / MIB:.1f} MiB unzipped, "
                 f"{zipped / MIB:.1f} MiB zipped")  # fmt: skip
    if without_bytecode:
        lines.append(f"{build_dir.relative_to(ROOT)}: {len(without_bytecode)} source files ship "
                     "without unchecked-hash bytecode, e.g.:")  # fmt: skip
        lines.extend(f"  {path.relative_to(ROOT)}" for path in without_bytecode[:5])
    else:
        lines.append(f"{build_dir.relative_to(ROOT)}: every source file ships its bytecode")
    return lines


def main() -> int:
    if not (BUILD_DIR / "template.yaml").exists():
        print("no build: run `make build` first (make bench does)", file=sys.stderr)
        return 1
    template = load_template()
    built_for = template_architecture(template)
    measured_dir = build_for_host(template)
    real_layer = BUILD_DIR / LAYER / "python"
    note = f"built for {built_for}"
    if measured_dir != BUILD_DIR:
        note = (
            f"measured on a {host_architecture()} build of the same template; "
            f"the deployed build is {built_for}"
        )
        if distributions(measured_dir / LAYER / "python") != distributions(real_layer):
            print("the host build's packages differ from the deployed build's", file=sys.stderr)
            return 1
    shipped = {path.name for path in real_layer.iterdir()}
    if "pleo_connector" not in shipped or shipped & {"boto3", "botocore"}:
        print(f"{real_layer.relative_to(ROOT)}: must hold pleo_connector and no boto3/botocore "
              "(the runtime has them)", file=sys.stderr)  # fmt: skip
        return 1
    runtime = runtime_directory()

    all_targets = targets(template, measured_dir, runtime)
    measure(all_targets, RUNS)
    without_bytecode = sources_without_bytecode(BUILD_DIR)
    print("\n".join(report(all_targets, BUILD_DIR / LAYER, BUILD_DIR, without_bytecode, note)))

    failed = [t for t in all_targets if t.error and not t.error.startswith("not built yet")]
    return 1 if failed or without_bytecode else 0


if __name__ == "__main__":
    sys.exit(main())
