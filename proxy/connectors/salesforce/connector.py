"""Salesforce sObjects behind the vendor-neutral `Connector` interface.

One row uses the sObject Rows endpoints; more use sObject Collections (≤ 200
records per request) with ``allOrNone=true``, so each request is atomic at Salesforce
and a statement spanning several requests is made all-or-nothing by the shared batch
driver (records an earlier request created are deleted again). ``ON CONFLICT
(ext_id__c)`` is an upsert by that external-id field. Salesforce answers a write with
ids only, so the records are read back (one SOQL query per 300 ids) for the fields it
computes (CreatedDate, formulas, defaults).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

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
from ..inputs import ConnectorBase, Encode, create_inputs, update_inputs, upsert_inputs
from ..lookup import KnownIds, find_created
from ..mapping import MappingError, ObjectMapping, TableShape
from . import soql
from .client import SalesforceClient
from .codec import decode_record, encode_fields
from .errors import record_error
from .naming import find_name, map_object
from .settings import SalesforceSettings

#: Ids per sObject Collections retrieve.
_RETRIEVE_CHUNK = 2000
_GONE = ("ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY")


def _q(part: str) -> str:
    return segment(part)


class SalesforceConnector(ConnectorBase):
    empty_string_is_null = True  # Salesforce stores "" in a text field as null
    json_as_text = True  # a json column goes to a (long) text field
    _client: SalesforceClient

    def __init__(self, settings: SalesforceSettings) -> None:
        self._client = SalesforceClient(settings)
        self._batches = BatchDriver(self._dispatch, settings.batch_size)
        self._describes: dict[str, Mapping[str, object]] = {}

    # -- mapping -----------------------------------------------------------------------

    async def map_table(self, shape: TableShape) -> ObjectMapping:
        reply = await self._get(f"{self._client.base}/sobjects/", "sobjects")
        listed = as_mapping(reply.body).get("sobjects")
        names = [str(s["name"]) for s in as_list(listed) if "name" in s]
        object_name = find_name(shape.object or shape.name, names)
        if object_name is None:
            raise MappingError(
                f"synced table {shape.display}: this Salesforce org has no object named like "
                f"{shape.object or shape.name!r} (set object in its [[synced_tables]] entry)"
            )
        return map_object(shape, object_name, await self._describe(object_name))

    async def _describe(self, object_name: str) -> Mapping[str, object]:
        if object_name not in self._describes:
            path = f"{self._client.base}/sobjects/{_q(object_name)}/describe"
            self._describes[object_name] = as_mapping((await self._get(path, object_name)).body)
        return self._describes[object_name]

    async def _encoder(self, object_name: str) -> Encode:
        """Rows' fields as the describe types them."""
        types = await self._types(object_name)
        return lambda row, clearing: encode_fields(row, clearing=clearing, types=types)

    async def _types(self, object_name: str) -> dict[str, str]:
        """Field -> describe type (read once per object and worker)."""
        fields = as_list((await self._describe(object_name)).get("fields"))
        return {str(f["name"]): str(f.get("type")) for f in fields if "name" in f}

    async def _fields(self, object_name: str) -> list[str]:
        """Every field a query can select (compound address/location fields aside)."""
        fields = as_list((await self._describe(object_name)).get("fields"))
        return [str(f["name"]) for f in fields if f.get("type") not in ("address", "location")]

    # -- writes --------------------------------------------------------------------------

    async def create(
        self, object_type: str, rows: Sequence[Row], *, hooks: CallHooks | None = None
    ) -> list[ApiObject]:
        inputs = create_inputs(rows, await self._encoder(object_type))
        done = await self._batches.write(Operation.CREATE, object_type, inputs, hooks)
        return await self._read_back(object_type, done)

    async def update(
        self,
        object_type: str,
        changes: Sequence[tuple[str, Row]],
        *,
        hooks: CallHooks | None = None,
    ) -> list[ApiObject]:
        inputs = update_inputs(changes, await self._encoder(object_type))
        done = await self._batches.write(Operation.UPDATE, object_type, inputs, hooks)
        return await self._read_back(object_type, done)

    async def upsert(
        self,
        object_type: str,
        id_property: str,
        rows: Sequence[Row],
        *,
        hooks: CallHooks | None = None,
    ) -> list[ApiObject]:
        """Create-or-update by an external-id field (``ON CONFLICT (ext_id__c)``)."""
        inputs = upsert_inputs(rows, id_property, await self._encoder(object_type))
        done = await self._batches.write(Operation.UPSERT, object_type, inputs, hooks)
        return await self._read_back(object_type, done)

    # -- reads ---------------------------------------------------------------------------

    async def get(
        self,
        object_type: str,
        object_id: str,
        *,
        id_property: str | None = None,
        properties: Sequence[str] | None = None,
    ) -> ApiObject | None:
        """The live record (by Id, or by an external-id field's value), or None. A
        value is never put in the URL's path (a "/" or ".." would change the path):
        Ids are read by retrieve, external ids by a SOQL query."""
        fields = list(dict.fromkeys(["Id", "CreatedDate", "LastModifiedDate", *(properties or ())]))
        if not properties:
            fields = await self._fields(object_type)
        if id_property:
            [query] = soql.select_in_chunks(object_type, fields, id_property, [object_id])
            found = await self._query(query)
            return found[0] if found else None
        held = await self._retrieve(object_type, [object_id], fields)
        return held.get(object_id)

    async def get_many(
        self, object_type: str, values: Sequence[str], *, id_property: str
    ) -> dict[str, ApiObject]:
        found: dict[str, ApiObject] = {}
        fields = list(dict.fromkeys(["Id", "CreatedDate", "LastModifiedDate", id_property]))
        unique = list(dict.fromkeys(values))
        for query in soql.select_in_chunks(object_type, fields, id_property, unique):
            for obj in await self._query(query):
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
        if call.operation not in (Operation.CREATE, Operation.UPSERT):
            raise ValueError(f"find_created: {call.operation} calls create nothing")
        return await find_created(
            call,
            since,
            unique_property,
            connector=self,
            list_created=self._created_since,
            known=known,
        )

    async def _created_since(
        self, object_type: str, start: datetime, properties: Sequence[str]
    ) -> list[ApiObject]:
        fields = list(dict.fromkeys(["Id", "CreatedDate", "LastModifiedDate", *properties]))
        return await self._query(soql.select_created_since(object_type, fields, start))

    async def _read_back(self, object_type: str, done: list[ApiObject]) -> list[ApiObject]:
        """The written records as Salesforce now holds them, in ``done``'s order. If
        the read fails, the statement fails with the written ids left applied (the
        journal, which saw them, undoes them)."""
        ids = [o.id for o in done]
        try:
            held = await self._retrieve(object_type, ids, await self._fields(object_type))
        except ApiError as exc:
            raise exc.for_row(None, applied=ids) from None
        return [
            ApiObject(
                o.id, held[o.id].properties, held[o.id].created_at, held[o.id].updated_at, o.created
            )
            if o.id in held
            else o
            for o in done
        ]

    async def _retrieve(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, ApiObject]:
        """Live records by Id (sObject Collections retrieve, ≤ 2000 ids a request, in
        the body: no URL limit), deleted and missing ones left out."""
        held: dict[str, ApiObject] = {}
        for start in range(0, len(ids), _RETRIEVE_CHUNK):
            reply = await self._client.request(
                "POST",
                f"{self._client.base}/composite/sobjects/{_q(object_type)}",
                object_type=object_type,
                idempotent=True,
                json={"ids": list(ids[start : start + _RETRIEVE_CHUNK]), "fields": list(fields)},
            )
            records = as_list(reply.body)
            held.update((o.id, o) for o in map(_to_object, records) if o.id)
        return held

    async def _query(self, query: str) -> list[ApiObject]:
        path: str | None = f"{self._client.base}/query"
        params: dict[str, str] | None = {"q": query}
        objects: list[ApiObject] = []
        while path:
            reply = await self._client.request(
                "GET", path, object_type="query", idempotent=True, params=params
            )
            body = as_mapping(reply.body)
            records = body.get("records")
            objects += [_to_object(r) for r in as_list(records)]
            following = body.get("nextRecordsUrl")
            path = str(following) if not body.get("done", True) and following else None
            params = None
        return objects

    async def _get(self, path: str, object_type: str) -> Reply:
        return await self._client.request("GET", path, object_type=object_type, idempotent=True)

    # -- one call ------------------------------------------------------------------------

    async def _dispatch(self, call: VendorCall) -> CallOutcome:
        """One record: the sObject Rows endpoints; more, or any upsert (its external id
        then travels in the body, never in the URL's path): sObject Collections."""
        if len(call.inputs) == 1 and call.operation is not Operation.UPSERT:
            return await self._one(call, call.inputs[0])
        return await self._collection(call)

    async def _one(self, call: VendorCall, item: Mapping[str, object]) -> CallOutcome:
        base = f"{self._client.base}/sobjects/{_q(call.object_type)}"
        fields = dict(as_mapping(item.get("properties")))
        idempotent = call.operation is not Operation.CREATE

        async def send(method: str, path: str, body: object = None) -> Reply:
            return await self._client.request(
                method, path, object_type=call.object_type, idempotent=idempotent, json=body
            )

        match call.operation:
            case Operation.CREATE:
                reply = await send("POST", f"{base}/", fields)
                return CallOutcome(results=(_written(as_mapping(reply.body), fields),))
            case Operation.UPDATE:
                await send("PATCH", f"{base}/{_q(str(item['id']))}", fields)
                return CallOutcome(results=(ApiObject(str(item["id"]), fields, "", ""),))
            case _:
                try:
                    await send("DELETE", f"{base}/{_q(str(item['id']))}")
                except ApiError as exc:
                    if exc.vendor_code not in _GONE:
                        raise
                return CallOutcome()

    async def _collection(self, call: VendorCall) -> CallOutcome:
        base = f"{self._client.base}/composite/sobjects"
        kind = {"type": call.object_type}
        records: list[dict[str, object]] = []
        for item in call.inputs:
            fields = dict(as_mapping(item.get("properties")))
            if call.operation is Operation.UPDATE:
                fields["Id"] = str(item["id"])
            records.append({"attributes": kind, **fields})
        operation = call.operation
        if operation is Operation.ARCHIVE:
            ids = ",".join(str(item["id"]) for item in call.inputs)
            reply = await self._client.request(
                "DELETE",
                base,
                object_type=call.object_type,
                idempotent=True,
                # Not all-or-none: a delete is idempotent, and one record already in
                # the recycle bin must not hold back the others.
                params={"ids": ids, "allOrNone": "false"},
            )
        else:
            method, path = "POST", base
            if operation is Operation.UPDATE:
                method = "PATCH"
            elif operation is Operation.UPSERT:
                key = str(call.inputs[0]["idProperty"])
                method, path = "PATCH", f"{base}/{_q(call.object_type)}/{_q(key)}"
            reply = await self._client.request(
                method,
                path,
                object_type=call.object_type,
                idempotent=operation is not Operation.CREATE,
                json={"allOrNone": True, "records": records},
            )
        return _collection_outcome(call, reply)


def _created(answer: Mapping[str, object], reply: Reply) -> bool | None:
    if answer.get("created") is True:
        return True
    return None if reply.ambiguous_retry else False


def _written(
    answer: Mapping[str, object], fields: Mapping[str, object], created: bool | None = None
) -> ApiObject:
    """What a write's answer says (an id): the record itself is read back later."""
    return ApiObject(str(answer.get("id", "")), dict(fields), "", "", created)


def _to_object(record: Mapping[str, object]) -> ApiObject:
    fields = decode_record(record)
    return ApiObject(
        id=str(fields.get("Id", "")),
        properties=fields,
        created_at=str(fields.get("CreatedDate") or ""),
        updated_at=str(fields.get("LastModifiedDate") or ""),
    )


def _collection_outcome(call: VendorCall, reply: Reply) -> CallOutcome:
    """Per-record results in input order (Salesforce answers in request order)."""
    answers = (
        [a for a in reply.body if isinstance(a, Mapping)] if isinstance(reply.body, list) else []
    )
    results: list[ApiObject | ApiError] = []
    for index, item in enumerate(call.inputs):
        if index >= len(answers):
            results.append(
                ApiError(
                    ErrorKind.OUTCOME_UNKNOWN,
                    "Salesforce returned no result for this record",
                    retry_safe=False,
                )
            )
            continue
        answer = answers[index]
        if answer.get("success") is True:
            fields = dict(as_mapping(item.get("properties")))
            created = _created(answer, reply) if call.operation is Operation.UPSERT else None
            results.append(_written(answer, fields, created))
            continue
        error = record_error(answer, reply.status)
        if call.operation is Operation.ARCHIVE and error.vendor_code in _GONE:
            results.append(ApiObject(str(item["id"]), {}, "", ""))
        else:
            results.append(error)
    if call.operation is Operation.ARCHIVE:
        failures = [r for r in results if isinstance(r, ApiError)]
        return CallOutcome(results=tuple(results)) if failures else CallOutcome()
    return CallOutcome(results=tuple(results))
