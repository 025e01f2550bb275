"""proxy.connectors.hubspot.client's retry rules against an in-process HTTP transport
(httpx.MockTransport): what is retried, how long it waits, and what a request whose
outcome is unknown becomes."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tenacity import AsyncRetrying

from proxy.connectors import retry
from proxy.connectors.base import ApiError, ErrorKind
from proxy.connectors.hubspot.client import HubSpotClient, Reply
from proxy.connectors.hubspot.settings import HubSpotSettings


class Vendor:
    """Scripted answers, one per request, and the requests seen."""

    def __init__(self) -> None:
        self.answers: list[httpx.Response | Exception] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(retry, "AsyncRetrying", functools.partial(AsyncRetrying, sleep=sleep))
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: 0.0)
    return recorded


@pytest.fixture
def vendor() -> Vendor:
    return Vendor()


@pytest.fixture
async def client(vendor: Vendor) -> AsyncIterator[HubSpotClient]:
    settings = HubSpotSettings.model_validate(
        {
            "token": "pat-1",
            "base_url": "https://hubspot.test",
            "max_attempts": 3,
            "ten_secondly_wait_s": 7.0,
            "locked_wait_s": 2.0,
            "backoff_cap_s": 20.0,
        }
    )
    hubspot = HubSpotClient(settings)
    await hubspot.aclose()
    hubspot._http = httpx.AsyncClient(
        base_url=settings.base_url,
        headers={"Authorization": "Bearer pat-1"},
        transport=httpx.MockTransport(vendor),
    )
    yield hubspot
    await hubspot.aclose()


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


async def send(client: HubSpotClient, *, idempotent: bool = False) -> Reply:
    return await client.request(
        "POST",
        "/crm/v3/objects/contacts",
        object_type="contacts",
        idempotent=idempotent,
        json={"properties": {"email": "a@b.c"}},
    )


async def test_success(client: HubSpotClient, vendor: Vendor, sleeps: list[float]) -> None:
    vendor.answers = [answer(201, {"id": "1"}, **{"x-hubspot-correlation-id": "c-1"})]
    reply = await send(client)
    assert reply == Reply(201, {"id": "1"}, "c-1", ambiguous_retry=False)
    [request] = vendor.requests
    assert request.headers["authorization"] == "Bearer pat-1"
    assert request.url == "https://hubspot.test/crm/v3/objects/contacts"
    assert sleeps == []


async def test_ten_secondly_429_waits_at_least_the_window(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [
        answer(429, {"policyName": "TEN_SECONDLY_ROLLING", "category": "RATE_LIMITS"}),
        answer(429, {"message": "later"}, **{"retry-after": "3"}),
        answer(201, {"id": "1"}),
    ]
    reply = await send(client)
    assert reply.status == 201
    assert not reply.ambiguous_retry  # a 429 was never applied
    assert sleeps == [7.0, 3.0]


async def test_daily_429_is_not_retried(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [answer(429, {"policyName": "DAILY", "message": "daily limit"})]
    with pytest.raises(ApiError) as caught:
        await send(client)
    assert (caught.value.kind, caught.value.message) == (ErrorKind.RATE_LIMITED, "daily limit")
    assert caught.value.retry_safe
    assert (len(vendor.requests), sleeps) == (1, [])


async def test_a_retry_after_beyond_the_cap_gives_up(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [answer(429, {}, **{"retry-after": "120"})]
    with pytest.raises(ApiError) as caught:
        await send(client)
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert (len(vendor.requests), sleeps) == (1, [])


async def test_locked_423_and_migration_477_are_retried(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [answer(423, {}), answer(477, {}), answer(200, {"id": "1"})]
    assert (await send(client)).status == 200
    assert sleeps == [2.0, 0.0]


async def test_477_until_attempts_run_out_is_unavailable(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [answer(477, {"message": "migrating"}) for _ in range(3)]
    with pytest.raises(ApiError) as caught:
        await send(client)
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.retry_safe
    assert len(vendor.requests) == 3


async def test_5xx_on_a_create_is_outcome_unknown_and_never_resent(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [answer(502, "<html>bad gateway</html>")]
    with pytest.raises(ApiError) as caught:
        await send(client, idempotent=False)
    error = caught.value
    assert error.kind is ErrorKind.OUTCOME_UNKNOWN
    assert not error.retry_safe
    assert error.message == "<html>bad gateway</html>"  # a non-JSON body becomes the message
    assert error.sqlstate == "08007"
    assert len(vendor.requests) == 1


async def test_5xx_on_an_idempotent_request_is_retried_and_marked_ambiguous(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [answer(500, {}), answer(200, {"id": "1"})]
    reply = await send(client, idempotent=True)
    assert reply.status == 200
    assert reply.ambiguous_retry
    assert len(vendor.requests) == 2


async def test_a_definite_rejection_after_an_ambiguous_attempt_is_not_retry_safe(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [answer(503, {}), answer(409, {"message": "Existing ID: 4"})]
    with pytest.raises(ApiError) as caught:
        await send(client, idempotent=True)
    assert caught.value.kind is ErrorKind.DUPLICATE
    assert not caught.value.retry_safe


async def test_connection_refused_is_retried_as_never_sent(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [httpx.ConnectError("refused") for _ in range(3)]
    with pytest.raises(ApiError) as caught:
        await send(client)
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.retry_safe
    assert caught.value.message.startswith("HubSpot unreachable: ConnectError")
    assert len(vendor.requests) == 3


async def test_a_lost_answer_to_a_create_is_outcome_unknown(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [httpx.ReadTimeout("slow")]
    with pytest.raises(ApiError) as caught:
        await send(client, idempotent=False)
    assert caught.value.kind is ErrorKind.OUTCOME_UNKNOWN
    assert not caught.value.retry_safe
    assert len(vendor.requests) == 1


async def test_a_lost_answer_to_an_idempotent_request_is_retried(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [httpx.ReadTimeout("slow"), answer(200, {"id": "1"})]
    reply = await send(client, idempotent=True)
    assert reply.ambiguous_retry
    assert len(vendor.requests) == 2


async def test_client_errors_are_not_retried(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [
        answer(400, {"errors": [{"code": "PROPERTY_DOESNT_EXIST", "message": "no such"}]})
    ]
    with pytest.raises(ApiError) as caught:
        await send(client)
    assert caught.value.kind is ErrorKind.UNKNOWN_PROPERTY
    assert caught.value.http_status == 400
    assert (len(vendor.requests), sleeps) == (1, [])


async def test_empty_and_non_object_bodies(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [answer(204), answer(200, [1, 2])]
    assert (await send(client)).body == {}
    # A JSON array is kept (Salesforce answers lists); HubSpot's code reads it as {}.
    assert (await send(client)).body == [1, 2]


async def test_rate_limit_headers_tighten_the_limiter(
    client: HubSpotClient, vendor: Vendor, sleeps: list[float]
) -> None:
    vendor.answers = [
        answer(
            200,
            {},
            **{
                "x-hubspot-ratelimit-max": "50",
                "x-hubspot-ratelimit-remaining": "0",
                "x-hubspot-ratelimit-interval-milliseconds": "10000",
            },
        )
    ]
    await send(client)
    limiter = client._limiter
    assert (limiter._max, limiter._interval_s) == (50, 10.0)
    # Nothing remains: the window is full until it rolls over.
    assert len(limiter._answered) + limiter._in_flight >= 50
