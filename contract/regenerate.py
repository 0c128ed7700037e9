"""Rebuild `contract/pleo-openapi/` from the OpenAPI documents Pleo publishes.

    python contract/regenerate.py SOURCE...        (or: make contract SOURCE="...")

Each SOURCE is a folder of `.yaml`, `.yml` or `.json` documents, a single file, or an https URL of
one document. A document is recognised by its `info.title` and written as `<name>-<version>.yaml`;
an older version of the same document in the folder is removed, so a new release of Pleo's API is
one command and a diff (then update `DOCUMENTS` in local/pleo_emulator/contract.py).

What is kept is what a validator can use: paths, operations, parameters, schemas, status codes,
media types, security. Pleo's prose is dropped (descriptions, summaries, examples, external docs,
and everything in `info` but the title and version). Only the OpenAPI keywords go: a schema
property or a parameter that is *named* `description` or `example` is a field and stays.
Response objects keep an empty `description`, which OpenAPI 3.0 requires.

The output is deterministic (source key order, one YAML style), so a diff shows only what Pleo
changed. Needs PyYAML (the app's virtualenv has it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "pleo-openapi"

# info.title -> the name the contract folder uses for it.
NAMES = {
    "App Marketplace API": "installations",
    "Vendors API": "vendors",
    "Chart of Accounts API": "chart-of-accounts",
    "Oberon API": "companies",
    "Gjoll API": "tags-taxcodes",  # cut down, see tags_and_tax_codes()
}

# The Gjoll paths the emulator serves: tags, tag groups and tax codes, not accounting entries.
TAGS_AND_TAX_CODES_PREFIXES = (
    "/v0/aggregations/tag-groups",
    "/v0/aggregations/tags",
    "/v0/tag-groups",
    "/v0/tags",
    "/v0/tax-codes",
)

PROSE = frozenset({"description", "summary", "example", "examples", "externalDocs"})
# Keywords whose value maps names (properties, paths, status codes, media types, components) to
# objects: those keys are names chosen by Pleo, never keywords.
NAME_MAPS = frozenset(
    {
        "properties",
        "paths",
        "responses",
        "content",
        "schemas",
        "securitySchemes",
        "parameters",
        "requestBodies",
        "headers",
        "links",
        "callbacks",
        "encoding",
        "variables",
    }
)
# Keywords whose value is data (enum members, defaults, names), copied as is.
DATA = frozenset({"enum", "default", "required", "security", "mapping", "scopes"})


def strip_prose(document: dict[str, Any]) -> dict[str, Any]:
    """The document without Pleo's prose; everything a validator reads is unchanged."""
    stripped = _object(document, response=False)
    info = document.get("info", {})
    stripped["info"] = {key: info[key] for key in ("title", "version") if key in info}
    return stripped


def _object(node: dict[str, Any], *, response: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in PROSE:
            if key == "description" and response:
                out[key] = ""
            continue
        out[key] = _keyword(key, value)
    return out


def _keyword(key: str, value: Any) -> Any:
    if key.startswith("x-") or key in DATA:
        return value
    if key in NAME_MAPS and isinstance(value, dict):
        return {name: _any(item, response=key == "responses") for name, item in value.items()}
    return _any(value, response=False)


def _any(value: Any, *, response: bool) -> Any:
    if isinstance(value, dict):
        return _object(value, response=response)
    if isinstance(value, list):
        return [_any(item, response=response) for item in value]
    return value


def tags_and_tax_codes(gjoll: dict[str, Any]) -> dict[str, Any]:
    """Gjoll cut to the tag and tax-code paths and the schemas they reach through `$ref`.

    Everything else (info, servers, security, tags, security schemes) is kept as it is.
    """
    paths = {
        template: item
        for template, item in gjoll["paths"].items()
        if template.startswith(TAGS_AND_TAX_CODES_PREFIXES)
    }
    schemas = gjoll["components"]["schemas"]
    reached: set[str] = set()
    pending = list(_refs(paths))
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        pending.extend(_refs(schemas[name]))
    cut = {key: value for key, value in gjoll.items() if key not in ("paths", "components")}
    cut["paths"] = paths
    cut["components"] = {
        **gjoll["components"],
        "schemas": {name: schema for name, schema in schemas.items() if name in reached},
    }
    # Same key order as the source document.
    return {key: cut[key] for key in gjoll if key in cut}


def _refs(node: Any) -> Iterator[str]:
    prefix = "#/components/schemas/"
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if not value.startswith(prefix):
                    raise ValueError(f"unexpected $ref {value!r}")
                yield value.removeprefix(prefix)
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def contract_document(document: Any) -> tuple[str, str, dict[str, Any]]:
    """(name, version, stripped content) of one published document; ValueError if not one."""
    info = document.get("info") if isinstance(document, dict) else None
    title = info.get("title") if isinstance(info, dict) else None
    if not isinstance(info, dict) or title not in NAMES:
        raise ValueError(f"not one of the documents the contract holds (title {title!r})")
    stripped = strip_prose(document)
    if NAMES[title] == "tags-taxcodes":
        stripped = tags_and_tax_codes(stripped)
    return NAMES[title], str(info["version"]), stripped


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types
    def ignore_aliases(self, data: Any) -> bool:
        return True  # every node spelled out: no anchors that depend on object identity


def dump(document: dict[str, Any]) -> str:
    info = document["info"]
    header = (
        f"# Pleo's {info['title']} {info['version']}: the machine-readable facts of the published\n"
        "# document, without its prose. Generated by contract/regenerate.py: do not edit.\n"
    )
    body: str = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )
    return header + body


def read_sources(sources: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(where, parsed document) for every document the sources name."""
    for source in sources:
        if source.startswith(("https://", "http://")):
            # The person running the script names the URL.
            with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310
                yield source, _parse(response.read().decode("utf-8"), source)
            continue
        path = Path(source)
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            yield str(file), _parse(file.read_text(encoding="utf-8"), str(file))


def _parse(text: str, where: str) -> Any:
    if where.endswith(".json"):
        return json.loads(text)
    return yaml.safe_load(text)  # JSON is YAML too


def regenerate(sources: Iterable[str], output: Path = OUTPUT) -> list[str]:
    """Write the contract documents found in `sources` into `output`; the file names written.

    When a source holds two versions of one document, the newer wins.
    """
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for where, document in read_sources(sources):
        try:
            name, version, stripped = contract_document(document)
        except ValueError as error:
            print(f"skipped {where}: {error}", file=sys.stderr)
            continue
        if name in found:
            seen_version, seen = found[name]
            if seen_version == version and seen != stripped:
                raise SystemExit(
                    f"{where}: another source gives other contents for {name} {version}"
                )
            if _version_key(version) <= _version_key(seen_version):
                continue
        found[name] = (version, stripped)
    if not found:
        raise SystemExit("no Pleo document found in the sources")
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (version, stripped) in sorted(found.items()):
        file_name = f"{name}-{version}.yaml"
        for old in sorted(output.glob(f"{name}-[0-9]*.yaml")):
            if old.name != file_name:
                old.unlink()
                print(f"removed {old.name}", file=sys.stderr)
        (output / file_name).write_text(dump(stripped), encoding="utf-8")
        print(f"wrote {file_name}", file=sys.stderr)
        written.append(file_name)
    return written


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", version))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python contract/regenerate.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="folder, file or URL")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: %(default)s")
    args = parser.parse_args(argv)
    regenerate(args.sources, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
