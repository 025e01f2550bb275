"""Everything one sandbox instance holds, reachable from a request as `app.state.sandbox`."""

from __future__ import annotations

from ..common.faults import FaultBook
from ..common.limits import RollingWindow
from ..common.requestlog import RequestLog
from .config import SandboxConfig, Switches
from .store import Store


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.switches = config.switches
        self.store = Store(config.portal_id, config.object_types)
        self.log = RequestLog(config.request_log_limit)
        self.faults = FaultBook()
        self.window = RollingWindow()

    def reset(self) -> None:
        self.switches = self.config.switches
        self.store.reset()
        self.log.clear()
        self.faults.clear()
        self.window.clear()

    def set_switches(self, switches: Switches) -> None:
        if switches.rate_limit != self.switches.rate_limit:
            self.window.clear()
        self.switches = switches

    def multi_status(self, trace_ids: list[str | None]) -> bool:
        """HubSpot answers 207 per input only when every input carries a trace id."""
        if self.switches.batch_errors == "auto":
            return all(t is not None for t in trace_ids)
        return self.switches.batch_errors == "multi_status"
