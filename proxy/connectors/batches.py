"""The batch driver every connector shares: a statement's inputs go out in vendor
batches of at most ``batch_size``, each announced to the caller's hooks before it is
sent and after it is answered (so the journal records it first).

On the first failure, the objects this statement's earlier batches created are
archived again (announced with ``compensation=True``) and the failure is raised naming
its row and whatever stays applied (updated ids: the caller restores them from its old
row images). A vendor with no batch API (Stripe) uses a ``batch_size`` of 1: the same
all-or-nothing rule then holds across its one-object calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from .base import ApiError, ApiObject, CallHooks, CallOutcome, NoHooks, Operation, VendorCall

#: Sends one call (already announced) and returns its per-input outcome.
Dispatch = Callable[[VendorCall], Awaitable[CallOutcome]]


class BatchDriver:
    def __init__(self, dispatch: Dispatch, batch_size: int) -> None:
        self._dispatch = dispatch
        self.batch_size = batch_size

    async def write(
        self,
        operation: Operation,
        object_type: str,
        inputs: Sequence[Mapping[str, object]],
        hooks: CallHooks | None,
    ) -> list[ApiObject]:
        """Send batch after batch; on the first failure undo this call's creations and
        raise that failure, naming the row and whatever stays applied."""
        hooks = hooks or NoHooks()
        done: list[ApiObject] = []
        for call in plan_batches(operation, object_type, inputs, self.batch_size):
            outcome = await self.send(call, hooks)
            done += [r for r in outcome.results if isinstance(r, ApiObject)]
            failure, index = first_failure(call, outcome)
            if failure is not None:
                left = await self._undo(operation, object_type, done, hooks)
                raise failure.for_row(index, applied=left)
        return done

    async def archive(
        self, object_type: str, ids: Sequence[str], hooks: CallHooks, *, compensation: bool
    ) -> None:
        inputs = [{"id": str(object_id)} for object_id in ids]
        archived: list[str] = []
        for call in plan_batches(
            Operation.ARCHIVE, object_type, inputs, self.batch_size, compensation=compensation
        ):
            outcome = await self.send(call, hooks)
            failure, index = first_failure(call, outcome)
            if failure is not None:  # a vendor that archives record by record says which
                done_here = [r.id for r in outcome.results if isinstance(r, ApiObject)]
                raise failure.for_row(index, applied=archived + done_here)
            archived += [str(item["id"]) for item in call.inputs]

    async def send(self, call: VendorCall, hooks: CallHooks) -> CallOutcome:
        await hooks.before_send(call)
        try:
            outcome = await self._dispatch(call)
        except ApiError as error:
            outcome = CallOutcome(error=error)
        await hooks.after_send(call, outcome)
        return outcome

    async def _undo(
        self, operation: Operation, object_type: str, done: list[ApiObject], hooks: CallHooks
    ) -> list[str]:
        """Archive the objects this call created; return the ids left changed."""
        created = [o.id for o in done if operation is Operation.CREATE or o.created]
        left = [o.id for o in done if o.id not in created]
        if created:
            try:
                await self.archive(object_type, created, hooks, compensation=True)
            except ApiError:
                left += created
        return left


def plan_batches(
    operation: Operation,
    object_type: str,
    inputs: Sequence[Mapping[str, object]],
    batch_size: int,
    *,
    compensation: bool = False,
) -> list[VendorCall]:
    """Split a statement's inputs into vendor calls of at most `batch_size` inputs."""
    return [
        VendorCall(
            operation,
            object_type,
            tuple(inputs[start : start + batch_size]),
            first_index=start,
            compensation=compensation,
        )
        for start in range(0, len(inputs), batch_size)
    ]


def whole_call_index(call: VendorCall) -> int | None:
    return call.first_index if len(call.inputs) == 1 else None


def first_failure(call: VendorCall, outcome: CallOutcome) -> tuple[ApiError | None, int | None]:
    if outcome.error is not None:
        return outcome.error, whole_call_index(call)
    failed = [
        (offset, result)
        for offset, result in enumerate(outcome.results)
        if isinstance(result, ApiError)
    ]
    causes = [(offset, error) for offset, error in failed if not error.consequential]
    for offset, error in causes or failed:
        return error, call.first_index + offset
    return None, None
