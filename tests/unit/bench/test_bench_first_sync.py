"""The first-sync benchmark's yardsticks: the minimum it compares with, the budget it sets, how it
tells reads from writes and how it counts records created twice."""

from __future__ import annotations

import pytest

from bench import bench_first_sync
from bench.__main__ import discover
from bench.bench_planner import split

pytestmark = pytest.mark.unit


def test_the_minimum_is_one_create_per_record_one_batch_per_1000_accounts_and_five_reads() -> None:
    counts = {"tag_groups": 5, "tags": 40, "tax_codes": 3, "vendors": 7, "accounts": 2_001}

    # 5 + 40 + 3 + 7 creates, ceil(2001 / 1000) = 3 batches, 5 reads of an empty company.
    assert bench_first_sync.minimum_requests(counts) == 55 + 3 + 5


def test_the_issues_size_has_every_kind_and_a_budget_that_lasts_the_time_asked() -> None:
    counts = split(bench_first_sync.ENTITIES)
    minimum = bench_first_sync.minimum_requests(counts)

    budget = bench_first_sync.budget_per_minute(minimum, 120.0)

    assert all(counts.values())
    assert minimum / budget * 60 == pytest.approx(120.0, rel=0.001)


def test_the_read_minimum_is_one_page_per_100_records_and_one_for_an_empty_kind() -> None:
    sizes = {"tag_groups": 5, "tags": 250, "tax_codes": 0, "vendors": 100, "accounts": 101}

    # groups (one list) + tags 3 + tax codes 1 + vendors 1 + accounts 2
    assert bench_first_sync.read_minimum(sizes) == 1 + 3 + 1 + 1 + 2


def test_searches_and_gets_are_reads_everything_else_a_write() -> None:
    counters = {
        "GET /v0/tag-groups": 1,
        "POST /v0/tags:search": 4,
        "POST /v1/vendors:search": 2,
        "POST /v1/vendors": 10,
        "POST /v1/chart-of-accounts/batch": 1,
        "PUT /v0/tags/{tagId}": 3,
    }

    assert bench_first_sync.split_counters(counters) == (7, 14)


def test_a_record_twice_under_one_key_is_a_duplicate_whatever_the_case() -> None:
    data = {
        "tag_groups": [{"id": "g1", "code": "DIM0"}, {"id": "g2", "code": "DIM1"}],
        "tags": [
            {"groupId": "g1", "code": "T-1"},
            {"groupId": "g1", "code": "t-1"},
            {"groupId": "g2", "code": "T-1"},  # another group: another key
        ],
        "tax_codes": [{"code": "TX1"}],
        "vendors": [{"externalId": "V-1"}, {"externalId": "V-2"}, {"externalId": "v-1"}],
        "accounts": [{"externalId": "100"}],
    }

    found = bench_first_sync.duplicates(data)

    assert found == {"tag_groups": 0, "tags": 1, "tax_codes": 0, "vendors": 1, "accounts": 0}


def test_make_bench_runs_it() -> None:
    assert "bench_first_sync" in discover(["first_sync"])
