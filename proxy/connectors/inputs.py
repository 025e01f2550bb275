"""What every connector does before its first call: a statement's rows as the
vendor-neutral inputs the journal records (``{properties}``, ``{id, properties}``,
``{id, idProperty, properties}``), encoded by the vendor's codec; and the parts of the
`Connector` interface that are the same for every vendor (closing, archiving through
the batch driver, association tables refused where the vendor has none)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .base import ApiError, CallHooks, ErrorKind, NoHooks, Row
from .batches import BatchDriver
from .http import VendorHttp
from .ratelimit import RateBudget

#: A row's properties for the wire; ``clearing`` (updates) sends None as "unset".
Encode = Callable[[Row, bool], Mapping[str, object]]
Input = dict[str, object]


def _encoded(encode: Encode, row: Row, index: int, clearing: bool) -> dict[str, object]:
    try:
        return dict(encode(row, clearing))
    except ApiError as exc:
        raise exc.for_row(index) from None


def create_inputs(rows: Sequence[Row], encode: Encode) -> list[Input]:
    return [{"properties": _encoded(encode, row, i, False)} for i, row in enumerate(rows)]


def update_inputs(changes: Sequence[tuple[str, Row]], encode: Encode) -> list[Input]:
    return [
        {"id": str(object_id), "properties": _encoded(encode, row, i, True)}
        for i, (object_id, row) in enumerate(changes)
    ]


def upsert_inputs(rows: Sequence[Row], id_property: str, encode: Encode) -> list[Input]:
    """Each row keyed by its value of the unique ``id_property`` (required)."""
    inputs: list[Input] = []
    for i, row in enumerate(rows):
        properties = _encoded(encode, row, i, True)
        key = properties.get(id_property)
        if key in (None, ""):
            raise ApiError(
                ErrorKind.NOT_NULL,
                f"an upsert needs a value for {id_property}",
                column=id_property,
                input_index=i,
            )
        inputs.append({"id": str(key), "idProperty": id_property, "properties": properties})
    return inputs


class ConnectorBase:
    """The interface's methods that do not depend on the vendor."""

    _client: VendorHttp
    _batches: BatchDriver

    async def aclose(self) -> None:
        await self._client.aclose()

    def use_rate_budget(self, budget: RateBudget, account: str) -> None:
        self._client.use_rate_budget(budget, account)

    async def archive(
        self, object_type: str, ids: Sequence[str], *, hooks: CallHooks | None = None
    ) -> None:
        """Archive (delete) objects, batch after batch; one already gone counts as done."""
        await self._batches.archive(object_type, ids, hooks or NoHooks(), compensation=False)

    async def associate(
        self,
        from_type: str,
        to_type: str,
        pairs: Sequence[tuple[str, str]],
        *,
        remove: bool = False,
        hooks: CallHooks | None = None,
    ) -> None:
        raise ApiError(
            ErrorKind.UNSUPPORTED,
            f"{self._client.vendor} relates objects by reference columns, not association tables",
        )
