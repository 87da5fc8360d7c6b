"""The pipeline policies every hdsctl client shares: the one retry policy (DICOM data plane,
FHIR, Resource Manager, Graph), and a counter of the requests each client put on the wire.

Azure throttles for tens of seconds, and a CI job must still end. So retries are bounded by
time, not by counts: 408, 429, 500, 502, 503, 504 and dropped connections are retried with
jittered exponential backoff until the time budget is spent; `Retry-After` is obeyed up to a
cap and never past the budget. azure-core's own status, read and connect counts (3 each by
default, whatever `retry_total` says) no longer end a run after two seconds of 503s.

Every wait is reported to the `hdsctl.retry` logger, so a long wait says why it is waiting.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline.policies import RetryPolicy, SansIOHTTPPolicy

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_BUDGET_SECONDS = 300.0
RETRY_AFTER_CAP_SECONDS = 120.0
MIN_ATTEMPT_SECONDS = 5.0
# A host that refuses connections or has no address is most likely a wrong URL or a network
# that does not reach it: retried briefly, not for the whole budget.
UNREACHABLE_SECONDS = 10.0
_UNBOUNDED = 1_000_000  # counts azure-core checks; the budget is what ends retrying

log = logging.getLogger("hdsctl.retry")


@dataclass
class Budget:
    """How long one request may keep retrying, and an optional deadline for the whole command
    (`--timeout`, a Pulumi resource's own timeout) that no request passes."""

    per_request: float = DEFAULT_BUDGET_SECONDS
    deadline: float | None = field(default=None)  # time.monotonic() value

    @classmethod
    def until(cls, seconds: float, per_request: float = DEFAULT_BUDGET_SECONDS) -> Budget:
        return cls(per_request=min(per_request, seconds), deadline=time.monotonic() + seconds)

    @classmethod
    def of(cls, per_request: float, deadline_seconds: float | None = None) -> Budget:
        """`--timeout` per request and, when given, `--deadline` for the whole command from now."""
        if deadline_seconds is None:
            return cls(per_request=per_request)
        return cls.until(deadline_seconds, per_request)

    def request_deadline(self) -> float:
        end = time.monotonic() + self.per_request
        return end if self.deadline is None else min(end, self.deadline)


class BudgetRetryPolicy(RetryPolicy):
    """azure-core's retry loop with the decisions above. All methods are retried: every write
    hdsctl sends is safe to repeat (a repeated POST meets a 409 that the caller re-plans on)."""

    def __init__(self, budget: Budget | None = None, *, backoff_factor: float = 0.5,
                 backoff_max: float = 30.0, retry_after_cap: float = RETRY_AFTER_CAP_SECONDS):
        super().__init__(retry_total=_UNBOUNDED, retry_connect=_UNBOUNDED, retry_read=_UNBOUNDED,
                         retry_status=_UNBOUNDED, retry_backoff_factor=backoff_factor,
                         retry_backoff_max=backoff_max)
        self.budget = budget or Budget()
        self.retry_after_cap = retry_after_cap

    def _configure_timeout(self, request, absolute_timeout: float, is_response_error: bool) -> None:
        super()._configure_timeout(request, absolute_timeout, is_response_error)
        # azure-core bounds only the connection by the budget; an answer is awaited no longer
        # than the budget either (the transport's own default is 300 s per read).
        read = request.context.options.get("read_timeout")
        request.context.options["read_timeout"] = min(read or absolute_timeout, absolute_timeout)

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings["deadline"] = self.budget.request_deadline()
        # azure-core also derives socket timeouts from this; a spent budget still lets one
        # attempt through (a final read after a timed-out wait), it only stops retries.
        settings["timeout"] = max(MIN_ATTEMPT_SECONDS, settings["deadline"] - time.monotonic())
        settings["started"] = time.monotonic()
        return settings

    def is_retry(self, settings: dict[str, Any], response) -> bool:
        return response.http_response.status_code in RETRY_STATUSES

    def _is_method_retryable(self, settings, request, response=None) -> bool:
        return True

    def increment(self, settings: dict[str, Any], response=None, error=None) -> bool:
        if not super().increment(settings, response=response, error=error):
            return False  # azure-core's own reasons: a body that cannot be rewound
        answer = None if error is not None else getattr(response, "http_response", None)
        wait = self._wait_for(settings, answer)
        deadline = settings["deadline"]
        unreachable = error is not None and _unreachable(error)
        if unreachable:
            deadline = min(deadline, settings["started"] + UNREACHABLE_SECONDS)
        left = deadline - time.monotonic()
        request = response.http_request
        reason = _reason(answer, error)
        if wait > left:
            limit = ("the host does not take connections" if unreachable else
                     f"waiting {wait:.0f} s more would pass the time budget ({max(left, 0):.0f} s left)")
            log.warning("giving up on %s %s after %d attempt(s) in %.0f s: %s; %s",
                        request.method, _where(request.url), len(settings["history"]),
                        time.monotonic() - settings["started"], reason, limit)
            return False
        settings["wait"] = wait
        log.warning("waiting %.1f s before retrying %s %s: %s (attempt %d, %.0f s of the time budget left)",
                    wait, request.method, _where(request.url), reason, len(settings["history"]) + 1, left)
        return True

    def sleep(self, settings: dict[str, Any], transport, response=None) -> None:
        wait = settings.pop("wait", 0.0)
        if wait > 0:
            transport.sleep(wait)

    def _retry_after(self, answer) -> float | None:
        """Seconds from `Retry-After` (delta seconds or an HTTP date), parsed by azure-core;
        unlike azure-core's own loop, 0 means now, not "absent"."""
        value = (answer.headers.get("Retry-After") or "").strip()
        if not value:
            return None
        try:
            return self.parse_retry_after(value)
        except (ValueError, TypeError):
            return None  # unreadable: back off as for any other answer

    def _wait_for(self, settings: dict[str, Any], answer) -> float:
        if answer is not None:
            retry_after = self._retry_after(answer)
            if retry_after is not None:
                return min(retry_after, self.retry_after_cap) * random.uniform(1.0, 1.1)
        attempts = max(1, len(settings["history"]))
        backoff = min(settings["max_backoff"], settings["backoff"] * (2 ** (attempts - 1)))
        return backoff * random.uniform(0.5, 1.0)


def _unreachable(error: BaseException) -> bool:
    """Connection refused or no such host, anywhere in the chain of causes."""
    import socket

    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionRefusedError, socket.gaierror)):
            return True
        text = str(current)
        if "Connection refused" in text or "Name or service not known" in text or "name resolution" in text:
            return True
        current = getattr(current, "inner_exception", None) or current.__cause__ or current.__context__
    return False


def _reason(answer, error) -> str:
    if answer is not None:
        text = f"{answer.status_code} {answer.reason or ''}".strip()
        after = answer.headers.get("Retry-After")
        return f"{text}, Retry-After {after}" if after else text
    return f"no answer ({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''})"


def _where(url: str) -> str:
    """Host and path only: query strings may carry ids a log does not need."""
    parts = urlsplit(url)
    return f"{parts.hostname}{parts.path}"


class OriginGuard(SansIOHTTPPolicy):
    """Every request of a client goes to the one origin its URL was checked for: a paging link
    or a redirect naming another host never receives the client's token. Placed before the
    token policy."""

    def __init__(self, base_url: str, refused: type[Exception]):
        self.base_url = base_url
        self.refused = refused

    def on_request(self, request) -> None:
        from hdsctl.endpoints import same_origin

        url = request.http_request.url
        if not same_origin(url, self.base_url):
            raise self.refused(f"refusing to send a request to {_where(url)}: this client talks to "
                               f"{_where(self.base_url)} only, and its token must not reach another host")


class RequestCounter(SansIOHTTPPolicy):
    """Counts every request put on the wire (retries included), by method."""

    def __init__(self) -> None:
        self.by_method: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_request(self, request) -> None:
        with self._lock:
            self.by_method[request.http_request.method.upper()] += 1

    @property
    def total(self) -> int:
        return sum(self.by_method.values())

    @property
    def writes(self) -> int:
        return sum(n for method, n in self.by_method.items() if method in {"POST", "PATCH", "PUT", "DELETE"})
