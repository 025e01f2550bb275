"""HubSpot CRM v3 objects behind the vendor-neutral `Connector` interface.

Single-input calls use the single-object endpoints; larger ones the batch endpoints
(≤100 inputs). Batch creates and upserts carry an `objectWriteTraceId` per input, which
makes HubSpot answer 207 per input instead of rejecting the whole batch, and lets us
match results to inputs (HubSpot does not promise result order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import quote

from ..base import (
    ApiError,
    ApiObject,
    CallHooks,
    CallOutcome,
    ErrorKind,
    NoHooks,
    Operation,
    Row,
    VendorCall,
)
from ..batches import BatchDriver
from ..http import Reply, as_mapping, segment
from ..inputs import ConnectorBase, create_inputs, update_inputs, upsert_inputs
from ..lookup import KnownIds, _created_since, find_created
from ..mapping import ObjectMapping, TableShape
from . import naming
from .client import HubSpotClient
from .codec import decode_properties, encode_properties
from .errors import parse_error
from .settings import HubSpotSettings

_TRACED = (Operation.CREATE, Operation.UPSERT)
#: Properties HubSpot keeps unique per standard object type (exact lookups by value).
UNIQUE_PROPERTIES = {"contacts": "email"}
_PAGE = 100


class HubSpotConnector(ConnectorBase):
    empty_string_is_null = True  # a property set to "" is cleared
    json_as_text = True  # every property value is a string
    _client: HubSpotClient

    def __init__(self, settings: HubSpotSettings) -> None:
        self._batch_size = settings.batch_size
        self._client = HubSpotClient(settings)
        self._batches = BatchDriver(self._dispatch, settings.batch_size)

    async def map_table(self, shape: TableShape) -> ObjectMapping:
        return naming.map_table(shape)

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

    async def upsert(
        self,
        object_type: str,
        id_property: str,
        rows: Sequence[Row],
        *,
        hooks: CallHooks | None = None,
    ) -> list[ApiObject]:
        """Create-or-update keyed by a unique property (e.g. contacts' `email`)."""
        inputs = upsert_inputs(rows, id_property, _encode)
        return await self._batches.write(Operation.UPSERT, object_type, inputs, hooks)

    async def associate(
        self,
        from_type: str,
        to_type: str,
        pairs: Sequence[tuple[str, str]],
        *,
        remove: bool = False,
        hooks: CallHooks | None = None,
    ) -> None:
        """Create (or with ``remove``, delete) default associations, v4 API; what this
        call changed is undone if one pair fails."""
        operation = Operation.DISSOCIATE if remove else Operation.ASSOCIATE
        await self._link(operation, from_type, to_type, pairs, hooks or NoHooks())

    async def _link(
        self,
        operation: Operation,
        from_type: str,
        to_type: str,
        pairs: Sequence[tuple[str, str]],
        hooks: CallHooks,
        *,
        compensation: bool = False,
    ) -> None:
        """One idempotent v4 request per pair (PUT/DELETE), each announced to hooks."""
        done: list[tuple[str, str]] = []
        for index, (from_id, to_id) in enumerate(pairs):
            call = VendorCall(
                operation,
                from_type,
                ({"from": from_id, "to": to_id, "toObjectType": to_type},),
                first_index=index,
                compensation=compensation,
            )
            await hooks.before_send(call)
            base = f"/crm/v4/objects/{quote(from_type, safe='')}/{segment(from_id)}"
            target = f"{quote(to_type, safe='')}/{segment(to_id)}"
            try:
                if operation is Operation.ASSOCIATE:
                    path = f"{base}/associations/default/{target}"
                    await self._client.request("PUT", path, object_type=from_type, idempotent=True)
                else:
                    path = f"{base}/associations/{target}"
                    await self._client.request(
                        "DELETE", path, object_type=from_type, idempotent=True
                    )
            except ApiError as error:
                await hooks.after_send(call, CallOutcome(error=error))
                if done and not compensation:
                    undo = (
                        Operation.DISSOCIATE
                        if operation is Operation.ASSOCIATE
                        else Operation.ASSOCIATE
                    )
                    await self._link(undo, from_type, to_type, done, hooks, compensation=True)
                raise error.for_row(index) from None
            await hooks.after_send(call, CallOutcome())
            done.append((from_id, to_id))

    async def get(
        self,
        object_type: str,
        object_id: str,
        *,
        id_property: str | None = None,
        properties: Sequence[str] | None = None,
    ) -> ApiObject | None:
        """The live object, or None if HubSpot has no such (non-archived) object. By a
        unique property's value through a batch read: the value travels in the body,
        never in the URL's path (where "." or ".." would change the path)."""
        if id_property:
            found = await self._read(object_type, [object_id], id_property, properties)
            return next(iter(found.values()), None)
        params = {}
        if properties:
            params["properties"] = ",".join(properties)
        try:
            reply = await self._client.request(
                "GET",
                f"{_base(object_type)}/{segment(object_id)}",
                object_type=object_type,
                idempotent=True,
                params=params,
            )
        except ApiError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return None
            raise
        return _to_object(as_mapping(reply.body))

    async def get_many(
        self, object_type: str, values: Sequence[str], *, id_property: str
    ) -> dict[str, ApiObject]:
        """The live objects whose ``id_property`` is one of ``values``, by value as
        HubSpot reports it (batch read: one call per ``batch_size`` values)."""
        return await self._read(object_type, values, id_property, [id_property])

    async def _read(
        self,
        object_type: str,
        values: Sequence[str],
        id_property: str,
        properties: Sequence[str] | None,
    ) -> dict[str, ApiObject]:
        found: dict[str, ApiObject] = {}
        unique = list(dict.fromkeys(values))
        wanted = list(dict.fromkeys([id_property, *(properties or ())]))
        for start in range(0, len(unique), self._batch_size):
            chunk = unique[start : start + self._batch_size]
            reply = await self._client.request(
                "POST",
                f"{_base(object_type)}/batch/read",
                object_type=object_type,
                idempotent=True,
                json={
                    "idProperty": id_property,
                    "properties": wanted,
                    "inputs": [{"id": value} for value in chunk],
                },
            )
            results = reply.body.get("results") if isinstance(reply.body, Mapping) else None
            for raw in results if isinstance(results, list) else []:
                obj = _to_object(raw)
                key = obj.properties.get(id_property)
                if key is not None:
                    found[str(key)] = obj
        return found

    async def find_created(
        self,
        call: VendorCall,
        since: datetime,
        *,
        unique_property: str | None = None,
        known: KnownIds | None = None,
    ) -> list[ApiObject | None]:
        """What HubSpot holds for each input of a create/upsert whose answer was lost
        (``lookup.find_created``). Only reads."""
        if call.operation not in _TRACED:
            raise ValueError(f"find_created: {call.operation} calls create nothing")
        return await find_created(
            call,
            since,
            unique_property,
            connector=self,
            list_created=self._created_since,
            unique_properties=UNIQUE_PROPERTIES,
            known=known,
        )

    async def _created_since(
        self, object_type: str, start: datetime, properties: Sequence[str]
    ) -> list[ApiObject]:
        """Live objects created at/after ``start``, oldest id first (every page)."""
        params = {"limit": str(_PAGE)}
        if properties:
            params["properties"] = ",".join(properties)
        objects: list[ApiObject] = []
        while True:
            reply = await self._client.request(
                "GET", _base(object_type), object_type=object_type, idempotent=True, params=params
            )
            body = as_mapping(reply.body)
            objects += [_to_object(raw) for raw in _list(body, "results")]
            paging = body.get("paging")
            after = _next_after(paging)
            if after is None:
                break
            params = {**params, "after": after}
        fresh = [o for o in objects if _created_since(o, start)]
        return sorted(fresh, key=lambda o: (len(o.id), o.id))

    async def _dispatch(self, call: VendorCall) -> CallOutcome:
        operation, base = call.operation, _base(call.object_type)
        items: list[Mapping[str, object]] = [dict(i) for i in call.inputs]

        async def send(method: str, path: str, body: object = None) -> Reply:
            return await self._client.request(
                method,
                path,
                object_type=call.object_type,
                idempotent=operation is not Operation.CREATE,
                json=body,
            )

        if len(items) == 1 and operation is not Operation.UPSERT:
            item = items[0]
            path = "" if operation is Operation.CREATE else f"{base}/{segment(item.get('id'))}"
            match operation:
                case Operation.CREATE:
                    reply = await send("POST", base, {"properties": item["properties"]})
                case Operation.UPDATE:
                    reply = await send("PATCH", path, {"properties": item["properties"]})
                case _:
                    await send("DELETE", path)
                    return CallOutcome()
            return CallOutcome(results=(_to_object(as_mapping(reply.body)),))
        if operation in _TRACED:
            items = [
                {**item, "objectWriteTraceId": call.trace_id(i)} for i, item in enumerate(items)
            ]
        reply = await send("POST", f"{base}/batch/{operation.value}", {"inputs": items})
        if operation is Operation.ARCHIVE:
            return CallOutcome()
        return CallOutcome(results=_match_results(call, reply))


def _base(object_type: str) -> str:
    return f"/crm/v3/objects/{quote(object_type, safe='')}"


def _encode(row: Row, clearing: bool) -> dict[str, str]:
    return encode_properties(row, clearing=clearing)


def _to_object(raw: Mapping[str, object], created: bool | None = None) -> ApiObject:
    properties = raw.get("properties")
    return ApiObject(
        id=str(raw["id"]),
        properties=decode_properties(properties if isinstance(properties, Mapping) else {}),
        created_at=str(raw.get("createdAt", "")),
        updated_at=str(raw.get("updatedAt", "")),
        created=created,
    )


def _match_results(call: VendorCall, reply: Reply) -> tuple[ApiObject | ApiError, ...]:
    """Per-input results in input order: by trace id (create/upsert) or object id
    (update); anything HubSpot did not label is matched in order."""
    count = len(call.inputs)
    by_trace = {call.trace_id(i): i for i in range(count)}
    by_id = (
        {str(item["id"]): i for i, item in enumerate(call.inputs)}
        if call.operation is Operation.UPDATE
        else {}
    )
    keyed: dict[int, ApiObject | ApiError] = {}
    loose: list[ApiObject | ApiError] = []
    for raw in _list(as_mapping(reply.body), "results"):
        new = raw.get("new")
        created = True if new is True else (None if reply.ambiguous_retry else False)
        obj = _to_object(raw, created if call.operation is Operation.UPSERT else None)
        index = by_trace.get(str(raw.get("objectWriteTraceId")), by_id.get(obj.id))
        _place(keyed, loose, [] if index is None else [index], obj)
    for entry in _list(as_mapping(reply.body), "errors"):
        error = parse_error(
            reply.status, entry, object_type=call.object_type, correlation_id=reply.correlation_id
        )
        context = entry.get("context")
        context = context if isinstance(context, Mapping) else {}
        traces = [by_trace[t] for t in context.get("objectWriteTraceId") or [] if t in by_trace]
        ids = [by_id[i] for i in context.get("ids") or [] if i in by_id]
        _place(keyed, loose, traces + ids, error)
    missing = ApiError(
        ErrorKind.OUTCOME_UNKNOWN, "HubSpot returned no result for this input", retry_safe=False
    )
    return tuple(
        keyed[i] if i in keyed else (loose.pop(0) if loose else missing) for i in range(count)
    )


def _place(
    keyed: dict[int, ApiObject | ApiError],
    loose: list[ApiObject | ApiError],
    indices: list[int],
    result: ApiObject | ApiError,
) -> None:
    for index in indices:
        keyed[index] = result
    if not indices:
        loose.append(result)


def _next_after(paging: object) -> str | None:
    if not isinstance(paging, Mapping):
        return None
    following = paging.get("next")
    after = following.get("after") if isinstance(following, Mapping) else None
    return None if after in (None, "") else str(after)


def _list(body: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    value = body.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
