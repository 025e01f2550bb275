"""Injected faults, shared by every vendor sandbox: make chosen requests fail, stall,
or fail after taking effect. Each vendor renders a fault's error body its own way."""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FaultMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str | None = None
    path_regex: str | None = None

    @field_validator("path_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid path_regex: {exc}") from None
        return value

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_regex is None or re.search(self.path_regex, path) is not None
        )


class FaultSpec(BaseModel):
    """`apply: true` runs the request first (its change sticks), then answers with the
    fault: the "timed out after the vendor applied it" case. `delay_ms` stalls the answer
    so a client timeout can fire; with no `status` the real answer follows the delay."""

    model_config = ConfigDict(extra="forbid")

    match: FaultMatch = FaultMatch()
    times: int = Field(default=1, ge=1)
    status: int | None = Field(default=None, ge=400, le=599)
    # The vendor's error body to answer with (else the vendor's generic one).
    body: dict[str, object] | list[object] | None = None
    headers: dict[str, str] = {}
    apply: bool = False
    delay_ms: float = Field(default=0.0, ge=0)


@dataclass
class ArmedFault:
    id: int
    spec: FaultSpec
    remaining: int

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "remaining": self.remaining, **self.spec.model_dump()}


class FaultBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._armed: list[ArmedFault] = []

    def add(self, spec: FaultSpec) -> ArmedFault:
        with self._lock:
            fault = ArmedFault(next(self._ids), spec, spec.times)
            self._armed.append(fault)
            return fault

    def take(self, method: str, path: str) -> ArmedFault | None:
        """The first armed fault matching the request, used up by one."""
        with self._lock:
            for fault in self._armed:
                if fault.spec.match.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._armed.remove(fault)
                    return fault
            return None

    def armed(self) -> list[ArmedFault]:
        with self._lock:
            return list(self._armed)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
