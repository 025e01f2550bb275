"""Everything one sandbox instance holds, reachable from a request as `app.state.sandbox`."""

from __future__ import annotations

from ..common.faults import FaultBook
from ..common.limits import RollingWindow
from ..common.requestlog import RequestLog
from .config import StripeSandboxConfig, Switches
from .idempotency import IdempotencyStore
from .store import Store


class SandboxState:
    def __init__(self, config: StripeSandboxConfig) -> None:
        self.config = config
        self.switches = config.switches
        self.store = Store()
        self.idempotency = IdempotencyStore(config.idempotency_ttl_s)
        self.log = RequestLog(config.request_log_limit)
        self.faults = FaultBook()
        self.window = RollingWindow()

    def reset(self) -> None:
        self.switches = self.config.switches
        self.store.reset()
        self.idempotency.clear()
        self.log.clear()
        self.faults.clear()
        self.window.clear()

    def set_switches(self, switches: Switches) -> None:
        if switches.rate_limit != self.switches.rate_limit:
            self.window.clear()
        self.switches = switches
