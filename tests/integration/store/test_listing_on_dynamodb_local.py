"""The admin's listing on the real engine: the `ByStatus` index's keys, then the META items by
BatchGetItem, never a scan of the table; and the scan again, announced once, while the index
cannot be read (backfilling after it was added, or missing)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from local.resources import create_table, load_template, resources_of_type
from local.services import LOCAL_REGION
from pleo_connector.store.credentials import CredentialRepository
from pleo_connector.store.dynamodb import STATUS_INDEX, DynamoTable
from pleo_connector.store.installations import InstallationRecord, InstallationRepository
from pleo_connector.store.ownership import OwnershipRepository
from pleo_connector.vocabulary import AuthMethod, InstallationStatus, Kind

if TYPE_CHECKING:
    from local.services import Service

pytestmark = pytest.mark.integration

STATUSES = [
    InstallationStatus.ACTIVATED,
    InstallationStatus.ACTIVATED,
    InstallationStatus.ACTIVATED,
    InstallationStatus.AUTHORIZED,
    InstallationStatus.AUTHORIZED,
    InstallationStatus.INACTIVE,
    InstallationStatus.PENDING_INTEGRATION,
]
BACKFILLING = "Cannot read from backfilling global secondary index: ByStatus"


def _index_of(request: dict[str, Any]) -> str | None:
    """The index a serialized DynamoDB request names (its JSON body's `IndexName`)."""
    index: str | None = json.loads(request.get("body") or b"{}").get("IndexName")
    return index


class Requests:
    """Every DynamoDB operation the client sends, counted by botocore's before-call event; with
    `fail_queries_after`, each Query of the status index past that many is answered as DynamoDB
    answers a query on an index it is still backfilling (the client takes what a before-call
    handler returns as the service's answer)."""

    def __init__(self, fail_queries_after: int | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self.fail_queries_after = fail_queries_after

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        self.counts[model.name] += 1
        after = self.fail_queries_after
        on_index = model.name == "Query" and _index_of(params) == STATUS_INDEX
        if on_index and after is not None and self.counts["Query"] > after:
            error = {"Code": "ValidationException", "Message": BACKFILLING}
            return AWSResponse("http://dynamodb", 400, HTTPHeaders(), None), {
                "Error": error,
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        return None


def _table(dynamodb_local: Service, *, with_status_index: bool = True) -> DynamoTable:
    """A table of this test's alone, from the template (without `ByStatus`, as a table made
    before the index was added): a listing sees every installation in it."""
    client = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=LOCAL_REGION
    ).client("dynamodb", endpoint_url=dynamodb_local.url)
    properties = dict(resources_of_type(load_template(), "AWS::DynamoDB::Table")["Table"])[
        "Properties"
    ]
    if not with_status_index:
        properties = {
            **properties,
            "GlobalSecondaryIndexes": [
                index
                for index in properties["GlobalSecondaryIndexes"]
                if index["IndexName"] != STATUS_INDEX
            ],
            "AttributeDefinitions": [
                definition
                for definition in properties["AttributeDefinitions"]
                if definition["AttributeName"] != "status"
            ],
        }
    name = f"list-{uuid.uuid4().hex[:10]}"
    create_table(client, name, properties)
    return DynamoTable(name, client=client)


def _installations(table: DynamoTable) -> dict[str, InstallationRecord]:
    """An installation in each of STATUSES, each with the other items an installation gathers
    (ownership records, runs, a credential) and its company pointer, none of which is listed."""
    repo = InstallationRepository(table)
    ownership = OwnershipRepository(table)
    stored: dict[str, InstallationRecord] = {}
    for number, status in enumerate(STATUSES):
        installation_id = f"inst-{number}"
        stored[installation_id] = repo.create_or_update(
            InstallationRecord(
                installation_id=installation_id,
                company_id=f"co-{number}",
                auth_method=AuthMethod.API_KEY,
                status=status,
            )
        )
        ownership.record(installation_id, [(Kind.TAG, f"tag-{index}") for index in range(5)])
        for day in (1, 2):
            table.put(
                {
                    "pk": {"S": f"INST#{installation_id}"},
                    "sk": {"S": f"RUN#2026-12-0{day}T00:00:00Z"},
                    "entity": {"S": "sync_run"},
                    "outcome": {"S": "synced"},
                }
            )
        CredentialRepository(table).save_api_key(installation_id, api_key=b"ciphertext")
    return stored


def _listed(
    repo: InstallationRepository, statuses: list[InstallationStatus], page_size: int
) -> tuple[list[InstallationRecord], list[int], int]:
    """The records listed, the size of each page, and how often the listing said it scans."""
    scans: list[None] = []
    pages = list(repo.iter_pages(statuses, page_size=page_size, on_scan=lambda: scans.append(None)))
    return [record for page in pages for record in page], [len(page) for page in pages], len(scans)


def test_the_listing_reads_the_status_index_and_the_installations_not_the_table(
    dynamodb_local: Service,
) -> None:
    # Given: seven installations and, with each, eleven items that are not its META item
    table = _table(dynamodb_local)
    stored = _installations(table)
    repo = InstallationRepository(table)
    requests = Requests()
    table.client.meta.events.register("before-call.dynamodb", requests)

    # When: listed whole, two keys a page, and then only two statuses
    everything, sizes, scans = _listed(repo, [], page_size=2)
    whole = Counter(requests.counts)
    requests.counts.clear()
    some, _, _ = _listed(
        repo, [InstallationStatus.AUTHORIZED, InstallationStatus.INACTIVE], page_size=2
    )

    # Then: exactly the installations, as stored, each once; a page at most two
    assert sorted(everything, key=lambda record: record.installation_id) == list(stored.values())
    assert max(sizes) <= 2
    assert scans == 0
    assert {record.installation_id for record in some} == {"inst-3", "inst-4", "inst-5"}
    assert len(some) == 3
    # Queries of the index (a page of two keys each: ACTIVATED's three take two, and the empty
    # ERROR one) and one BatchGetItem per page that had keys; no Scan, no GetItem.
    assert whole == {"Query": 2 + 2 + 1 + 1 + 1, "BatchGetItem": 2 + 1 + 1 + 1}
    assert requests.counts == {"Query": 2 + 1, "BatchGetItem": 2}


def test_while_the_index_is_backfilling_the_listing_scans_and_says_so_once(
    dynamodb_local: Service,
) -> None:
    # Given: the index answers its first query (a page of ACTIVATED installations), then, as
    # while DynamoDB backfills it, no more
    table = _table(dynamodb_local)
    stored = _installations(table)
    repo = InstallationRepository(table)
    requests = Requests(fail_queries_after=1)
    table.client.meta.events.register("before-call.dynamodb", requests)

    # When
    records, _, scans = _listed(repo, [], page_size=2)

    # Then: the rest came from a scan, announced once; nobody listed twice or left out
    assert scans == 1
    assert sorted(record.installation_id for record in records) == sorted(stored)
    assert requests.counts["Scan"] >= 1
    assert requests.counts["Query"] == 2


def test_on_a_table_without_the_index_the_listing_is_a_scan(dynamodb_local: Service) -> None:
    table = _table(dynamodb_local, with_status_index=False)
    stored = _installations(table)
    repo = InstallationRepository(table)

    everything, _, scans = _listed(repo, [], page_size=100)
    inactive, _, inactive_scans = _listed(repo, [InstallationStatus.INACTIVE], page_size=100)

    assert (scans, inactive_scans) == (1, 1)
    assert sorted(everything, key=lambda record: record.installation_id) == list(stored.values())
    assert [record.installation_id for record in inactive] == ["inst-5"]
