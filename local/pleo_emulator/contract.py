"""Pleo's published OpenAPI documents, loaded once, and request/response checks against them.

Shared by the emulator (it rejects requests that break Pleo's schemas with a 400, as Pleo would)
and by the contract tests (tests/support/openapi_contract.py). The documents are the repository's
`contract/pleo-openapi/` (Pleo's published documents without their prose; see its README), or
`$PLEO_OPENAPI_DIR`. A missing document is an error, never a reason to skip validation.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

ROOT = Path(__file__).resolve().parent.parent.parent

# The documents the emulator serves (contract/regenerate.py writes them). tags-taxcodes is Pleo's
# Gjoll API 82.3.2 cut to its tag and tax-code paths: the accounting entries are not emulated.
DOCUMENTS = (
    "installations-39.4.0.yaml",
    "tags-taxcodes-82.3.2.yaml",
    "vendors-34.17.0.yaml",
    "chart-of-accounts-24.9.0.yaml",
    "companies-50.7.0.yaml",
)

# Places where a published document cannot be met by any real value. Each is patched in the
# loaded copy only (the files stay untouched) and listed in local/pleo_emulator/README.md.
KNOWN_DEFECTS = (
    # TaxCodeModel.createdAt/updatedAt carry `pattern: YYYY-MM-DDTHH:mi:ssZ`, a format hint
    # written as a regular expression: no real timestamp matches it; `format: date-time` stays.
    (
        "tags-taxcodes-82.3.2.yaml",
        ("components", "schemas", "TaxCodeModel", "properties"),
        ("createdAt", "updatedAt"),
        "pattern",
    ),
)


class ContractError(AssertionError):
    """A request or response that Pleo's OpenAPI documents do not allow."""


class ContractMissingError(FileNotFoundError):
    """A document of the contract is not where it should be: nothing can be validated."""

    def __init__(self, missing: list[Path]) -> None:
        names = ", ".join(str(path) for path in missing)
        super().__init__(
            f"Pleo's OpenAPI document(s) missing: {names}. Requests are validated against them, "
            "so nothing runs without them: restore contract/pleo-openapi/ "
            "(`make contract SOURCE=...` regenerates it) or point PLEO_OPENAPI_DIR at a copy"
        )
        self.missing = missing


def openapi_dir() -> Path:
    configured = os.environ.get("PLEO_OPENAPI_DIR")
    if configured:
        return Path(configured)
    return ROOT / "contract" / "pleo-openapi"


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{pattern}$")


@dataclass(frozen=True)
class Operation:
    """One documented operation: which document, path template and responses."""

    document: str
    method: str
    path_template: str
    operation_id: str
    responses: frozenset[str]
    request_content_types: tuple[str, ...]
    response_content_types: Mapping[str, tuple[str, ...]] = field(hash=False)

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path_template}"


@dataclass
class _Document:
    name: str
    spec: dict[str, Any]

    @cached_property
    def openapi(self) -> Any:
        from openapi_core import OpenAPI  # heavy: only when something is validated

        return OpenAPI.from_dict(self.spec)

    @property
    def server(self) -> str:
        return str(self.spec["servers"][0]["url"])


class Contract:
    """The set of documents, with lookup by method and concrete path."""

    def __init__(self, directory: Path | None = None) -> None:
        import yaml

        self.directory = directory or openapi_dir()
        self._documents: dict[str, _Document] = {}
        self._operations: list[tuple[re.Pattern[str], int, Operation]] = []
        self._lock = threading.Lock()
        missing = [self.directory / name for name in DOCUMENTS]
        missing = [path for path in missing if not path.is_file()]
        if missing:
            raise ContractMissingError(missing)
        for name in DOCUMENTS:
            with (self.directory / name).open(encoding="utf-8") as handle:
                spec = yaml.safe_load(handle)
            spec = _patch_known_defects(name, spec)
            self._documents[name] = _Document(name, spec)
            for template, item in spec["paths"].items():
                for method, op in item.items():
                    if method not in {"get", "put", "post", "delete", "patch"}:
                        continue
                    responses = op.get("responses", {})
                    operation = Operation(
                        document=name,
                        method=method,
                        path_template=template,
                        operation_id=str(op.get("operationId", "")),
                        responses=frozenset(str(code) for code in responses),
                        request_content_types=tuple(
                            (op.get("requestBody") or {}).get("content", {}).keys()
                        ),
                        response_content_types={
                            str(code): tuple((resp.get("content") or {}).keys())
                            for code, resp in responses.items()
                        },
                    )
                    # Literal segments win over templated ones (`/v0/tags/archive` before
                    # `/v0/tags/{tagId}`): sort by the number of placeholders.
                    self._operations.append(
                        (_template_regex(template), template.count("{"), operation)
                    )
        self._operations.sort(key=lambda entry: entry[1])

    def warm_up(self) -> None:
        """Build every document's validators now, so no caller's first request pays for it."""
        for document in self._documents.values():
            operation = next(op for op in self.operations() if op.document == document.name)
            path = operation.path_template.replace("{", "").replace("}", "")
            self.request_errors(
                method=operation.method,
                path=path,
                query=[],
                headers={"Authorization": "Bearer warm-up"},
                body=b"{}",
                content_type="application/json",
            )

    def operations(self) -> Iterator[Operation]:
        for _, _, operation in self._operations:
            yield operation

    def find(self, method: str, path: str) -> Operation | None:
        method = method.lower()
        for regex, _, operation in self._operations:
            if operation.method == method and regex.match(path):
                return operation
        return None

    def document(self, name: str) -> _Document:
        return self._documents[name]

    def request_errors(
        self,
        *,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes | None,
        content_type: str,
    ) -> list[str]:
        """Every way the request breaks its document (empty when it conforms)."""
        operation = self.find(method, path)
        if operation is None:
            return [f"{method.upper()} {path} is not in Pleo's OpenAPI documents"]
        document = self._documents[operation.document]
        content_type = _documented_media_type(content_type, operation.request_content_types)
        request = _Request(document.server, method, path, query, headers, body, content_type)
        with self._lock:
            errors = list(document.openapi.iter_request_errors(request))
        return [_describe(error) for error in errors]

    def response_errors(
        self,
        *,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        request_headers: Mapping[str, str],
        request_body: bytes | None,
        request_content_type: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes | None,
        content_type: str,
    ) -> list[str]:
        """Every way the response breaks its document.

        Statuses the document does not list, and non-2xx statuses that only fall to `default`
        (Pleo documents `default` as the success shape), have no schema to check: they pass.
        """
        operation = self.find(method, path)
        if operation is None:
            return [f"{method.upper()} {path} is not in Pleo's OpenAPI documents"]
        code = str(status)
        if code not in operation.responses and not (
            "default" in operation.responses and 200 <= status < 300
        ):
            return []
        document = self._documents[operation.document]
        request = _Request(
            document.server,
            method,
            path,
            query,
            request_headers,
            request_body,
            _documented_media_type(request_content_type, operation.request_content_types),
        )
        documented = operation.response_content_types.get(code)
        if documented is None:
            documented = operation.response_content_types.get("default", ())
        response = _Response(
            status, headers, body, _documented_media_type(content_type, documented)
        )
        with self._lock:
            errors = list(document.openapi.iter_response_errors(request, response))
        return [_describe(error) for error in errors]


def _documented_media_type(content_type: str, documented: tuple[str, ...]) -> str:
    """The document's spelling of `content_type` when both name the same media type.

    `application/json` and `application/json;charset=UTF-8` are the same JSON (RFC 8259 has no
    charset parameter); openapi-core compares the strings, so map ours onto the documented key.
    A different media type, or a charset other than UTF-8, is left as is and fails.
    """
    bare, _, params = content_type.partition(";")
    bare = bare.strip().lower()
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset not in ("", "utf-8"):
        return content_type
    for key in documented:
        if key.partition(";")[0].strip().lower() == bare:
            return key
    return content_type


def _describe(error: BaseException) -> str:
    parts = [_text(error)]
    cause = error.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            parts.extend(
                f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                for e in schema_errors
            )
        else:
            parts.append(_text(cause))
        cause = cause.__cause__
    return "; ".join(dict.fromkeys(parts))  # a chain can repeat its cause's words


def _text(error: BaseException) -> str:
    """`str(error)`, which openapi-core cannot build for a body that is not UTF-8.

    Its deserialising errors quote the body by decoding it, so `str()` itself raises
    UnicodeDecodeError; the caller still needs a message (a 400, not a 500).
    """
    try:
        return str(error)
    except UnicodeDecodeError:
        return "the body is not UTF-8 text"


def _patch_known_defects(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    patched = spec
    for document, path, keys, attribute in KNOWN_DEFECTS:
        if document != name:
            continue
        if patched is spec:
            patched = copy.deepcopy(spec)
        node: Any = patched
        for segment in path:
            node = node[segment]
        for key in keys:
            node[key].pop(attribute, None)
    return patched


class _Request:
    """openapi-core's request protocol over plain values (the host is the document's server)."""

    def __init__(
        self,
        host_url: str,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes | None,
        content_type: str,
    ) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url = host_url
        self.path = path
        self.method = method.lower()
        self.body = body or None
        self.content_type = content_type
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(
        self, status: int, headers: Mapping[str, str], body: bytes | None, content_type: str
    ) -> None:
        from werkzeug.datastructures import Headers

        self.status_code = status
        self.headers = Headers(list(headers.items()))
        self.data = body or None
        self.content_type = content_type


_shared: Contract | None = None
_shared_lock = threading.Lock()


def shared_contract() -> Contract:
    """One loaded Contract per process (loading and compiling the documents takes a while)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Contract()
        return _shared
