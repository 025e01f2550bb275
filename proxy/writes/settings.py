"""The TOML mapping of connectors and synced tables (DESIGN 6)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Maintained by the proxy, never sent to the API; client-supplied values are replaced.
SYNC_COLUMNS = ("_sync_inserted_at", "_sync_updated_at", "_updated_at")


class ConnectorSettings(BaseModel):
    """``[connectors.NAME]``: a vendor account. Keys other than these go to the
    connector kind's own settings (``proxy.connectors``: e.g. ``token_env``,
    ``base_url``, ``batch_size``, ``read_timeout_s``), validated at startup."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    kind: str
    schema_name: str | None = Field(
        None, alias="schema", description="every table in this schema is synced"
    )

    def connector_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SyncedTableSettings(BaseModel):
    """``[[synced_tables]]``: an explicit table, overriding the schema convention."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="schema.table")
    connector: str
    object: str | None = Field(None, description="vendor object type; default by convention")
    id_column: str = "id"
    columns: dict[str, str] = Field(default_factory=dict, description="column = property renames")
    read_only: list[str] = Field(
        default_factory=list, description="columns the API sets; writing them is refused"
    )
    local_columns: list[str] = Field(
        default_factory=list, description="columns kept locally, never sent"
    )
    upsert_keys: list[str] | None = Field(
        None, description="columns usable as ON CONFLICT targets (vendor unique properties)"
    )
