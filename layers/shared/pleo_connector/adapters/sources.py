"""Where a snapshot is read from, by the deployment's rules: a source is what a customer typed,
so it is untrusted input.

A source is one of:
- an absolute path, only where the deployment allows local sources (`ALLOW_LOCAL_SOURCES`, true
  in the local world alone);
- `s3://bucket/key`, only in the bucket the stack names (`SOURCE_BUCKET`) and under its prefix
  (`SOURCE_PREFIX`);
- an `https://` URL on the public internet (see `https`; plain http is refused).

Every kind is read in chunks under the same caps: at most `SOURCE_MAX_BYTES`, and within
`SOURCE_TOTAL_TIMEOUT_S` from the first connection to the last byte (connections and each wait
for data have their own, shorter caps). Messages never repeat the source: an URL's query may
carry a token.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pleo_connector.adapters.errors import SourceError, SourceProblem
from pleo_connector.aws import aws_client, aws_errors
from pleo_connector.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from pleo_connector.adapters.https import HttpsFetcher
    from pleo_connector.config import AdapterSettings

CHUNK_BYTES = 64 * 1024
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_SOURCE_CHARS = 2048
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_USE_INSTEAD = "Use an https:// URL, or s3://bucket/key where this deployment names a bucket."


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    """What this deployment lets a source be, and the caps on reading one."""

    allow_local: bool = False
    bucket: str = ""
    prefix: str = ""
    max_bytes: int = DEFAULT_MAX_BYTES
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    total_timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: AdapterSettings) -> SourcePolicy:
        return cls(
            allow_local=settings.allow_local_sources,
            bucket=settings.source_bucket,
            prefix=settings.source_prefix,
            max_bytes=settings.source_max_bytes,
            connect_timeout_s=settings.source_connect_timeout_s,
            read_timeout_s=settings.source_read_timeout_s,
            total_timeout_s=settings.source_total_timeout_s,
        )

    @property
    def key_prefix(self) -> str:
        """The prefix as a folder: `snapshots` allows `snapshots/...`, not `snapshots-old/...`."""
        prefix = self.prefix.lstrip("/")
        return prefix if not prefix or prefix.endswith("/") else prefix + "/"


@dataclass(frozen=True, slots=True)
class LocalPath:
    path: str


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class HttpsUrl:
    url: str


type SourceLocation = LocalPath | S3Object | HttpsUrl


def parse_source(text: str) -> SourceLocation:
    """What kind of source `text` names, by its shape alone (the deployment's rules are
    `check_allowed`). SourceError when it is none of the kinds."""
    if not text or len(text) > MAX_SOURCE_CHARS:
        raise _refused(f"The source must be 1 to {MAX_SOURCE_CHARS} characters long.")
    if _CONTROL.search(text):
        raise _refused("The source holds control characters.")
    lowered = text.lower()
    if lowered.startswith("s3://"):
        bucket, _, key = text[len("s3://") :].partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise _refused("The source names no valid S3 bucket: use s3://bucket/key.")
        segments = key.split("/")
        if not key or len(key.encode()) > 1024 or "." in segments or ".." in segments:
            raise _refused("The source names no valid S3 key: use s3://bucket/key.")
        return S3Object(bucket, key)
    if lowered.startswith(("https://", "http://")):
        from pleo_connector.adapters.https import parse_https_url

        return HttpsUrl(str(parse_https_url(text)))
    if _SCHEME.match(text):
        raise _refused(f"The source's kind of address is not supported. {_USE_INSTEAD}")
    if not os.path.isabs(text):
        raise _refused(
            "The source is not an address: use an https:// URL, s3://bucket/key, or an absolute"
            " path where this deployment reads local files."
        )
    return LocalPath(text)


def check_allowed(
    location: SourceLocation, policy: SourcePolicy, *, what: str = "snapshot", https: bool = True
) -> None:
    """SourceError when this deployment does not read from `location`. `what` names the source
    in messages; `https=False` for an adapter that reads no URL, so no message suggests one."""
    if isinstance(location, LocalPath) and not policy.allow_local:
        instead = _USE_INSTEAD if https else "Use s3://bucket/key in the bucket it names."
        raise _refused(f"This deployment does not read files from its own disk. {instead}")
    if isinstance(location, S3Object):
        if not policy.bucket:
            instead = ": use an https:// URL." if https else " (it names no bucket)."
            raise _refused(f"This deployment does not read {what}s from S3{instead}")
        if location.bucket != policy.bucket or not location.key.startswith(policy.key_prefix):
            raise _refused(
                f"This deployment reads S3 {what}s only from"
                f" s3://{policy.bucket}/{policy.key_prefix}: put the {what} there."
            )


@dataclass(frozen=True, slots=True)
class Revision:
    """What identifies one version of a source, to ask "has it changed?" cheaply: an ETag, a
    Last-Modified date, or for a file its inode, size and modification time."""

    etag: str | None = None
    modified: str | None = None

    @property
    def known(self) -> bool:
        """Whether this names a version at all (a server may send neither header)."""
        return bool(self.etag or self.modified)


def file_revision(status: os.stat_result) -> Revision:
    """A local file's revision: a rewrite changes its modification time or inode."""
    return Revision(etag=f"{status.st_ino}-{status.st_size}-{status.st_mtime_ns}")


class OpenedSource:
    """A source being read: `chunks()` yields its bytes once, under the size and time caps."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        revision: Revision | None,
        close: Callable[[], None],
        max_bytes: int,
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.revision = revision
        self._chunks = chunks
        self._close = close
        self._max_bytes = max_bytes
        self._deadline = deadline
        self._clock = clock

    def chunks(self) -> Iterator[bytes]:
        read = 0
        for chunk in self._chunks:
            read += len(chunk)
            if read > self._max_bytes:
                raise _too_large(self._max_bytes)
            if self._clock() > self._deadline:
                raise _too_slow()
            yield chunk

    def close(self) -> None:
        self._close()

    def __enter__(self) -> OpenedSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class SourceOpener:
    """Opens sources by the policy. `https` and `s3_client` are injected by tests (a fake DNS,
    a test server's certificate; moto); by default they are built on first use."""

    def __init__(
        self,
        policy: SourcePolicy,
        *,
        https: HttpsFetcher | None = None,
        s3_client: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._https = https
        self._s3_client = s3_client or (lambda: aws_client("s3"))
        self._clock = clock

    def open(
        self, source: str, *, known: Revision | None = None, time_limit_s: float | None = None
    ) -> OpenedSource | None:
        """Open `source` for reading; None when it is still the revision `known`. The time cap
        is the policy's, or `time_limit_s` when that is shorter (a page cannot wait a minute)."""
        location = parse_source(source)
        check_allowed(location, self.policy)
        limit = self.policy.total_timeout_s
        if time_limit_s is not None:
            limit = min(limit, time_limit_s)
        deadline = self._clock() + limit
        if isinstance(location, LocalPath):
            return self._open_local(location, known, deadline)
        if isinstance(location, S3Object):
            return self._open_s3(location, known, deadline)
        return self._open_https(location, known, deadline)

    def unchanged_since(self, source: str, known: Revision) -> bool:
        """Whether `source` is still at revision `known`, asked the cheap way: a file's status, a
        conditional request (S3 and https answer 304 without a body). A source that changed is
        closed unread."""
        if not known.known:
            return False
        opened = self.open(source, known=known)
        if opened is None:
            return True
        opened.close()
        return False

    def _source(
        self,
        chunks: Iterator[bytes],
        revision: Revision | None,
        close: Callable[[], None],
        deadline: float,
    ) -> OpenedSource:
        return OpenedSource(
            chunks,
            revision=revision,
            close=close,
            max_bytes=self.policy.max_bytes,
            deadline=deadline,
            clock=self._clock,
        )

    def _open_local(
        self, location: LocalPath, known: Revision | None, deadline: float
    ) -> OpenedSource | None:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the file-type check refuses it.
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            descriptor = os.open(location.path, flags)
        except FileNotFoundError:
            raise SourceError(
                "There is no file at the source's path.", problem=SourceProblem.NOT_FOUND
            ) from None
        except (OSError, ValueError):
            raise _refused("The file at the source's path cannot be opened.") from None
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise _refused("The source's path is not a regular file.")
            if status.st_size > self.policy.max_bytes:
                raise _too_large(self.policy.max_bytes)
            revision = file_revision(status)
            if known is not None and known == revision:
                os.close(descriptor)
                return None
            os.set_blocking(descriptor, True)
            handle = os.fdopen(descriptor, "rb")
        except BaseException:
            os.close(descriptor)
            raise

        def chunks() -> Iterator[bytes]:
            try:
                while block := handle.read(CHUNK_BYTES):
                    yield block
            except OSError:
                raise SourceError(
                    "The file at the source's path could not be read.",
                    problem=SourceProblem.UNREACHABLE,
                ) from None

        return self._source(chunks(), revision, handle.close, deadline)

    def _open_s3(
        self, location: S3Object, known: Revision | None, deadline: float
    ) -> OpenedSource | None:
        parameters: dict[str, str] = {"Bucket": location.bucket, "Key": location.key}
        if known is not None and known.etag:
            parameters["IfNoneMatch"] = known.etag
        try:
            answer = self._s3_client().get_object(**parameters)
        except aws_errors() as error:
            code, status = _aws_code(error)
            if status == 304 or code in ("304", "NotModified"):
                return None
            raise _s3_error(code, status) from None
        body = answer["Body"]
        if int(answer.get("ContentLength") or 0) > self.policy.max_bytes:
            body.close()
            raise _too_large(self.policy.max_bytes)

        read_errors: tuple[type[BaseException], ...] = (*aws_errors(), OSError)

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            except read_errors as error:
                logger.warning("source read failed", extra={"error_type": type(error).__name__})
                raise SourceError(
                    "The snapshot could not be read from S3: the connection broke.",
                    problem=SourceProblem.UNREACHABLE,
                ) from None

        revision = Revision(etag=answer.get("ETag"))
        return self._source(chunks(), revision, body.close, deadline)

    def _open_https(
        self, location: HttpsUrl, known: Revision | None, deadline: float
    ) -> OpenedSource | None:
        conditional: dict[str, str] = {}
        if known is not None and known.etag:
            conditional["If-None-Match"] = known.etag
        elif known is not None and known.modified:
            conditional["If-Modified-Since"] = known.modified
        answer = self._fetcher().open(location.url, deadline=deadline, conditional=conditional)
        if answer is None:
            return None
        try:
            coding = answer.headers.get("content-encoding", "identity").strip().lower()
            if coding not in ("", "identity"):
                raise SourceError(
                    "The snapshot's server sent it compressed although asked not to; serve it"
                    " as plain JSON.",
                    problem=SourceProblem.INVALID,
                )
            length = answer.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.policy.max_bytes:
                raise _too_large(self.policy.max_bytes)
        except BaseException:
            answer.close()
            raise
        revision = Revision(
            etag=answer.headers.get("etag"), modified=answer.headers.get("last-modified")
        )
        return self._source(answer.chunks(), revision, answer.close, deadline)

    def _fetcher(self) -> HttpsFetcher:
        if self._https is None:
            from pleo_connector.adapters.https import HttpsFetcher, HttpsLimits

            self._https = HttpsFetcher(
                HttpsLimits(
                    connect_timeout_s=self.policy.connect_timeout_s,
                    read_timeout_s=self.policy.read_timeout_s,
                ),
                clock=self._clock,
            )
        return self._https


def _aws_code(error: BaseException) -> tuple[str, int | None]:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code, status if isinstance(status, int) else None


def _s3_error(code: str, status: int | None) -> SourceError:
    logger.warning("source read failed", extra={"aws_error_code": code, "status": status})
    if code in ("NoSuchKey", "NoSuchBucket", "NotFound", "404") or status == 404:
        return SourceError(
            "There is no snapshot at that S3 address.", problem=SourceProblem.NOT_FOUND
        )
    if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
        # Without s3:ListBucket, S3 answers a missing key with 403 too.
        return SourceError(
            "The connector may not read that S3 object (or there is none).",
            problem=SourceProblem.REFUSED,
        )
    return SourceError("S3 could not be reached.", problem=SourceProblem.UNREACHABLE)


def _refused(message: str) -> SourceError:
    return SourceError(message, problem=SourceProblem.REFUSED)


def _too_large(max_bytes: int) -> SourceError:
    return SourceError(
        f"The snapshot is larger than this deployment reads ({_size(max_bytes)}).",
        problem=SourceProblem.TOO_LARGE,
    )


def _too_slow() -> SourceError:
    return SourceError(
        "Reading the snapshot took longer than this deployment allows.",
        problem=SourceProblem.TOO_SLOW,
    )


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MB"
    if count >= 1024:
        return f"{count / 1024:g} kB"
    return f"{count} bytes"
