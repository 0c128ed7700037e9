"""A source is untrusted input: its shape is checked, then the deployment's rules (local files
only where allowed, S3 only in the stack's bucket and prefix), and every kind is read under the
same size and time caps. Messages never repeat the source."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.adapters.sources import (
    HttpsUrl,
    LocalPath,
    OpenedSource,
    Revision,
    S3Object,
    SourceOpener,
    SourcePolicy,
    check_allowed,
    parse_source,
)
from pleo_connector.aws import forget_clients
from pleo_connector.config import AdapterSettings, load_settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.unit

BUCKET = "acme-snapshots"
SECRET = "s3cr3t-token"


def read_all(opened: OpenedSource | None) -> bytes:
    assert opened is not None
    with opened:
        return b"".join(opened.chunks())


def refused(source: str, policy: SourcePolicy | None = None) -> SourceError:
    with pytest.raises(SourceError) as raised:
        SourceOpener(policy or SourcePolicy()).open(source)
    assert SECRET not in raised.value.user_message
    return raised.value


# --- shape ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("/srv/snapshots/acme.json", LocalPath("/srv/snapshots/acme.json")),
        ("s3://acme-snapshots/a/b.json", S3Object("acme-snapshots", "a/b.json")),
        ("S3://acme-snapshots/a.json", S3Object("acme-snapshots", "a.json")),
        (
            f"https://erp.example/export.json?token={SECRET}",
            HttpsUrl(f"https://erp.example/export.json?token={SECRET}"),
        ),
        ("HTTPS://ERP.example/x", HttpsUrl("https://erp.example/x")),
    ],
)
def test_each_kind_of_source_is_recognised(text: str, location: object) -> None:
    assert parse_source(text) == location


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"http://erp.example/export.json?token={SECRET}", "plain http://"),
        (f"ftp://erp.example/{SECRET}", "not supported"),
        (f"file:///etc/{SECRET}", "not supported"),
        (f"relative/{SECRET}.json", "not an address"),
        (f"~/{SECRET}.json", "not an address"),
        ("s3://Not_A_Bucket/x.json", "no valid S3 bucket"),
        ("s3://acme-snapshots", "no valid S3 key"),
        ("s3://acme-snapshots/", "no valid S3 key"),
        ("s3://acme-snapshots/snapshots/../secrets.json", "no valid S3 key"),
        ("s3://acme-snapshots/./x.json", "no valid S3 key"),
        ("https://", "without a host"),
        (f"https://[::1/{SECRET}", "not a valid URL"),
        (f"/srv/{SECRET}\n.json", "control characters"),
        ("", "1 to 2048 characters"),
        ("https://erp.example/" + "x" * 2048, "1 to 2048 characters"),
    ],
)
def test_a_source_of_no_known_shape_is_refused_without_repeating_it(text: str, words: str) -> None:
    with pytest.raises(SourceError) as raised:
        parse_source(text)

    assert raised.value.problem is SourceProblem.REFUSED
    assert words in raised.value.user_message
    assert SECRET not in str(raised.value)


# --- the deployment's rules ----------------------------------------------------------------------


def test_local_paths_are_refused_unless_the_deployment_allows_them(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_bytes(b"{}")

    assert "own disk" in refused(str(snapshot)).user_message
    assert read_all(SourceOpener(SourcePolicy(allow_local=True)).open(str(snapshot))) == b"{}"


@pytest.mark.parametrize(
    ("bucket", "prefix", "source", "allowed"),
    [
        ("", "", "s3://acme-snapshots/a.json", False),
        (BUCKET, "", "s3://acme-snapshots/a.json", True),
        (BUCKET, "", "s3://other-bucket/a.json", False),
        (BUCKET, "snapshots/", "s3://acme-snapshots/snapshots/a.json", True),
        (BUCKET, "snapshots", "s3://acme-snapshots/snapshots/a.json", True),
        (BUCKET, "/snapshots", "s3://acme-snapshots/snapshots/deep/a.json", True),
        (BUCKET, "snapshots", "s3://acme-snapshots/snapshots-old/a.json", False),
        (BUCKET, "snapshots/", "s3://acme-snapshots/a.json", False),
        (BUCKET, "snapshots/", "s3://acme-snapshots/Snapshots/a.json", False),
    ],
)
def test_s3_sources_only_in_the_stacks_bucket_and_prefix(
    bucket: str, prefix: str, source: str, allowed: bool
) -> None:
    policy = SourcePolicy(bucket=bucket, prefix=prefix)

    if allowed:
        check_allowed(parse_source(source), policy)
    else:
        with pytest.raises(SourceError) as raised:
            check_allowed(parse_source(source), policy)
        assert raised.value.problem is SourceProblem.REFUSED


def test_the_policy_follows_the_deployments_settings() -> None:
    settings = load_settings(
        AdapterSettings,
        {
            "ALLOW_LOCAL_SOURCES": "true",
            "SOURCE_BUCKET": BUCKET,
            "SOURCE_PREFIX": "snapshots/",
            "SOURCE_MAX_BYTES": "1000",
            "SOURCE_TOTAL_TIMEOUT_S": "30",
        },
    )

    policy = SourcePolicy.from_settings(settings)

    assert policy == SourcePolicy(
        allow_local=True,
        bucket=BUCKET,
        prefix="snapshots/",
        max_bytes=1000,
        connect_timeout_s=5.0,
        read_timeout_s=15.0,
        total_timeout_s=30.0,
    )


def test_by_default_the_deployment_reads_no_local_files_and_no_bucket() -> None:
    policy = SourcePolicy.from_settings(load_settings(AdapterSettings, {}))

    assert (policy.allow_local, policy.bucket, policy.max_bytes) == (False, "", 50 * 1024 * 1024)


# --- local files ---------------------------------------------------------------------------------

LOCAL = SourcePolicy(allow_local=True, max_bytes=1000)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    assert refused(str(tmp_path / "none.json"), LOCAL).problem is SourceProblem.NOT_FOUND


def test_a_directory_is_not_a_source(tmp_path: Path) -> None:
    assert "not a regular file" in refused(str(tmp_path), LOCAL).user_message


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    assert "not a regular file" in refused(str(fifo), LOCAL).user_message


def test_a_device_is_refused() -> None:
    assert "not a regular file" in refused("/dev/zero", LOCAL).user_message


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 1001)

    error = refused(str(big), LOCAL)

    assert error.problem is SourceProblem.TOO_LARGE
    assert "1000 bytes" in error.user_message


def test_a_file_that_grows_past_the_cap_while_read_is_cut_off(tmp_path: Path) -> None:
    growing = tmp_path / "growing.json"
    growing.write_bytes(b" " * 900)
    opened = SourceOpener(LOCAL).open(str(growing))
    assert opened is not None
    growing.write_bytes(b" " * 70_000)

    with opened, pytest.raises(SourceError) as raised:
        b"".join(opened.chunks())

    assert raised.value.problem is SourceProblem.TOO_LARGE


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_bytes(b"{}")
    opener = SourceOpener(LOCAL)
    opened = opener.open(str(snapshot))
    assert opened is not None
    revision = opened.revision
    opened.close()

    assert opener.open(str(snapshot), known=revision) is None
    snapshot.write_bytes(b"{ }")
    assert read_all(opener.open(str(snapshot), known=revision)) == b"{ }"


class SteppingClock:
    """Each reading moves time on by `step` seconds."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_read_past_its_time_cap_is_stopped(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_bytes(b" " * 300_000)  # five chunks
    policy = SourcePolicy(allow_local=True, total_timeout_s=3.0)
    opened = SourceOpener(policy, clock=SteppingClock(1.0)).open(str(snapshot))
    assert opened is not None

    with opened, pytest.raises(SourceError) as raised:
        b"".join(opened.chunks())

    assert raised.value.problem is SourceProblem.TOO_SLOW


def test_a_shorter_time_limit_than_the_policys_wins(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_bytes(b" " * 300_000)
    policy = SourcePolicy(allow_local=True, total_timeout_s=60.0)
    opener = SourceOpener(policy, clock=SteppingClock(1.0))

    assert len(read_all(opener.open(str(snapshot)))) == 300_000
    with pytest.raises(SourceError) as raised:
        read_all(opener.open(str(snapshot), time_limit_s=2.0))
    assert raised.value.problem is SourceProblem.TOO_SLOW


# --- S3, with moto in-process --------------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        client.put_object(Bucket=BUCKET, Key="snapshots/acme.json", Body=b'{"version": 1}')
        yield client


S3_POLICY = SourcePolicy(bucket=BUCKET, prefix="snapshots/", max_bytes=1000)


def test_an_s3_object_in_the_bucket_is_read_through_the_shared_client(s3: Any) -> None:
    forget_clients()
    try:
        opened = SourceOpener(S3_POLICY).open(f"s3://{BUCKET}/snapshots/acme.json")
        assert read_all(opened) == b'{"version": 1}'
    finally:
        forget_clients()


def test_an_unchanged_s3_object_is_not_read_again(s3: Any) -> None:
    opener = SourceOpener(S3_POLICY, s3_client=lambda: s3)
    opened = opener.open(f"s3://{BUCKET}/snapshots/acme.json")
    assert opened is not None
    assert opened.revision is not None
    opened.close()

    assert opener.open(f"s3://{BUCKET}/snapshots/acme.json", known=opened.revision) is None
    stale = Revision(etag='"0123"')
    assert read_all(opener.open(f"s3://{BUCKET}/snapshots/acme.json", known=stale))


def test_a_missing_s3_object_is_not_found(s3: Any) -> None:
    with pytest.raises(SourceError) as raised:
        SourceOpener(S3_POLICY, s3_client=lambda: s3).open(f"s3://{BUCKET}/snapshots/none.json")

    assert raised.value.problem is SourceProblem.NOT_FOUND


def test_an_s3_object_over_the_cap_is_refused_before_it_is_read(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="snapshots/big.json", Body=b" " * 1001)

    with pytest.raises(SourceError) as raised:
        SourceOpener(S3_POLICY, s3_client=lambda: s3).open(f"s3://{BUCKET}/snapshots/big.json")

    assert raised.value.problem is SourceProblem.TOO_LARGE


def test_an_s3_object_outside_the_prefix_is_never_asked_for(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="private/keys.json", Body=b"{}")

    def no_client() -> Any:
        raise AssertionError("S3 was called for a source the policy refuses")

    with pytest.raises(SourceError) as raised:
        SourceOpener(S3_POLICY, s3_client=no_client).open(f"s3://{BUCKET}/private/keys.json")

    assert raised.value.problem is SourceProblem.REFUSED
    assert f"s3://{BUCKET}/snapshots/" in raised.value.user_message


@pytest.mark.parametrize(
    ("code", "status", "problem"),
    [
        ("AccessDenied", 403, SourceProblem.REFUSED),
        ("NoSuchBucket", 404, SourceProblem.NOT_FOUND),
        ("SlowDown", 503, SourceProblem.UNREACHABLE),
    ],
)
def test_s3_errors_are_translated(code: str, status: int, problem: SourceProblem) -> None:
    from botocore.exceptions import ClientError

    class FailingS3:
        def get_object(self, **_: Any) -> Any:
            answer: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
            raise ClientError(answer, "GetObject")

    with pytest.raises(SourceError) as raised:
        SourceOpener(S3_POLICY, s3_client=FailingS3).open(f"s3://{BUCKET}/snapshots/a.json")

    assert raised.value.problem is problem
