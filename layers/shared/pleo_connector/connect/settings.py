"""Flow 3, settings and activation: the accounting system's connection settings and the sync
choices, stored locally (secrets encrypted) and in Pleo's installation metadata; saving sets
PENDING_INTEGRATION and queues the first sync, which activates the installation when it succeeds.
Also the dry run, which the worker plans (`sync.preview`) and the page shows when it is ready, and
"sync now", which queues one run at a time: a press is marked on the installation until the
run it asked for ends (or `SYNC_NOW_WINDOW_S` passes), and a second press meanwhile is refused
with a message that says so. A press while some other run holds the lease is taken: that run
queues one more when it ends."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pleo_connector.connect.errors import (
    NothingToPreviewError,
    NotInstalledError,
    PleoUnavailableError,
    PreviewAlreadyQueuedError,
    SyncAlreadyQueuedError,
    SyncRunningError,
)
from pleo_connector.failure_policy import FailureAction, FailureContext, handle_failure
from pleo_connector.installation_config import open_connection, seal_connection
from pleo_connector.observability import logger
from pleo_connector.pleo.errors import PleoError
from pleo_connector.sync_queue import SyncRequest
from pleo_connector.vocabulary import InstallationStatus, LocalError, PreviewState, SyncReason

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import BaseModel

    from pleo_connector.adapters.base import AdapterDescriptor
    from pleo_connector.installation_config import Cipher, SyncChoices
    from pleo_connector.ports import (
        InstallationStore,
        PleoClientFactory,
        PreviewStore,
        SyncQueuePort,
        SyncRunStore,
    )
    from pleo_connector.store.installations import InstallationRecord
    from pleo_connector.store.previews import Preview
    from pleo_connector.store.sync_runs import SyncRun

METADATA_KEY = "pleoConnector"
# A "sync now" whose run has not started within this long is taken as lost: it may be pressed
# again (the queue's visibility timeout is 12 minutes).
SYNC_NOW_WINDOW_S = 900.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsDeps:
    """What the settings page's services need."""

    installations: InstallationStore
    pleo: PleoClientFactory
    sync_queue: SyncQueuePort
    cipher: Cipher
    adapter: AdapterDescriptor
    runs: SyncRunStore
    previews: PreviewStore
    clock: Callable[[], float] = field(default=time.time)


def load_installation(installations: InstallationStore, installation_id: str) -> InstallationRecord:
    record = installations.get(installation_id)
    if record is None:
        raise NotInstalledError("This connection no longer exists. Please connect again.")
    return record


def saved_connection_settings(deps: SettingsDeps, record: InstallationRecord) -> BaseModel | None:
    """The stored connection settings with their secrets decrypted (server side only)."""
    return open_connection(
        deps.cipher,
        record.installation_id,
        record.config.get("connection"),
        deps.adapter.settings_model,
    )


def available_tag_groups(deps: SettingsDeps, settings: BaseModel | None) -> list[tuple[str, str]]:
    """(code, name) of the accounting system's dimensions the user may pick from."""
    return list(deps.adapter.offered_tag_groups(settings))


@dataclass(frozen=True, slots=True)
class SavedSettings:
    installation_id: str
    status: InstallationStatus


async def save_settings(
    deps: SettingsDeps,
    installation_id: str,
    connection: BaseModel,
    choices: SyncChoices,
) -> SavedSettings:
    """Store locally and in Pleo's metadata (read-modify-write: a PUT replaces the metadata), set
    PENDING_INTEGRATION, and queue the first sync with activation on success."""
    record = load_installation(deps.installations, installation_id)
    summary = {
        "adapter": deps.adapter.name,
        "syncChoices": choices.model_dump(mode="json"),
        "configuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        async with deps.pleo.for_installation(installation_id, record.auth_method) as pleo:
            current = await pleo.installations.get()
            ours = current.metadata.get(METADATA_KEY)
            kept = ours if isinstance(ours, dict) else {}
            metadata = {**current.metadata, METADATA_KEY: {**kept, **summary}}
            await pleo.installations.update(
                InstallationStatus.PENDING_INTEGRATION, metadata=metadata
            )
    except Exception as error:
        action = handle_failure(
            error, FailureContext.SAVE_SETTINGS, deps.installations, installation_id
        )
        if action is FailureAction.CLEAN_UP:
            raise NotInstalledError(
                "This connection was removed in Pleo. Please connect again."
            ) from None
        if action is FailureAction.MARK_AUTH_FAILURE:
            raise NotInstalledError(
                "Pleo no longer accepts this connection. Please connect again."
            ) from None
        if action is FailureAction.RETRY_LATER and isinstance(error, PleoError):
            raise PleoUnavailableError("Pleo could not be reached; nothing was changed.") from None
        raise  # reported as it is, by its own page

    connection_item = seal_connection(deps.cipher, installation_id, deps.adapter.name, connection)
    stored = deps.installations.create_or_update(
        replace(
            record,
            config={**record.config, "connection": connection_item},
            sync_choices=choices.model_dump(mode="json"),
            status=InstallationStatus.PENDING_INTEGRATION,
            error_code=None,
            # New settings deserve a new look: the old reason goes, the count stays, so that
            # settings that still fail pause syncing again at the next failure.
            local_error=(
                None if record.local_error == LocalError.SOURCE_FAILING else record.local_error
            ),
            failure_reason=None,
        )
    )
    deps.sync_queue.send(
        SyncRequest(
            installation_id=installation_id,
            reason=SyncReason.FIRST_SYNC,
            activate_on_success=True,
        )
    )
    logger.info("settings saved", extra={"installation_id": installation_id})
    return SavedSettings(installation_id, stored.status)


@dataclass(frozen=True, slots=True)
class SyncActivity:
    """What the settings page says about syncing: a run now, one queued, and the last one."""

    running: bool
    queued: bool
    last_run: SyncRun | None


def sync_activity(deps: SettingsDeps, record: InstallationRecord) -> SyncActivity:
    return SyncActivity(
        running=deps.runs.lease_held(record.installation_id),
        queued=_sync_queued(record, deps.clock()),
        last_run=deps.runs.last_run(record.installation_id),
    )


def _sync_queued(record: InstallationRecord, now: float) -> bool:
    requested = record.sync_requested_at
    return requested is not None and now - requested.timestamp() < SYNC_NOW_WINDOW_S


def request_sync(deps: SettingsDeps, installation_id: str) -> None:
    """ "Sync now": queue a sync of a configured installation, unless one it asked for is queued
    or running (the mark is a conditional write, so two presses at once queue one run)."""
    record = load_installation(deps.installations, installation_id)
    if record.paused:
        raise SyncRunningError("Syncing is paused by the app's provider: nothing can sync now.")
    if not record.schedulable:
        raise SyncRunningError(
            "Save the settings first: this connection is not ready to sync."
            if record.status == InstallationStatus.AUTHORIZED
            else "This connection cannot sync until it is connected again."
        )
    if not deps.installations.mark_sync_requested(installation_id, window_s=SYNC_NOW_WINDOW_S):
        raise SyncAlreadyQueuedError(
            "A sync is already queued or running. The settings page shows its result when it "
            "is done."
        )
    try:
        deps.sync_queue.send(
            SyncRequest(installation_id=installation_id, reason=SyncReason.SYNC_NOW)
        )
    except Exception:
        deps.installations.clear_sync_request(installation_id)  # nothing is queued after all
        raise


def request_preview(
    deps: SettingsDeps,
    installation_id: str,
    connection: BaseModel | None = None,
    choices: SyncChoices | None = None,
) -> Preview:
    """Queue a dry run of the saved settings, or of `connection` and `choices` as entered (kept
    sealed on the dry run, never saved). One at a time: a second request while one is planned
    is refused, so a held-down button costs one plan."""
    record = load_installation(deps.installations, installation_id)
    current = deps.previews.get(installation_id)
    if current is not None and current.shown_state(deps.clock()).unfinished:
        raise PreviewAlreadyQueuedError(
            "A dry run is already being planned. Its result shows on the settings page."
        )
    if connection is None and record.config.get("connection") is None:
        raise NothingToPreviewError(
            "There are no saved settings to try yet: enter the accounting system's settings "
            "and press the dry run button of the form."
        )
    sealed = (
        None
        if connection is None
        else seal_connection(deps.cipher, installation_id, deps.adapter.name, connection)
    )
    preview = deps.previews.request(
        installation_id,
        connection=sealed,
        sync_choices=None if choices is None else choices.model_dump(mode="json"),
    )
    try:
        deps.sync_queue.send(
            SyncRequest(
                installation_id=installation_id,
                reason=SyncReason.PREVIEW,
                preview_id=preview.preview_id,
            )
        )
    except Exception:
        deps.previews.fail(installation_id, preview.preview_id, "The dry run could not start.")
        raise
    logger.info("dry run queued", extra={"installation_id": installation_id})
    return preview


@dataclass(frozen=True, slots=True)
class Progress:
    """What the page's progress check reads: the installation's status, the dry run's state,
    and whether a sync is queued or running. Small, so asking often is cheap."""

    status: InstallationStatus
    preview: PreviewState
    preview_message: str | None
    sync: str  # "idle", "queued" or "running"

    def as_json(self) -> dict[str, object]:
        return {
            "status": str(self.status),
            "preview": {"state": str(self.preview), "message": self.preview_message},
            "sync": {"state": self.sync},
        }

    @property
    def key(self) -> str:
        """What the page was rendered from; the progress script reloads when it changes."""
        return f"{self.status}|{self.preview}|{self.sync}"

    @property
    def unfinished(self) -> bool:
        return self.preview.unfinished or self.sync != "idle"


def preview_of(deps: SettingsDeps, installation_id: str) -> tuple[PreviewState, Preview | None]:
    """The newest dry run and the state the page shows for it (NONE when there is none)."""
    preview = deps.previews.get(installation_id)
    if preview is None:
        return PreviewState.NONE, None
    return preview.shown_state(deps.clock()), preview


def progress(deps: SettingsDeps, installation_id: str) -> Progress:
    """The progress check's answer: three reads (the installation, its dry run, its lease)."""
    record = load_installation(deps.installations, installation_id)
    state, preview = preview_of(deps, installation_id)
    return progress_of(
        record,
        lease_held=deps.runs.lease_held(installation_id),
        now=deps.clock(),
        preview_state=state,
        preview=preview,
    )


def progress_of(
    record: InstallationRecord,
    *,
    lease_held: bool,
    now: float,
    preview_state: PreviewState,
    preview: Preview | None,
) -> Progress:
    """The one definition of what the page shows as in progress, for the page and the check."""
    if lease_held or (
        record.status == InstallationStatus.PENDING_INTEGRATION and not record.paused
    ):
        sync = "running"
    elif _sync_queued(record, now):
        sync = "queued"
    else:
        sync = "idle"
    message = None
    if preview is not None and preview_state == PreviewState.FAILED:
        message = preview.message
    return Progress(record.status, preview_state, message, sync)
