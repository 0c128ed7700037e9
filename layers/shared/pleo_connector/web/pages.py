"""One function per page, each returning a finished Response with the security headers.

Handlers build a `Site` once (from the public base URL) and call these; they never touch
templates or headers themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from pleo_connector.errors import ConnectorError
from pleo_connector.installation_config import MAX_TAG_GROUPS, SyncChoices
from pleo_connector.vocabulary import (
    Action,
    AuthMethod,
    InstallationErrorCode,
    InstallationStatus,
    Kind,
    PreviewState,
    SyncOutcome,
)
from pleo_connector.web.render import DEFAULT_APP_NAME, render_page
from pleo_connector.web.responses import html_response, redirect
from pleo_connector.web.security import DEFAULT_POLICY, SecurityPolicy

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.shared.cookies import Cookie

    from pleo_connector.web.forms import FormField

MAX_SHOWN_CHARS = 500

_TITLES = {
    400: "The request could not be used",
    401: "Please connect again",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Not possible right now",
    413: "Too large",
    429: "Too many requests",
}


@dataclass(frozen=True, slots=True)
class Site:
    """Where the pages live and what their headers allow; built once per process."""

    base_path: str = ""
    policy: SecurityPolicy = DEFAULT_POLICY
    app_name: str = DEFAULT_APP_NAME

    @classmethod
    def for_base_url(
        cls,
        public_base_url: str,
        *,
        app_name: str = DEFAULT_APP_NAME,
        frame_ancestors: tuple[str, ...] = (),
        form_targets: tuple[str, ...] = (),
    ) -> Site:
        """`base_path` is the public base URL's path, so links work behind a mapped base path."""
        return cls(
            base_path=urlsplit(public_base_url).path.rstrip("/"),
            policy=SecurityPolicy.for_base_url(
                public_base_url, frame_ancestors=frame_ancestors, form_targets=form_targets
            ),
            app_name=app_name,
        )

    def url(self, path: str) -> str:
        """A link to one of this app's routes, e.g. `site.url("/settings")`."""
        return f"{self.base_path}{path}"

    def redirect(self, path: str, cookies: Sequence[Cookie] | None = None) -> Response[str]:
        """303 to one of this app's own routes (never to anything a request supplied)."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError("an app route starts with a single slash")
        return redirect(self.url(path), cookies, policy=self.policy)

    def page(
        self,
        template: str,
        *,
        status: int = 200,
        cookies: Sequence[Cookie] | None = None,
        **context: object,
    ) -> Response[str]:
        body = render_page(template, app_name=self.app_name, base_path=self.base_path, **context)
        return html_response(body, status, cookies, policy=self.policy)


DEFAULT_SITE = Site()


@dataclass(frozen=True, slots=True)
class TagGroupOption:
    code: str
    name: str
    checked: bool = False


def tag_group_options(
    groups: Iterable[tuple[str, str]], chosen: Iterable[str] = ()
) -> list[TagGroupOption]:
    """Checkbox options from the accounting system's `(code, name)` pairs."""
    picked = set(chosen)
    return [TagGroupOption(code, name, code in picked) for code, name in groups]


_KIND_NAMES: Mapping[Kind, tuple[str, str]] = {
    Kind.TAG_GROUP: ("tag group", "tag groups"),
    Kind.TAG: ("tag", "tags"),
    Kind.TAX_CODE: ("tax code", "tax codes"),
    Kind.VENDOR: ("vendor", "vendors"),
    Kind.ACCOUNT: ("account", "accounts"),
}
_ACTION_WORDS: Mapping[Action, str] = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.ARCHIVE: "archived",
    Action.UNARCHIVE: "unarchived",
    Action.ADOPT: "found in Pleo already and kept in sync from now on",
}
_OUTCOME_WORDS: Mapping[SyncOutcome, str] = {
    SyncOutcome.SYNCED: "Completed.",
    SyncOutcome.ACTIVATED: "Completed, and the app is now active.",
    SyncOutcome.CONTINUED: "Partly done: the sync carries on by itself.",
    SyncOutcome.UNCHANGED: (
        "Nothing changed in the accounting system or the settings since the last full sync,"
        " so Pleo was left as it was."
    ),
    SyncOutcome.SOURCE_FAILED: (
        "The accounting system could not be read, so nothing was changed in Pleo."
    ),
    SyncOutcome.DEACTIVATED: (
        "The accounting system could not be read too many times in a row, so syncing is paused."
    ),
    SyncOutcome.FAILED: "Interrupted by a temporary problem. It is tried again by itself.",
    SyncOutcome.AUTH_FAILED: "Pleo no longer accepts this app's credentials.",
}
# The outcomes whose run-wide message is written for the customer (the others name an error type).
_OUTCOMES_WITH_A_REASON = frozenset({SyncOutcome.SOURCE_FAILED, SyncOutcome.DEACTIVATED})
_GOOD_OUTCOMES = frozenset(
    {SyncOutcome.SYNCED, SyncOutcome.ACTIVATED, SyncOutcome.CONTINUED, SyncOutcome.UNCHANGED}
)


class RunProblemFacts(Protocol):
    @property
    def kind(self) -> Kind: ...
    @property
    def reference(self) -> str: ...
    @property
    def message(self) -> str: ...


class RunFacts(Protocol):
    """What the page reads of a recorded run (`store.sync_runs.SyncRun` has this shape)."""

    @property
    def started_at(self) -> datetime: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def outcome(self) -> SyncOutcome: ...
    @property
    def applied(self) -> Mapping[tuple[Kind, Action], int]: ...
    @property
    def failed(self) -> Mapping[Kind, int]: ...
    @property
    def problems(self) -> Sequence[RunProblemFacts]: ...
    @property
    def problems_total(self) -> int: ...
    @property
    def message(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class LastRunView:
    """The last sync in plain words: when, how it ended, what it changed, what it could not."""

    when: str
    outcome: str
    good: bool
    reason: str | None = None
    counts: Sequence[str] = ()
    problems: Sequence[str] = ()
    more_problems: int = 0


def _count_words(count: int, kind: Kind, what: str) -> str:
    singular, plural = _KIND_NAMES[kind]
    return f"{count} {singular if count == 1 else plural} {what}"


def describe_run(run: RunFacts) -> LastRunView:
    """Words for the settings page: counts in the order a run applies them, then the records
    that failed."""
    counts = [
        _count_words(run.applied[(kind, action)], kind, _ACTION_WORDS[action])
        for kind in Kind
        for action in Action
        if run.applied.get((kind, action), 0) > 0
    ]
    counts += [
        _count_words(run.failed[kind], kind, "could not be synced")
        for kind in Kind
        if run.failed.get(kind, 0) > 0
    ]
    if not counts and run.outcome in (SyncOutcome.SYNCED, SyncOutcome.ACTIVATED):
        counts = ["Nothing needed to change."]
    problems = [
        f"{_KIND_NAMES[problem.kind][0].capitalize()} {problem.reference}: {problem.message}"
        for problem in run.problems
    ]
    seconds = round(run.duration_s)
    took = "under a second" if seconds < 1 else f"{seconds} s"
    started = run.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return LastRunView(
        when=f"{started} (took {took})",
        outcome=_OUTCOME_WORDS.get(run.outcome, "Done."),
        good=run.outcome in _GOOD_OUTCOMES and not run.failed,
        reason=_clip(run.message) if run.outcome in _OUTCOMES_WITH_A_REASON else None,
        counts=tuple(counts),
        problems=tuple(_clip(problem) or "" for problem in problems),
        more_problems=max(run.problems_total - len(problems), 0),
    )


class PlannedRecordFacts(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def code(self) -> str: ...


class PlanFacts(Protocol):
    """What the page reads of a dry run's plan (`store.previews.PlanSummary` has this shape)."""

    @property
    def counts(self) -> Mapping[tuple[Kind, Action], int]: ...
    @property
    def samples(self) -> Mapping[tuple[Kind, Action], Sequence[PlannedRecordFacts]]: ...
    @property
    def refused(self) -> Sequence[RunProblemFacts]: ...
    @property
    def refused_total(self) -> int: ...
    @property
    def notes(self) -> Sequence[RunProblemFacts]: ...


class PreviewFacts(Protocol):
    """What the page reads of a dry run (`store.previews.Preview` has this shape)."""

    @property
    def updated_at(self) -> float: ...
    @property
    def summary(self) -> PlanFacts | None: ...
    @property
    def message(self) -> str | None: ...


_PLANNED_WORDS: Mapping[Action, str] = {
    Action.CREATE: "to create",
    Action.UPDATE: "to update",
    Action.ARCHIVE: "to archive",
    Action.UNARCHIVE: "to unarchive",
    Action.ADOPT: "found in Pleo already, to keep in sync from now on",
}


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    """The first records of one kind and action, e.g. "Accounts to create"."""

    title: str
    records: Sequence[str]
    more: int = 0


@dataclass(frozen=True, slots=True)
class PlanView:
    """The dry run in plain words: where it is and, once planned, what the next sync would change
    and what it would refuse."""

    state: PreviewState = PreviewState.NONE
    when: str | None = None
    counts: Sequence[str] = ()
    groups: Sequence[PlannedGroup] = ()
    refused: Sequence[str] = ()
    more_refused: int = 0
    notes: Sequence[str] = ()
    message: str | None = None

    @property
    def unfinished(self) -> bool:
        return self.state.unfinished


def _problem_words(kind: Kind, reference: str, message: str) -> str:
    return _clip(f"{_KIND_NAMES[kind][0].capitalize()} {reference}: {message}") or ""


def describe_plan(state: PreviewState, preview: PreviewFacts | None) -> PlanView:
    """Words for the page's dry-run section: counts in the order a sync applies them, then the
    first records of each (by name and code), then what would be refused and why."""
    if preview is None or preview.summary is None or state != PreviewState.READY:
        message = preview.message if preview is not None else None
        return PlanView(state=state, message=_clip(message))
    summary = preview.summary
    counts = [
        _count_words(count, kind, _PLANNED_WORDS[action])
        for (kind, action), count in summary.counts.items()
    ]
    groups = [
        PlannedGroup(
            title=f"{_KIND_NAMES[kind][1].capitalize()} {_PLANNED_WORDS[action]}",
            records=[
                _clip(f"{record.name} ({record.code})" if record.name else record.code) or ""
                for record in records
            ],
            more=max(summary.counts.get((kind, action), 0) - len(records), 0),
        )
        for (kind, action), records in summary.samples.items()
        if records
    ]
    refused = [
        _problem_words(problem.kind, problem.reference, problem.message)
        for problem in summary.refused
    ]
    when = datetime.fromtimestamp(preview.updated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return PlanView(
        state=state,
        when=when,
        counts=tuple(counts),
        groups=tuple(groups),
        refused=tuple(refused),
        more_refused=max(summary.refused_total - len(refused), 0),
        notes=tuple(
            _problem_words(note.kind, note.reference, note.message) for note in summary.notes
        ),
    )


@dataclass(frozen=True, slots=True)
class SettingsView:
    """Everything the settings page shows.

    `status` is Pleo's installation status; while it is PENDING_INTEGRATION the page refreshes
    itself every `refresh_s` seconds and disconnecting is refused. `errors` holds the messages
    of a rejected POST (`forms.FormError.errors`, plus "tag_groups"). `sync_running`: a run holds
    the lease (no disconnect); `sync_queued`: "sync now" was pressed and its run has not ended
    (no second press). `source_problem` is why the accounting system could not be read, after
    `source_failures` runs in a row.
    """

    csrf_token: str
    status: InstallationStatus
    connection_fields: Sequence[FormField]
    tag_groups: Sequence[TagGroupOption] = ()
    choices: SyncChoices = field(default_factory=SyncChoices)
    auth_method: AuthMethod = AuthMethod.OAUTH
    error_code: InstallationErrorCode | None = None
    status_message: str | None = None
    notice: str | None = None
    errors: Mapping[str, str] = field(default_factory=dict)
    can_sync: bool = True
    refresh_s: int = 5
    max_tag_groups: int = MAX_TAG_GROUPS
    # Sent back with every form, so a form rendered for one installation never acts on another.
    installation_id: str = ""
    last_run: LastRunView | None = None
    sync_running: bool = False
    sync_queued: bool = False
    source_problem: str | None = None
    source_failures: int = 0
    # An operator paused the scheduled syncs (`pleo-connector-admin pause`).
    paused: bool = False
    preview: PlanView = field(default_factory=PlanView)
    # Saved connection settings exist, so a dry run of them can be asked for.
    can_preview_saved: bool = False
    # What is in progress, as the progress check names it; None when nothing is.
    progress_key: str | None = None


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def oauth_done_page(
    *, site: Site = DEFAULT_SITE, cookies: Sequence[Cookie] | None = None
) -> Response[str]:
    """After an install that needs no configuration: ACTIVATED, first sync queued."""
    return site.page("oauth_done.html", cookies=cookies, settings_url=site.url("/settings"))


def oauth_error_page(
    error: str,
    description: str | None = None,
    *,
    status: int = 400,
    site: Site = DEFAULT_SITE,
    cookies: Sequence[Cookie] | None = None,
) -> Response[str]:
    """Pleo's `error` / `error_description` (or ours), shown escaped, with a way to start again."""
    return site.page(
        "oauth_error.html",
        status=status,
        cookies=cookies,
        error=_clip(error) or "unknown_error",
        description=_clip(description),
    )


def api_key_page(
    csrf_token: str,
    *,
    error: str | None = None,
    replacing: bool = False,
    status: int = 200,
    site: Site = DEFAULT_SITE,
    cookies: Sequence[Cookie] | None = None,
) -> Response[str]:
    """The paste-your-key form. `error` is our message; the key itself is never put back."""
    return site.page(
        "api_key.html",
        status=status,
        cookies=cookies,
        csrf_token=csrf_token,
        error=error,
        replacing=replacing,
    )


def settings_page(
    view: SettingsView,
    *,
    status: int = 200,
    site: Site = DEFAULT_SITE,
    cookies: Sequence[Cookie] | None = None,
) -> Response[str]:
    return site.page("settings.html", status=status, cookies=cookies, view=view)


def disconnected_page(
    *, site: Site = DEFAULT_SITE, cookies: Sequence[Cookie] | None = None
) -> Response[str]:
    return site.page("disconnected.html", cookies=cookies)


def error_page(
    status: int,
    message: str,
    *,
    title: str | None = None,
    start_again: bool | None = None,
    back_url: str | None = None,
    site: Site = DEFAULT_SITE,
    cookies: Sequence[Cookie] | None = None,
) -> Response[str]:
    """A 4xx page. A 401 offers the ways to connect again (its session is gone or bad)."""
    return site.page(
        "error.html",
        status=status,
        cookies=cookies,
        title=title or _TITLES.get(status, "Something went wrong"),
        message=_clip(message),
        start_again=status == 401 if start_again is None else start_again,
        back_url=back_url,
    )


def page_for_error(
    error: Exception,
    *,
    site: Site = DEFAULT_SITE,
    cookies: Sequence[Cookie] | None = None,
) -> Response[str] | None:
    """The page every error of the family gets, shaped by the error's own attributes (its status,
    message, title, and whether to offer connecting again or a way back); None for anything
    outside the family, which the handler treats as unexpected. `cookies` are sent only for an
    error that `clears_session`."""
    if not isinstance(error, ConnectorError):
        return None
    back_url = site.url(error.back_to) if error.back_to else None
    return error_page(
        error.http_status,
        error.user_message,
        title=error.title,
        start_again=error.start_again,
        back_url=back_url,
        site=site,
        cookies=cookies if error.clears_session else None,
    )
