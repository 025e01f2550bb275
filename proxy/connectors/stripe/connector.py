"""Stripe objects behind the vendor-neutral `Connector` interface.

Stripe has no batch API: a multi-row statement is one request per row, made
all-or-nothing by the shared batch driver (objects created by the statement are
deleted again when a later row fails). Every POST carries an ``Idempotency-Key``
derived from the journal's call id and row, so a retried create — after a timeout,
a 5xx, or a lost answer — can never make two customers.

Stripe merges ``metadata`` on update, so an update that removes keys first reads the
object and sends each removed key as ``""``. Prices cannot be deleted: a DELETE is
refused before any call (see ``objects``), and undoing a price's creation archives
it (``active=false``), the closest Stripe allows; so is a product Stripe refuses to
delete because prices use it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from ..base import (
    ApiError,
    ApiObject,
    CallHooks,
    CallOutcome,
    ErrorKind,
    Operation,
    Row,
    VendorCall,
)
from ..batches import BatchDriver
from ..http import Reply, as_list, as_mapping, segment
from ..inputs import ConnectorBase, create_inputs, update_inputs
from ..lookup import KnownIds, find_created
from ..mapping import ObjectMapping, TableShape
from .client import StripeClient
from .codec import decode_object, encode_fields, form
from .naming import map_table, stripe_object
from .objects import UNIX_TIME_FIELDS
from .settings import StripeSettings

_PAGE = 100


class StripeConnector(ConnectorBase):
    empty_string_is_null = True  # "" unsets a Stripe field
    json_as_text = False  # metadata and nested objects are sent as themselves
    _client: StripeClient

    def __init__(self, settings: StripeSettings) -> None:
        self._client = StripeClient(settings)
        self._inflight_wait_s = settings.inflight_wait_s
        self._inflight_poll_s = settings.inflight_poll_s
        self._batches = BatchDriver(self._dispatch, 1)

    async def map_table(self, shape: TableShape) -> ObjectMapping:
        return map_table(shape)

    # -- writes --------------------------------------------------------------------------

    async def create(
        self, object_type: str, rows: Sequence[Row], *, hooks: CallHooks | None = None
    ) -> list[ApiObject]:
        inputs = create_inputs(rows, _encode)
        return await self._batches.write(Operation.CREATE, object_type, inputs, hooks)

    async def update(
        self,
        object_type: str,
        changes: Sequence[tuple[str, Row]],
        *,
        hooks: CallHooks | None = None,
    ) -> list[ApiObject]:
        inputs = update_inputs(changes, _encode)
        return await self._batches.write(Operation.UPDATE, object_type, inputs, hooks)

    async def _with_removed_keys(
        self, object_type: str, object_id: str, fields: Mapping[str, object]
    ) -> Mapping[str, object]:
        """The update's parameters with each key a merged field (metadata) holds but
        the new value lacks sent as ``""``. Only the wire gets these markers: the
        journaled input keeps the value the field is to hold, which is what Stripe then
        holds and what an undo compares against."""
        merged = [f for f in stripe_object(object_type).merged if isinstance(fields.get(f), dict)]
        if not merged:
            return fields
        try:
            current = await self.get(object_type, object_id)
        except ApiError as exc:
            raise replace(exc, retry_safe=True) from None  # a read: nothing was applied
        if current is None:
            return fields  # the update itself will say the object is missing
        params = dict(fields)
        for name in merged:
            held = current.properties.get(name)
            wanted = fields[name]
            assert isinstance(wanted, dict)
            if isinstance(held, Mapping):
                params[name] = {**{k: "" for k in held if k not in wanted}, **wanted}
        return params

    async def upsert(
        self,
        object_type: str,
        id_property: str,
        rows: Sequence[Row],
        *,
        hooks: CallHooks | None = None,
    ) -> list[ApiObject]:
        raise ApiError(ErrorKind.UNSUPPORTED, "Stripe has no upsert by a unique field")

    # -- reads ---------------------------------------------------------------------------

    async def get(
        self,
        object_type: str,
        object_id: str,
        *,
        id_property: str | None = None,
        properties: Sequence[str] | None = None,
    ) -> ApiObject | None:
        """The live object, or None (missing, or deleted: Stripe answers a stub)."""
        if id_property:
            found = await self.get_many(object_type, [object_id], id_property=id_property)
            return next(iter(found.values()), None)
        try:
            reply = await self._client.request(
                "GET",
                f"/v1/{object_type}/{segment(object_id)}",
                object_type=object_type,
                idempotent=True,
            )
        except ApiError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return None
            raise
        body = as_mapping(reply.body)
        return None if body.get("deleted") is True else _to_object(body)

    async def get_many(
        self, object_type: str, values: Sequence[str], *, id_property: str
    ) -> dict[str, ApiObject]:
        """Customers by ``email`` (Stripe's list filter); no other Stripe field is a
        key an object can be looked up by."""
        if (object_type, id_property) != ("customers", "email"):
            raise ApiError(
                ErrorKind.UNSUPPORTED, f"Stripe cannot look up {object_type} by {id_property}"
            )
        found: dict[str, ApiObject] = {}
        for value in dict.fromkeys(values):
            for obj in await self._list(object_type, {"email": value}):
                found.setdefault(str(obj.properties.get("email")), obj)
        return found

    async def find_created(
        self,
        call: VendorCall,
        since: datetime,
        *,
        unique_property: str | None = None,
        known: KnownIds | None = None,
    ) -> list[ApiObject | None]:
        """Within Stripe's idempotency window (24 h), by replaying the request under its
        key (see ``_replayed``). Older, by listing: Stripe enforces no unique field (two
        customers may share an email), so each input is matched against the objects
        created since the call. Both sides are
        compared as form leaves (``address[city]``): Stripe answers a nested object
        with every key (``address[line2]: null``), and an input sent only some."""
        if call.operation is not Operation.CREATE:
            raise ValueError(f"find_created: {call.operation} calls create nothing")
        if datetime.now(UTC) - since < IDEMPOTENCY_WINDOW and len(call.inputs) == 1:
            replayed = await self._replayed(call)
            if replayed != "unknown":
                return [replayed]
        listed: dict[str, ApiObject] = {}

        async def created_leaves(
            object_type: str, start: datetime, properties: Sequence[str]
        ) -> list[ApiObject]:
            objects = await self._created_since(object_type, start, properties)
            listed.update((o.id, o) for o in objects)
            return [_leaves(o) for o in objects]

        flat = replace(
            call,
            inputs=tuple(
                {**item, "properties": dict(form(as_mapping(item.get("properties"))))}
                for item in call.inputs
            ),
        )
        found = await find_created(
            flat, since, None, connector=self, list_created=created_leaves, known=known
        )
        return [None if o is None else listed.get(o.id, o) for o in found]

    async def _send(
        self,
        method: str,
        path: str,
        object_type: str,
        params: Mapping[str, object] | None,
        key: Mapping[str, str],
    ) -> Reply:
        """One request under its idempotency key. While Stripe still processes an
        earlier attempt with the same key (``idempotency_key_in_use``: the first one
        timed out here but runs on there), ask again until Stripe replays the first
        attempt's answer; past ``inflight_wait_s`` the outcome is unknown."""
        data = dict(form(params)) if params else None
        deadline = time.monotonic() + self._inflight_wait_s
        while True:
            try:
                return await self._client.request(
                    method, path, object_type=object_type, idempotent=True, data=data, headers=key
                )
            except ApiError as exc:
                if exc.vendor_code != "idempotency_key_in_use":
                    raise
                if time.monotonic() >= deadline:
                    raise ApiError(
                        ErrorKind.OUTCOME_UNKNOWN,
                        "Stripe is still processing an earlier attempt of this request",
                        http_status=exc.http_status,
                        vendor_request_id=exc.vendor_request_id,
                        vendor_code=exc.vendor_code,
                        retry_safe=False,
                    ) from None
                await asyncio.sleep(self._inflight_poll_s)

    async def _replayed(self, call: VendorCall) -> ApiObject | Literal["unknown"] | None:
        """What a create whose answer was lost made, asked of Stripe itself: the same
        request under the same idempotency key is answered with the first attempt's
        answer (an object, or the error that created nothing). Had the first attempt
        never arrived, this one makes the object — which the journal then undoes, as
        it would have undone the first."""
        (item,) = call.inputs
        try:
            reply = await self._send(
                "POST",
                f"/v1/{call.object_type}",
                call.object_type,
                as_mapping(item.get("properties")),
                {"Idempotency-Key": idempotency_key(call)},
            )
        except ApiError as exc:
            if exc.retry_safe and exc.kind is not ErrorKind.IDEMPOTENCY:
                return None  # the first attempt's answer was an error: nothing made
            return "unknown"
        return _to_object(as_mapping(reply.body))

    async def _created_since(
        self, object_type: str, start: datetime, properties: Sequence[str]
    ) -> list[ApiObject]:
        objects = await self._list(object_type, {"created[gte]": str(int(start.timestamp()))})
        return sorted(objects, key=lambda o: (o.created_at, o.id))

    async def _list(self, object_type: str, filters: Mapping[str, str]) -> list[ApiObject]:
        params = {**filters, "limit": str(_PAGE)}
        objects: list[ApiObject] = []
        while True:
            reply = await self._client.request(
                "GET", f"/v1/{object_type}", object_type=object_type, idempotent=True, params=params
            )
            body = as_mapping(reply.body)
            page = [_to_object(raw) for raw in as_list(body.get("data"))]
            objects += page
            if not body.get("has_more") or not page:
                return objects
            params = {**params, "starting_after": page[-1].id}

    # -- one call ------------------------------------------------------------------------

    async def _dispatch(self, call: VendorCall) -> CallOutcome:
        (item,) = call.inputs
        resource = f"/v1/{call.object_type}"
        key = {"Idempotency-Key": idempotency_key(call)}
        fields = as_mapping(item.get("properties"))

        async def send(method: str, path: str, params: Mapping[str, object] | None) -> Reply:
            return await self._send(method, path, call.object_type, params, key)

        match call.operation:
            case Operation.CREATE:
                reply = await send("POST", resource, fields)
                return CallOutcome(results=(_to_object(as_mapping(reply.body)),))
            case Operation.UPDATE:
                object_id = str(item["id"])
                params = await self._with_removed_keys(call.object_type, object_id, fields)
                reply = await send("POST", f"{resource}/{segment(object_id)}", params)
                return CallOutcome(results=(_to_object(as_mapping(reply.body)),))
            case Operation.ARCHIVE:
                path = f"{resource}/{segment(item['id'])}"
                spec = stripe_object(call.object_type)
                try:
                    if spec.delete_hint is not None:
                        await send("POST", path, {"active": "false"})  # e.g. a price
                    else:
                        await send("DELETE", path, None)
                except ApiError as exc:
                    if exc.kind is ErrorKind.NOT_FOUND:
                        return CallOutcome()
                    if exc.kind is not ErrorKind.INVALID_VALUE or "active" not in spec.updatable:
                        raise
                    # Stripe refuses to delete a product that has prices: archive it,
                    # as Stripe's own dashboard does (under its own idempotency key).
                    key["Idempotency-Key"] = idempotency_key(call) + ":archive"
                    await send("POST", path, {"active": "false"})
                return CallOutcome()
        raise ApiError(ErrorKind.UNSUPPORTED, f"Stripe cannot {call.operation} objects")


def _encode(row: Row, clearing: bool) -> dict[str, object]:
    return encode_fields(row, clearing=clearing)


def _leaves(obj: ApiObject) -> ApiObject:
    """The object with its fields as the form leaves a create would send for them."""
    return replace(obj, properties=dict(form(encode_fields(obj.properties, clearing=False))))


#: Stripe keeps an idempotency key's answer for 24 hours; a margin for clock skew.
IDEMPOTENCY_WINDOW = timedelta(hours=23)


def idempotency_key(call: VendorCall) -> str:
    """The call's key: its journal call id (one row per Stripe call), so recovery can
    send the same request under the same key from the journal alone."""
    return call.call_id


def _to_object(raw: Mapping[str, object]) -> ApiObject:
    properties = decode_object(raw)
    created = str(properties.get("created") or "")
    updated = properties.get("updated")
    return ApiObject(
        id=str(raw.get("id", "")),
        properties=properties,
        created_at=created,
        updated_at=str(updated) if updated else created,
    )


__all__ = ["UNIX_TIME_FIELDS", "StripeConnector"]
