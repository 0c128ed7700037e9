"""The GnuCash layer builds as `sam build` builds it for Lambda's Python 3.13, and works there.

`sam build` (SAM CLI in .venv-sam, python3.13 first on PATH, as `make build` runs it) builds
layers/gnucash twice from one template: for the deployed architecture (arm64) and for x86_64.
Then:
- every native extension of the arm64 build is an aarch64 ELF (of the x86_64 build, x86-64);
- the pins are what was built, each exactly;
- a fresh python3.13 that sees nothing but a build (isolated, no site-packages) imports piecash
  and opens a generated book with it, read-only. The x86_64 build runs with its extensions;
  the arm64 build, whose extensions this machine cannot load, shows that its Python is enough
  (SQLAlchemy falls back to pure Python, and greenlet serves only asyncio).

Integration tier: SAM CLI and pip run as processes and fetch the pinned packages. Everything is
kept under test-output/, so a second run is quicker (`--cached`, pip's cache there too).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from local import gnucash_books as books

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"
OUTPUT = ROOT / "test-output" / "gnucash-layer"
LAYERS = {"GnuCashArm64": "arm64", "GnuCashX8664": "x86_64"}
ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64
HOST = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine()
)

# Runs in a python3.13 that sees only the layer (`-I -S`): import, open, read.
READ_BOOK = """
import json, sys, warnings
sys.path[:0] = [sys.argv[1]]
warnings.simplefilter("ignore")
import piecash, sqlalchemy
book = piecash.open_book(sys.argv[2], readonly=True, open_if_lock=False, do_backup=False)
vendors = sorted(v.id for v in book.vendors)
accounts = sorted(a.code for a in book.accounts if a.code)
book.close()
try:
    from sqlalchemy import cresultproxy
    native = True
except ImportError:
    native = False
print(json.dumps({
    "piecash": piecash.__version__, "sqlalchemy": sqlalchemy.__version__,
    "from": [piecash.__file__, sqlalchemy.__file__], "vendors": vendors, "accounts": accounts,
    "native": native,
}))
"""


def pins() -> dict[str, str]:
    lines = (ROOT / "layers" / "gnucash" / "requirements.txt").read_text().splitlines()
    found = {}
    for line in lines:
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[name.strip().lower().replace("-", "_")] = version.strip()
    return found


def template() -> dict[str, object]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            name: {
                "Type": "AWS::Serverless::LayerVersion",
                "Properties": {
                    "ContentUri": str(ROOT / "layers" / "gnucash"),
                    "CompatibleRuntimes": ["python3.13"],
                    "CompatibleArchitectures": [architecture],
                },
                "Metadata": {"BuildMethod": "python3.13", "BuildArchitecture": architecture},
            }
            for name, architecture in LAYERS.items()
        },
    }


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    """Each architecture's built layer (its `python` folder)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    template_path = OUTPUT / "template.json"
    template_path.write_text(json.dumps(template(), indent=1), encoding="utf-8")
    python_dir = Path(sys.executable).resolve().parent  # sam build wants python3.13 on PATH
    environment = {
        **os.environ,
        "PATH": f"{python_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
        "PIP_CACHE_DIR": str(OUTPUT / "pip-cache"),
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    command = [
        str(SAM), "build", "--template", str(template_path), "--build-dir",
        str(OUTPUT / "build"), "--cache-dir", str(OUTPUT / "cache"), "--cached", "--parallel",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"sam build failed:\n{result.stdout[-3000:]}{result.stderr}"
    return {
        architecture: OUTPUT / "build" / name / "python" for name, architecture in LAYERS.items()
    }


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path.name} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


def read_book(layer: Path, book: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", READ_BOOK, str(layer), str(book)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found: dict[str, object] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize("architecture", sorted(LAYERS.values()))
def test_the_layer_holds_exactly_the_pins_and_native_code_of_its_architecture(
    built: dict[str, Path], architecture: str
) -> None:
    layer = built[architecture]
    shipped = {
        path.name.removesuffix(".dist-info").lower().rpartition("-")[::2]
        for path in layer.glob("*.dist-info")
    }
    assert {(name.replace("-", "_"), version) for name, version in shipped} == set(pins().items())
    extensions = sorted(layer.rglob("*.so"))
    assert any("greenlet" in str(path) for path in extensions)
    assert {elf_machine(path) for path in extensions} == {ELF_MACHINE[architecture]}


@pytest.mark.parametrize("architecture", sorted(LAYERS.values()))
def test_a_fresh_python_313_reads_a_book_with_the_layer_alone(
    built: dict[str, Path], architecture: str, tmp_path: Path
) -> None:
    book = books.write_demo_book(tmp_path / "demo.gnucash")

    found = read_book(built[architecture], book)

    assert (found["piecash"], found["sqlalchemy"]) == ("1.2.1", "1.4.54")
    sources = found["from"]
    assert isinstance(sources, list)
    assert all(str(path).startswith(str(built[architecture])) for path in sources)
    assert found["vendors"] == [vendor.id for vendor in books.DEMO.vendors]
    assert "3010" in found["accounts"]  # type: ignore[operator]
    if architecture == HOST:
        # Built for this machine: the C extensions load (x86_64 ships them).
        assert found["native"] == any(
            "cresultproxy" in path.name for path in built[architecture].rglob("*.so")
        )
    else:
        assert found["native"] is False  # pure Python: the arm64 build works without them
