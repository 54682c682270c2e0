"""Retries, backoff, deadlines and the numeric settings of the step scripts, in one place.

Not a step: imported by the scripts beside it. No dependency beyond the standard library.

Owns:
- ``number``: one numeric setting from the environment (MAX_ATTEMPTS, BACKOFF_SECONDS,
  TIMEOUT_SECONDS, POLL_SECONDS, DEPTH ...), refused with a StepError naming it and
  what is allowed when it is not a plain decimal number inside its range.
- ``Deadline``: the time a step has left; ``budget`` gives the next call its share.
- ``Backoff`` and ``retry``: exponential backoff with jitter, bounded by attempts and by
  the deadline; a server's Retry-After is honoured up to the same bounds.
- ``fetch``: one HTTP request whose *whole* exchange (connect, headers, body) ends by
  its budget. A socket timeout alone bounds each read, so a server that trickles a
  byte every few seconds would hold a step for ever; here a timer shuts the socket
  down when the budget is spent. Redirects are not followed: none of the APIs the
  scripts call redirects, and urllib would resend the Authorization header to
  wherever a redirect points.
- ``git_transient``: whether a failed git fetch/clone/push is worth another try.

Does not own: what a step does between tries (promote re-fetches, supersede lists
again): the callers say that.
Hand-written rather than a library (tenacity, urllib3's Retry): the scripts run with
the standard library plus three pinned packages, and the deadline around a whole
urllib exchange is not something those offer.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import TypeVar

from _common import StepError

T = TypeVar("T")
DECIMAL = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,6})?$")


def number(environ: Mapping[str, str], name: str, default: float, minimum: float, maximum: float,
           *, integer: bool = False) -> float:
    """The setting `name` (default when unset or empty), or StepError naming it and its range.

    Only plain decimals: no sign, exponent, nan or inf; an integer setting takes no fraction.
    """
    raw = environ.get(name, "").strip()
    kind = "a whole number" if integer else "a number"
    if not raw:
        return default
    if not DECIMAL.fullmatch(raw) or (integer and "." in raw) or not minimum <= float(raw) <= maximum:
        raise StepError(f"{name} must be {kind} from {minimum:g} to {maximum:g}, got {raw!r}")
    return int(raw) if integer else float(raw)


class DeadlineExceeded(StepError):
    """The step's time ran out (before or during a call)."""


class Deadline:
    """A point in monotonic time; None means no limit beyond each call's own."""

    def __init__(self, seconds: float | None) -> None:
        self.end = math.inf if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def budget(self, cap: float, what: str) -> float:
        """The time the next call may take: `cap`, or less when the deadline is nearer."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded(f"out of time before {what}")
        return min(cap, left)

    def sleep(self, seconds: float, what: str) -> None:
        """Pause, or DeadlineExceeded when the pause would outlast the deadline."""
        if seconds >= self.remaining():
            raise DeadlineExceeded(f"out of time {what}")
        time.sleep(seconds)


@dataclass(frozen=True)
class Backoff:
    """Pause n (1-based) is base * 2**(n-1), capped, with +-50 % jitter (concurrent retriers spread out)."""

    attempts: int = 5
    base: float = 1.0
    cap: float = 30.0

    def pause(self, retry: int, at_least: float = 0.0) -> float:
        step = min(self.cap, self.base * 2 ** (retry - 1))
        return max(min(at_least, self.cap), step * random.uniform(0.5, 1.0))


def retry(call: Callable[[], T], *, what: str, backoff: Backoff, deadline: Deadline,
          transient: Callable[[Exception], float | None], log: Callable[[str], None]) -> T:
    """`call()`, tried again after a pause while `transient(error)` says so (a number: the
    least pause, e.g. Retry-After; None: not transient), at most `backoff.attempts` times
    and never past `deadline`; a server asking for a longer pause than `backoff.cap` is not
    asked again. The last error is raised as it is."""
    for attempt in range(1, backoff.attempts + 1):
        try:
            return call()
        except Exception as error:
            hint = transient(error)
            if hint is None or attempt == backoff.attempts:
                raise
            if hint > backoff.cap:
                log(f"{what}: {error}; the server asks for a {hint:g}s pause, longer than this step waits")
                raise
            pause = backoff.pause(attempt, hint)
            if pause >= deadline.remaining():
                raise
            log(f"{what}: {error}; trying again in {pause:.1f}s ({attempt + 1} of {backoff.attempts})")
            time.sleep(pause)
    raise AssertionError("retry: attempts must be at least 1")


# ------------------------------------------------------------------ HTTP


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes

    def retry_after(self) -> float:
        """Retry-After in seconds (the delay form; an HTTP date counts as 1 s), 0 without one."""
        value = (self.headers.get("Retry-After") or "").strip()
        return float(value) if value.isdigit() else (1.0 if value else 0.0)


class Unreachable(StepError):
    """No HTTP answer: connection refused or reset, DNS, TLS, a broken answer."""


class HTTPStatusError(StepError):
    """An HTTP answer the caller does not accept; `response` is the answer."""

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response


def transient_http(error: Exception) -> float | None:
    """For `retry`: no answer, 429 (its Retry-After) or a 5xx; the deadline itself is final."""
    if isinstance(error, Unreachable):
        return 0.0
    if isinstance(error, HTTPStatusError):
        status = error.response.status
        if status == 429 or status >= 500:
            return error.response.retry_after()
    return None


def fetch_with_retries(request: urllib.request.Request, *, what: str, backoff: Backoff, deadline: Deadline,
                       log: Callable[[str], None], timeout: float = 30.0, context: object = None) -> Response:
    """`fetch`, tried again on no answer, 429 (after its Retry-After) or a 5xx within `backoff` and
    `deadline`. The last answer is returned whatever its status; no answer at all raises."""

    def once() -> Response:
        response = fetch(request, deadline, timeout=timeout, context=context)
        if response.status == 429 or response.status >= 500:
            raise HTTPStatusError(f"HTTP {response.status}", response)
        return response

    try:
        return retry(once, what=what, backoff=backoff, deadline=deadline, transient=transient_http, log=log)
    except HTTPStatusError as error:
        return error.response


class _Watch:
    """The sockets of one exchange; `expire` shuts them down, which wakes a blocked read."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.expired = False

    def connect(self, *args: object, **kwargs: object) -> socket.socket:
        sock = socket.create_connection(*args, **kwargs)  # type: ignore[arg-type]
        with self.lock:
            # A duplicate descriptor: TLS wraps (and detaches) the original; shutdown acts on
            # the connection behind both.
            self.sockets.append(sock.dup())
            if self.expired:
                self._shutdown()
        return sock

    def _shutdown(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            self._shutdown()

    def close(self) -> None:
        with self.lock:
            for sock in self.sockets:
                sock.close()


def _watched(base: type[http.client.HTTPConnection], watch: _Watch) -> type[http.client.HTTPConnection]:
    class Connection(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = watch.connect

    return Connection


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _opener(watch: _Watch, context: object) -> urllib.request.OpenerDirector:
    http_connection, https_connection = _watched(http.client.HTTPConnection, watch), \
        _watched(http.client.HTTPSConnection, watch)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(http_connection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(https_connection, req, context=context)

    return urllib.request.build_opener(HTTPHandler(), HTTPSHandler(), _NoRedirect())


@contextlib.contextmanager
def _exchange(request: urllib.request.Request, what: str, budget: float, read_timeout: float,
              context: object) -> Iterator[http.client.HTTPResponse | urllib.error.HTTPError]:
    """`request` answered: the answer, or urllib's HTTPError for an error status (readable too).

    The connection is shut down once `budget` seconds have passed, which wakes a blocked
    read; then, or when the answer was cut short by it, DeadlineExceeded. No answer is
    Unreachable (its reason, never the URL's query or a header).
    """
    watch = _Watch()
    timer = threading.Timer(budget, watch.expire)
    timer.daemon = True
    timer.start()
    try:
        try:
            answer: http.client.HTTPResponse | urllib.error.HTTPError
            try:
                answer = _opener(watch, context).open(request, timeout=read_timeout)
            except urllib.error.HTTPError as error:
                answer = error
            with answer:
                yield answer
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            if watch.expired:
                raise DeadlineExceeded(f"{what}: no complete answer within {budget:.1f}s") from None
            reason = getattr(error, "reason", None) or error
            raise Unreachable(f"{what}: {type(error).__name__}: {reason}".rstrip(": ")) from None
        if watch.expired:  # the answer may be cut short
            raise DeadlineExceeded(f"{what}: no complete answer within {budget:.1f}s")
    finally:
        timer.cancel()
        watch.close()


def _what(request: urllib.request.Request) -> str:
    return f"{request.get_method()} {urllib.parse.urlsplit(request.full_url).path}"


def fetch(request: urllib.request.Request, deadline: Deadline, *, timeout: float = 30.0,
          context: object = None) -> Response:
    """Send `request` and read the whole answer within min(timeout, what `deadline` leaves).

    Any HTTP status is a Response; no answer is Unreachable (its reason, never the URL's
    query or a header); running out of time is DeadlineExceeded.
    """
    what = _what(request)
    budget = deadline.budget(timeout, what)
    with _exchange(request, what, budget, budget, context) as answer:
        status = answer.code if isinstance(answer, urllib.error.HTTPError) else answer.status
        response = Response(status, answer.headers, answer.read())
    return response


@contextlib.contextmanager
def stream(request: urllib.request.Request, deadline: Deadline, *, timeout: float = 60.0,
           context: object = None) -> Iterator[http.client.HTTPResponse | urllib.error.HTTPError]:
    """The open answer to `request`, to be read in pieces, all of it before `deadline`.

    `timeout` bounds each read; the deadline bounds the whole exchange (a server sending a
    byte a second passes every per-read timeout): when it passes, the connection is shut
    down and DeadlineExceeded raised. An HTTP error status is HTTPStatusError; no answer is
    Unreachable (its reason, never the URL's query).
    """
    what = _what(request)
    budget = deadline.budget(math.inf, what)
    with _exchange(request, what, budget, min(timeout, budget), context) as answer:
        if isinstance(answer, urllib.error.HTTPError):
            raise HTTPStatusError(f"{what}: HTTP {answer.code}", Response(answer.code, answer.headers, b""))
        yield answer


# ------------------------------------------------------------------ git

GIT_TRANSIENT = re.compile(
    r"connection (?:reset|refused|closed|timed out)|timed out|could not resolve host|temporary failure"
    r"|early eof|the remote end hung up unexpectedly|rpc failed|returned error: (?:429|5[0-9][0-9])"
    r"|kex_exchange_identification|broken pipe|operation too slow|ssl_read|gnutls_handshake"
    r"|internal server error|service unavailable|bad gateway",
    re.IGNORECASE,
)


def git_transient(stderr: str) -> bool:
    """A network or server hiccup (worth another try), not a refusal (auth, missing ref, hook)."""
    return bool(GIT_TRANSIENT.search(stderr)) and "permission denied" not in stderr.lower()
