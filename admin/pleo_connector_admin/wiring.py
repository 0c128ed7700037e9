"""The tool's collaborators, built from the target's function environment with the functions' own
settings models and composition roots: "sync now" queues through the settings function's
services, "disconnect" goes through the disconnect function's. Nothing does I/O while being
built; each part is made when a command first needs it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pleo_connector.connect.disconnect import DisconnectDeps
    from pleo_connector.connect.settings import SettingsDeps
    from pleo_connector.store.credentials import CredentialRepository
    from pleo_connector.store.dynamodb import DynamoTable
    from pleo_connector.store.installations import InstallationRepository
    from pleo_connector.store.sync_runs import SyncRunRepository
    from pleo_connector_admin.targets import Target


class Admin:
    """One target's stores and services."""

    def __init__(self, target: Target) -> None:
        self.target = target
        target.apply()
        self._environment = target.function_environment()

    @cached_property
    def table(self) -> DynamoTable:
        from pleo_connector.store.dynamodb import DynamoTable

        return DynamoTable(self._environment["TABLE_NAME"])

    @cached_property
    def installations(self) -> InstallationRepository:
        from pleo_connector.store.installations import InstallationRepository

        return InstallationRepository(self.table)

    @cached_property
    def runs(self) -> SyncRunRepository:
        from pleo_connector.store.sync_runs import SyncRunRepository

        return SyncRunRepository(self.table)

    @cached_property
    def credentials(self) -> CredentialRepository:
        from pleo_connector.store.credentials import CredentialRepository

        return CredentialRepository(self.table)

    @cached_property
    def settings(self) -> SettingsDeps:
        """The settings function's services ("sync now")."""
        from pleo_connector.composition.roots import build_settings_function
        from pleo_connector.config import SettingsFunctionSettings, load_settings

        settings = load_settings(SettingsFunctionSettings, self._environment)
        return build_settings_function(settings).settings

    @cached_property
    def disconnect(self) -> DisconnectDeps:
        """The disconnect function's services."""
        from pleo_connector.composition.roots import build_disconnect_function
        from pleo_connector.config import DisconnectFunctionSettings, load_settings

        settings = load_settings(DisconnectFunctionSettings, self._environment)
        return build_disconnect_function(settings).disconnect

    @cached_property
    def sqs(self) -> Any:
        from pleo_connector.aws import aws_client

        return aws_client("sqs")
