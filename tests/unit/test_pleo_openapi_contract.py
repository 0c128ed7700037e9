"""The contract in `contract/pleo-openapi/`: the regeneration script keeps Pleo's facts and drops
its prose, and the committed documents are exactly its output, complete and loadable."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from openapi_spec_validator import validate

from local.pleo_emulator.contract import (
    DOCUMENTS,
    KNOWN_DEFECTS,
    Contract,
    ContractMissingError,
    openapi_dir,
    shared_contract,
)

if TYPE_CHECKING:
    from types import ModuleType

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "contract" / "pleo-openapi"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "contract_regenerate", ROOT / "contract" / "regenerate.py"
    )
    assert spec is not None and spec.loader is not None  # noqa: PT018
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _load_script()

# A published document in miniature: prose at every level, and fields *named* like prose keywords.
PUBLISHED = yaml.safe_load(
    """
openapi: 3.0.1
info:
  title: Vendors API
  description: What the API is for
  termsOfService: https://pleo.io/terms/
  contact: {email: someone@example.com}
  license: {name: Apache 2.0, url: https://www.apache.org/licenses/LICENSE-2.0.html}
  version: 1.2.3
servers:
  - {url: https://external.pleo.io, description: Production server}
security:
  - bearerAuth: []
tags:
  - {name: Vendors, description: About vendors, externalDocs: {url: https://example.com}}
paths:
  /v1/things/{id}:
    summary: Things
    description: A path's prose
    get:
      tags: [Vendors]
      summary: Get a thing
      description: Longer prose
      operationId: getThing
      x-exclude: 'true'
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
        - name: description
          in: query
          required: false
          description: Filter on the description
          example: paper
          schema: {type: string, maxLength: 10, example: x}
      responses:
        '200':
          description: The thing
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Thing'}
              example: {description: a}
              examples:
                one: {summary: One, value: {description: b}}
        default:
          description: Anything else
components:
  schemas:
    Thing:
      type: object
      description: A thing
      required: [description, summary]
      properties:
        description:
          type: string
          description: The thing's own description
          example: paper
          pattern: ^[a-z]+$
        summary: {type: string, nullable: true}
        example: {type: integer, format: int32, minimum: 0}
        examples: {type: array, items: {type: string, description: one}, maxItems: 3}
        state: {type: string, enum: [A, B], default: A, description: The state}
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer, bearerFormat: JWT, description: A token}
"""
)

FACTS = yaml.safe_load(
    """
openapi: 3.0.1
info: {title: Vendors API, version: 1.2.3}
servers:
  - {url: https://external.pleo.io}
security:
  - bearerAuth: []
tags:
  - {name: Vendors}
paths:
  /v1/things/{id}:
    get:
      tags: [Vendors]
      operationId: getThing
      x-exclude: 'true'
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
        - name: description
          in: query
          required: false
          schema: {type: string, maxLength: 10}
      responses:
        '200':
          description: ''
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Thing'}
        default:
          description: ''
components:
  schemas:
    Thing:
      type: object
      required: [description, summary]
      properties:
        description: {type: string, pattern: '^[a-z]+$'}
        summary: {type: string, nullable: true}
        example: {type: integer, format: int32, minimum: 0}
        examples: {type: array, items: {type: string}, maxItems: 3}
        state: {type: string, enum: [A, B], default: A}
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer, bearerFormat: JWT}
"""
)


def test_prose_is_stripped_and_fields_named_like_prose_stay() -> None:
    stripped = regenerate.strip_prose(PUBLISHED)

    assert stripped == FACTS
    assert list(stripped) == list(PUBLISHED)  # the source's key order
    assert list(stripped["components"]["schemas"]["Thing"]["properties"]) == [
        "description",
        "summary",
        "example",
        "examples",
        "state",
    ]
    validate(stripped)  # still a valid OpenAPI 3.0 document


def test_the_tags_and_tax_codes_cut_keeps_their_paths_and_every_schema_they_reach() -> None:
    ref = "#/components/schemas/"
    gjoll: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": "Gjoll API", "version": "1.0.0"},
        "paths": {
            "/v1/accounting-entries/{id}": {"get": {"x": {"$ref": ref + "Entry"}}},
            "/v0/tags": {"get": {"x": {"$ref": ref + "Tag"}}},
            "/v0/tax-codes:search": {"post": {"x": {"items": [{"$ref": ref + "TaxCode"}]}}},
        },
        "components": {
            "schemas": {
                "Entry": {"properties": {"tag": {"$ref": ref + "Tag"}}},
                "TaxCode": {"type": "object"},
                "Tag": {"properties": {"group": {"$ref": ref + "Group"}}},
                "Group": {"type": "object"},
                "Unused": {"type": "object"},
            },
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }

    cut = regenerate.tags_and_tax_codes(gjoll)

    assert list(cut["paths"]) == ["/v0/tags", "/v0/tax-codes:search"]
    assert list(cut["components"]["schemas"]) == ["TaxCode", "Tag", "Group"]  # source order
    assert cut["components"]["securitySchemes"] == gjoll["components"]["securitySchemes"]
    assert cut["info"] == gjoll["info"]
    assert list(cut) == list(gjoll)


def _document(title: str, version: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(PUBLISHED))
    document["info"].update(title=title, version=version)
    return document


def test_regenerate_writes_each_document_once_newest_first_and_the_same_bytes_every_time(
    tmp_path: Path,
) -> None:
    sources = tmp_path / "published"
    sources.mkdir()
    (sources / "a.yaml").write_text(yaml.safe_dump(_document("Vendors API", "1.2.3")))
    (sources / "b.json").write_text(json.dumps(_document("Vendors API", "1.10.0")))
    (sources / "c.yaml").write_text(yaml.safe_dump(_document("Webhook Subscriptions API", "1")))
    output = tmp_path / "contract"
    output.mkdir()
    (output / "vendors-1.0.0.yaml").write_text("an older version\n")
    (output / "README.md").write_text("kept\n")

    written = regenerate.regenerate([str(sources)], output)
    first = (output / "vendors-1.10.0.yaml").read_bytes()
    regenerate.regenerate([str(sources)], output)

    assert written == ["vendors-1.10.0.yaml"]
    assert sorted(p.name for p in output.iterdir()) == ["README.md", "vendors-1.10.0.yaml"]
    assert (output / "vendors-1.10.0.yaml").read_bytes() == first
    expected = json.loads(json.dumps(FACTS))
    expected["info"]["version"] = "1.10.0"
    assert yaml.safe_load(first) == expected


def test_regenerate_refuses_sources_without_a_pleo_document(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({"info": {"title": "Something"}}))

    with pytest.raises(SystemExit, match="no Pleo document"):
        regenerate.regenerate([str(tmp_path)], tmp_path / "out")


@pytest.mark.parametrize("name", DOCUMENTS)
def test_each_committed_document_is_exactly_what_the_script_writes(name: str) -> None:
    text = (CONTRACT / name).read_text(encoding="utf-8")
    document = yaml.safe_load(text)

    assert regenerate.strip_prose(document) == document  # no prose left
    if name.startswith("tags-taxcodes-"):
        assert regenerate.tags_and_tax_codes(document) == document
    assert regenerate.dump(document) == text  # byte for byte: not edited by hand
    assert (
        name == f"{regenerate.NAMES[document['info']['title']]}-{document['info']['version']}.yaml"
    )
    validate(document)


def test_the_contract_folder_holds_the_documents_the_emulator_loads_and_nothing_else() -> None:
    assert sorted(p.name for p in CONTRACT.glob("*.yaml")) == sorted(DOCUMENTS)


def test_the_contract_is_read_from_the_repository_unless_overridden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PLEO_OPENAPI_DIR", raising=False)
    assert openapi_dir() == CONTRACT
    monkeypatch.setenv("PLEO_OPENAPI_DIR", "/elsewhere")
    assert openapi_dir() == Path("/elsewhere")


def test_every_known_defect_is_still_in_the_documents_and_patched_when_loaded() -> None:
    contract = Contract(CONTRACT)
    for document, path, keys, attribute in KNOWN_DEFECTS:
        published: Any = yaml.safe_load((CONTRACT / document).read_text(encoding="utf-8"))
        loaded: Any = contract.document(document).spec
        for segment in path:
            published, loaded = published[segment], loaded[segment]
        for key in keys:
            assert attribute in published[key], f"{document} {key}: the defect is gone"
            assert attribute not in loaded[key]


def test_a_missing_document_is_an_error_that_names_it(tmp_path: Path) -> None:
    for name in DOCUMENTS[1:]:
        shutil.copy(CONTRACT / name, tmp_path / name)

    with pytest.raises(ContractMissingError) as raised:
        Contract(tmp_path)

    assert raised.value.missing == [tmp_path / DOCUMENTS[0]]
    assert str(tmp_path / DOCUMENTS[0]) in str(raised.value)
    for name in DOCUMENTS[1:]:
        assert name not in str(raised.value)


def test_an_empty_folder_names_every_document(tmp_path: Path) -> None:
    with pytest.raises(ContractMissingError) as raised:
        Contract(tmp_path)

    assert raised.value.missing == [tmp_path / name for name in DOCUMENTS]


def test_a_body_that_is_not_utf8_is_reported_not_raised() -> None:
    """openapi-core's own message for it raises UnicodeDecodeError when turned into text."""
    errors = shared_contract().request_errors(
        method="POST",
        path="/v1/vendors",
        query=[],
        headers={"Authorization": "Bearer token"},
        body=b"\xff",
        content_type="application/json",
    )

    assert errors == ["the body is not UTF-8 text"]
