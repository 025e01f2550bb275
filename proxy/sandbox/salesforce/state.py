"""Everything one sandbox org holds, reachable from a request as `app.state.sandbox`."""

from __future__ import annotations

import itertools
import threading

from ..common.faults import FaultBook
from ..common.limits import RollingWindow
from ..common.requestlog import RequestLog
from .config import SalesforceSandboxConfig, Switches
from .rules import RuleContext
from .schema import build_catalog
from .standard import standard_objects
from .store import Store
from .tokens import TokenBook


class SalesforceState:
    def __init__(self, config: SalesforceSandboxConfig) -> None:
        self.config = config
        self.switches = config.switches
        catalog = build_catalog(standard_objects(), config.custom_fields, config.custom_objects)
        self.store = Store(catalog)
        self.tokens = TokenBook(config.static_tokens)
        self.log = RequestLog(config.request_log_limit)
        self.faults = FaultBook()
        self.window = RollingWindow()
        self._usage_lock = threading.Lock()
        self._usage = itertools.count(1)

    def reset(self) -> None:
        self.switches = self.config.switches
        self.store.reset()
        self.tokens.reset()
        self.log.clear()
        self.faults.clear()
        self.window.clear()
        with self._usage_lock:
            self._usage = itertools.count(1)

    def set_switches(self, switches: Switches) -> None:
        if switches.rate_limit != self.switches.rate_limit:
            self.window.clear()
        self.switches = switches

    def admit(self) -> tuple[bool, str]:
        """Counts one API request: whether it is within the limit, and the
        `Sforce-Limit-Info` value after it."""
        limit = self.switches.rate_limit
        if limit is None:
            with self._usage_lock:
                used = next(self._usage)
            return True, f"api-usage={used}/{self.config.api_daily_limit}"
        admitted, remaining = self.window.admit(limit.max_requests, limit.window_s)
        return admitted, f"api-usage={limit.max_requests - remaining}/{limit.max_requests}"

    def rules(self, version: str) -> RuleContext:
        return RuleContext(version, self.switches.duplicate_rules, self.config.validation_rules)
