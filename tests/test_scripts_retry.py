"""scripts/_retry.py: settings, backoff, retry bounds and the deadline around a whole HTTP exchange.

The scripts that use it are run for real in their own tests; here the pieces, against
fakes on 127.0.0.1.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fakes import FakeServer, Request, TrickleServer

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.append(str(SCRIPTS))

import _retry  # noqa: E402
from _common import StepError  # noqa: E402


@pytest.mark.parametrize(("raw", "expected"), [("", 5), ("  ", 5), ("3", 3), ("20", 20)])
def test_a_whole_number_setting(raw, expected):
    assert _retry.number({"N": raw}, "N", 5, 1, 20, integer=True) == expected


@pytest.mark.parametrize("raw", ["0", "21", "1.5", "-1", "+2", "1e1", "nan", "inf", "two", "0x10", "1_0"])
def test_a_bad_whole_number_names_the_setting_and_its_range(raw):
    with pytest.raises(StepError, match=r"^N must be a whole number from 1 to 20, got"):
        _retry.number({"N": raw}, "N", 5, 1, 20, integer=True)


@pytest.mark.parametrize("raw", ["0", "-0.5", "nan", "1e-9", ".5", "5."])
def test_a_bad_number(raw):
    with pytest.raises(StepError, match=r"^POLL_SECONDS must be a number from 0.05 to 600"):
        _retry.number({"POLL_SECONDS": raw}, "POLL_SECONDS", 5, 0.05, 600)


def test_backoff_grows_with_jitter_and_stays_under_its_cap():
    backoff = _retry.Backoff(attempts=10, base=1, cap=8)
    for retry in range(1, 10):
        step = min(8, 2 ** (retry - 1))
        pauses = [backoff.pause(retry) for _ in range(50)]
        assert all(step / 2 <= p <= step for p in pauses)
        assert len(set(pauses)) > 1, "jittered"
    assert backoff.pause(1, at_least=5) == 5, "Retry-After is honoured"


def test_retry_tries_transient_failures_again_up_to_the_attempts():
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _retry.Unreachable("no answer")
        return "ok"

    quick = _retry.Backoff(attempts=3, base=0.001)
    assert _retry.retry(flaky, what="x", backoff=quick, deadline=_retry.Deadline(10),
                        transient=_retry.transient_http, log=lambda _: None) == "ok"
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(_retry.Unreachable):
        _retry.retry(flaky, what="x", backoff=_retry.Backoff(attempts=2, base=0.001), deadline=_retry.Deadline(10),
                     transient=_retry.transient_http, log=lambda _: None)
    assert len(calls) == 2


def test_retry_never_retries_a_refusal_nor_past_the_deadline():
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise StepError("HTTP 403")

    with pytest.raises(StepError):
        _retry.retry(refused, what="x", backoff=_retry.Backoff(5, 0.001), deadline=_retry.Deadline(10),
                     transient=_retry.transient_http, log=lambda _: None)
    assert len(calls) == 1

    def down() -> None:
        calls.append(1)
        raise _retry.Unreachable("no answer")

    calls.clear()
    started = time.monotonic()
    with pytest.raises(_retry.Unreachable):
        _retry.retry(down, what="x", backoff=_retry.Backoff(100, 0.2, cap=0.2), deadline=_retry.Deadline(0.5),
                     transient=_retry.transient_http, log=lambda _: None)
    assert time.monotonic() - started < 1
    assert 1 < len(calls) < 5


class Redirect(FakeServer):
    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__()

    def answer(self, request: Request):  # type: ignore[override]
        return 302, b"", "text/plain", {"Location": self.target + "/steal"}


class Recorder(FakeServer):
    def __init__(self) -> None:
        self.requests: list[Request] = []
        super().__init__()

    def answer(self, request: Request):  # type: ignore[override]
        self.requests.append(request)
        return 200, {}


def test_fetch_does_not_follow_a_redirect_with_the_authorization_header():
    other = Recorder()
    redirect = Redirect(other.url.replace("127.0.0.1", "localhost"))
    try:
        request = urllib.request.Request(redirect.url + "/api", headers={"Authorization": "Bearer secret"})
        response = _retry.fetch(request, _retry.Deadline(10))
    finally:
        redirect.close()
        other.close()
    assert response.status == 302
    assert other.requests == []


def test_fetch_ends_a_trickling_answer_at_its_budget():
    server = TrickleServer(interval=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(_retry.DeadlineExceeded, match=r"no complete answer within 1\.0s"):
            _retry.fetch(urllib.request.Request(server.url + "/x"), _retry.Deadline(60), timeout=1)
        assert time.monotonic() - started < 2
        with pytest.raises(_retry.DeadlineExceeded, match="out of time before GET /x"):
            _retry.fetch(urllib.request.Request(server.url + "/x"), _retry.Deadline(-1))
    finally:
        server.close()


def test_fetch_reports_no_answer_as_unreachable():
    server = Recorder()
    url = server.url
    server.close()
    with pytest.raises(_retry.Unreachable, match=r"^GET /x: URLError"):
        _retry.fetch(urllib.request.Request(url + "/x"), _retry.Deadline(5))


@pytest.mark.parametrize(("stderr", "transient"), [
    ("fatal: unable to access 'https://github.com/a/b.git/': Could not resolve host: github.com", True),
    ("error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502", True),
    ("kex_exchange_identification: read: Connection reset by peer\nfatal: Could not read from remote", True),
    ("fatal: early EOF", True),
    ("git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository.", False),
    ("fatal: remote error: upload-pack: not our ref 1111", False),
    ("remote: Repository not found.\nfatal: repository 'https://github.com/a/b.git/' not found", False),
])
def test_git_transient(stderr, transient):
    assert _retry.git_transient(stderr) is transient
