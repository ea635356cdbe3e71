"""The request manager: the one owner of a lock-board bus.

One :class:`SerialLink` owns one serial port (a device path, a pty or any URL that
``serial.serial_for_url`` accepts) and one worker thread. Callers submit requests
built by a :mod:`firmware_protocol` codec; the worker sends them one at a time and
pairs each with its reply:

* the decoder is told what is expected *before* the write, and a reply is taken as
  the answer only if ``request.matches(reply)``;
* anything else that arrives (garbage, unsolicited or stale frames, our own echo) is
  logged (hex at :data:`TRACE`, below DEBUG) and counted, never taken as an answer;
* after a timeout or a bad frame the worker waits until the line has been quiet for
  ``settle_after_error`` and flushes; and for ``late_reply_horizon`` after a timeout, a
  frame that would answer the timed-out request is discarded as its late answer. So a
  late reply is never read as the answer to the next request;
* unlocks go ahead of queued polls (a priority queue);
* an unlock is **never** retried: a second pulse could open a door twice. A query
  may be retried once, which is harmless;
* when the port fails (adapter unplugged or reset, I/O errors) the link closes it,
  fails the request in flight and every queued one, and reopens the same path with a
  bounded backoff (``reopen_backoff_initial`` doubling up to ``reopen_backoff_max``).
  Until it is back every request is refused at once with
  :class:`~locker_agent.errors.PortUnavailable`: nothing is kept to be sent later, so
  an unlock asked for during the gap can never fire after it.

Serial errors are translated into :class:`~locker_agent.errors.TransportError` here,
where they enter our code.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

import serial

from firmware_protocol.base import (
    NEED_DATA,
    BoardProtocol,
    Garbage,
    Reply,
    ReplyDecoder,
    Request,
    RequestKind,
)
from locker_agent.errors import (
    BoardReplyError,
    BoardTimeout,
    ConfigError,
    LinkClosedError,
    PortUnavailable,
    TransportError,
)

logger = logging.getLogger(__name__)

#: Log level for raw bytes on the wire (below DEBUG, so DEBUG logs stay readable).
TRACE: Final = 5
logging.addLevelName(TRACE, "TRACE")

_UNLOCK_KINDS: Final = frozenset({RequestKind.UNLOCK, RequestKind.UNLOCK_ALL})


class Priority(enum.IntEnum):
    """Queue order: lower goes first."""

    STOP = -1
    UNLOCK = 0
    #: a read confirming an unlock just answered: behind unlocks, ahead of routine polls
    CONFIRM = 5
    QUERY = 10


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Timing and line options of one bus; defaults: the boards' timing (docs/protocols.md)."""

    baudrate: int
    unlock_timeout: float = 1.5
    query_timeout: float = 0.8
    #: silence that ends a variable-length frame (USB adapters burst with >5 ms gaps)
    quiet_gap: float = 0.025
    #: minimum silence between the end of one transaction and the next write
    transaction_gap: float = 0.005
    #: after a timeout or bad frame: the line must be quiet this long before we flush
    settle_after_error: float = 0.15
    #: give up waiting for quiet after this long (a chattering line) and flush anyway
    settle_limit: float = 1.0
    query_retries: int = 1
    #: after a request timed out, a matching frame arriving within this long is taken
    #: as its late answer and discarded, never as the answer to a later request
    late_reply_horizon: float = 1.0
    #: the adapter hands back what we transmit: discard those bytes after each write
    echo: bool = False
    #: after the port failed, the first attempt to reopen it waits this long; each failed
    #: attempt doubles the wait, up to ``reopen_backoff_max``
    reopen_backoff_initial: float = 0.5
    reopen_backoff_max: float = 10.0

    def __post_init__(self) -> None:
        if self.baudrate <= 0:
            raise ConfigError(f"baud rate must be positive, not {self.baudrate}")
        if min(self.unlock_timeout, self.query_timeout, self.quiet_gap) <= 0:
            raise ConfigError("timeouts and the quiet gap must be positive")
        if not 0 < self.reopen_backoff_initial <= self.reopen_backoff_max:
            raise ConfigError("the reopen backoff must be positive, its maximum not below it")
        if self.query_retries not in (0, 1):
            raise ConfigError("a query may be retried at most once")

    def timeout_for(self, kind: RequestKind) -> float:
        return self.unlock_timeout if kind in _UNLOCK_KINDS else self.query_timeout

    @property
    def read_poll(self) -> float:
        """How long one blocking read waits: fine enough to see a quiet gap."""
        return min(0.005, self.quiet_gap / 4)


@dataclass(frozen=True, slots=True)
class Exchange:
    """A request and the reply that answered it, with monotonic timestamps."""

    request: Request
    reply: Reply
    sent_at: float
    answered_at: float
    attempts: int

    @property
    def round_trip(self) -> float:
        return self.answered_at - self.sent_at


@dataclass(frozen=True, slots=True)
class LinkStats:
    """Counters since the link started (a snapshot)."""

    requests: int = 0
    answered: int = 0
    timeouts: int = 0
    bad_replies: int = 0
    retries: int = 0
    garbage: int = 0
    unexpected_frames: int = 0
    echoes_discarded: int = 0
    late_replies_discarded: int = 0
    flushed_bytes: int = 0


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    request: Request | None = field(compare=False)
    future: Future[Exchange] = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Port(Protocol):
    """What the link needs of a pyserial port (the stubs' SerialBase lacks some)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


class _EchoFilter:
    """Drops the copy of our own request that an echoing adapter hands back."""

    def __init__(self, sent: bytes) -> None:
        self._pending = sent

    def strip(self, data: bytes) -> tuple[bytes, int]:
        """Return ``data`` minus the echoed prefix, and how many echo bytes were dropped."""
        matched = 0
        while self._pending and matched < len(data) and data[matched] == self._pending[0]:
            self._pending = self._pending[1:]
            matched += 1
        if self._pending and matched < len(data):
            logger.info("expected %d more echo bytes but the line differs", len(self._pending))
            self._pending = b""
        return data[matched:], matched


def open_port(url: str, baudrate: int, read_timeout: float) -> Port:
    """Open ``url`` (device path, pty, ``socket://host:port``) exclusively, raw 8N1."""
    try:
        port = serial.serial_for_url(
            url, baudrate=baudrate, timeout=read_timeout, write_timeout=2.0, exclusive=True
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise TransportError(f"cannot open serial port {url!r}: {exc}") from exc
    return cast(Port, port)


@contextmanager
def _translated_io(url: str) -> Iterator[None]:
    try:
        yield
    except (serial.SerialException, OSError) as exc:
        raise TransportError(f"I/O error on {url!r}: {exc}") from exc


class SerialLink:
    """The single owner of one bus: a worker thread sending one request at a time."""

    def __init__(
        self,
        url: str,
        protocol: BoardProtocol,
        settings: LinkSettings,
        port_factory: Callable[[str, int, float], Port] = open_port,
    ) -> None:
        self.url = url
        self.protocol = protocol
        self.settings = settings
        self._port_factory = port_factory
        self._port: Port | None = None
        self._decoder: ReplyDecoder = protocol.reply_decoder()
        self._jobs: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._stopped = False
        #: held while a job is queued and while the port is declared lost, so no job
        #: can slip into the queue between "port lost" and "queue failed"
        self._submit_lock = threading.Lock()
        #: why the port is unavailable ("" while it is open)
        self._lost = ""
        self._stats: dict[str, int] = dict.fromkeys(LinkStats.__slots__, 0)
        self._stats_lock = threading.Lock()
        self._last_activity = 0.0
        self._rx_since_quiet = False
        #: request bytes → (request, until when a matching frame is its late answer)
        self._owed: dict[bytes, tuple[Request, float]] = {}
        self._late_answer_seen = False

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> SerialLink:
        if self._thread is not None:
            raise RuntimeError("link already started")
        self._port = self._open()
        self._thread = threading.Thread(target=self._serve, name=f"serial-link {self.url}")
        self._thread.daemon = True
        self._thread.start()
        logger.info(
            "serial link on %s started (%s, %d baud)",
            self.url,
            self.protocol.name,
            self.settings.baudrate,
        )
        return self

    def stop(self) -> None:
        """Finish the request in flight, fail the queued ones, close the port."""
        if self._thread is None or self._stopped:
            return
        self._stopped = True
        self._closed.set()
        self._jobs.put(_Job(Priority.STOP, next(self._seq), None, Future()))
        self._thread.join(timeout=5.0)
        self._fail_queued()  # anything submitted while the worker was finishing
        if self._port is not None:
            with _translated_io(self.url):
                self._port.close()
        logger.info("serial link on %s stopped", self.url)

    @property
    def available(self) -> bool:
        """The port is open (False while it is being reopened after a failure)."""
        return self._thread is not None and not self._closed.is_set() and not self._lost

    def __enter__(self) -> SerialLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public API --------------------------------------------------------------

    def submit(self, request: Request, priority: Priority | None = None) -> Future[Exchange]:
        """Queue ``request``; unlocks go ahead of queries unless ``priority`` says otherwise."""
        future: Future[Exchange] = Future()
        if priority is None:
            priority = Priority.UNLOCK if request.kind in _UNLOCK_KINDS else Priority.QUERY
        with self._submit_lock:
            if self._closed.is_set() or self._thread is None:
                future.set_exception(LinkClosedError(f"serial link on {self.url} is not running"))
            elif self._lost:
                future.set_exception(self._unavailable())
            else:
                self._jobs.put(_Job(priority, next(self._seq), request, future))
        return future

    def _unavailable(self) -> PortUnavailable:
        return PortUnavailable(f"serial port {self.url!r} unavailable ({self._lost}); not sent")

    def request(self, request: Request, priority: Priority | None = None) -> Exchange:
        """Send ``request`` and wait for its reply (raises BoardTimeout/BoardReplyError)."""
        return self.submit(request, priority).result()

    @property
    def stats(self) -> LinkStats:
        with self._stats_lock:
            return LinkStats(**self._stats)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._stats_lock:
            self._stats[name] += amount

    # -- worker ------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while True:
                try:
                    if not self._serve_one():
                        return
                except TransportError as exc:
                    self._lose_port(exc)
                    if not self._reopen():
                        return
        finally:
            self._fail_queued()

    def _serve_one(self) -> bool:
        """Handle one job (or idle input); False on the stop marker."""
        job = self._next_job()
        if job is None:
            self._absorb_idle_input()
        elif job.request is None:  # the stop marker
            return False
        elif job.attempt > 1 or job.future.set_running_or_notify_cancel():
            self._run(job, job.request)
        return True

    # -- losing and reopening the port ---------------------------------------------

    def _open(self) -> Port:
        return self._port_factory(self.url, self.settings.baudrate, self.settings.read_poll)

    def _lose_port(self, exc: TransportError) -> None:
        """Close the failed port; refuse everything queued and everything submitted
        until it is back (a queued unlock must never fire after the gap)."""
        logger.warning("serial port %s lost: %s; reopening it", self.url, exc)
        with self._submit_lock:
            self._lost = str(exc) or type(exc).__name__
            port, self._port = self._port, None
            self._fail_queued(self._unavailable)
        if port is not None:
            with contextlib.suppress(TransportError, serial.SerialException, OSError):
                port.close()

    def _reopen(self) -> bool:
        """Try to open the port again, backing off; False when the link is stopped first."""
        delay = self.settings.reopen_backoff_initial
        while not self._closed.wait(delay):
            try:
                port = self._open()
            except TransportError as exc:
                logger.debug("serial port %s still unavailable: %s", self.url, exc)
                delay = min(2 * delay, self.settings.reopen_backoff_max)
                continue
            self._start_fresh_line(port)
            logger.warning("serial port %s reopened", self.url)
            return True
        return False

    def _start_fresh_line(self, port: Port) -> None:
        """A new port knows nothing of the old line: no partial frame, no owed answer."""
        self._decoder = self.protocol.reply_decoder()
        self._owed.clear()
        self._rx_since_quiet = False
        self._last_activity = time.monotonic()
        with self._submit_lock:
            self._port = port
            self._lost = ""

    def _next_job(self) -> _Job | None:
        try:
            return self._jobs.get(timeout=0.02)
        except queue.Empty:
            return None

    def _run(self, job: _Job, request: Request) -> None:
        try:
            self._run_once(job, request)
        except TransportError as exc:  # also from settling after a timeout
            if not job.future.done():
                job.future.set_exception(exc)
            raise

    def _run_once(self, job: _Job, request: Request) -> None:
        if job.attempt == 1:
            self._count("requests")
        try:
            exchange = self._exchange_once(request, job.attempt)
        except (BoardTimeout, BoardReplyError) as exc:
            self._count("timeouts" if isinstance(exc, BoardTimeout) else "bad_replies")
            if isinstance(exc, BoardTimeout) and not self._late_answer_seen:
                # (if a frame was just discarded as a late answer, it may have been this
                # request's answer: owing again would discard every answer from now on)
                self._remember_owed(request)
            self._settle()
            if not self._requeued_for_retry(job, request, exc):
                job.future.set_exception(exc)
        except TransportError as exc:
            job.future.set_exception(exc)
            raise
        except Exception as exc:  # a codec bug must fail the caller, not the worker
            logger.exception("request %r failed unexpectedly", request)
            job.future.set_exception(exc)
        else:
            job.future.set_result(exchange)

    def _requeued_for_retry(self, job: _Job, request: Request, exc: Exception) -> bool:
        """Queries get one more try, queued in their old place (unlocks still go first).
        An unlock is never retried: a second pulse could open the door twice."""
        if request.kind in _UNLOCK_KINDS or job.attempt > self.settings.query_retries:
            return False
        self._count("retries")
        logger.info("will retry %s to board %d after: %s", request.kind.value, request.board, exc)
        job.attempt += 1
        self._jobs.put(job)
        return True

    def _fail_queued(self, error: Callable[[], TransportError] | None = None) -> None:
        stopped: list[_Job] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job.request is None:
                stopped.append(job)  # the stop marker stays for the worker
            elif job.attempt > 1 or job.future.set_running_or_notify_cancel():
                exc = error() if error else LinkClosedError(f"serial link on {self.url} stopped")
                job.future.set_exception(exc)
        for marker in stopped:
            self._jobs.put(marker)

    def _exchange_once(self, request: Request, attempt: int) -> Exchange:
        port = self._require_port()
        self._prepare_line()
        self._late_answer_seen = False
        self._decoder.expect(request)
        sent_at = self._write(port, request.to_bytes())
        echo = _EchoFilter(request.to_bytes()) if self.settings.echo else None
        deadline = sent_at + self.settings.timeout_for(request.kind)
        saw_garbage = False
        while time.monotonic() < deadline:
            self._receive(port, echo)
            reply, garbage = self._pull_frames(request)
            saw_garbage = saw_garbage or garbage
            if reply is not None:
                self._decoder.expect(None)
                self._rx_since_quiet = False
                self._count("answered")
                return Exchange(request, reply, sent_at, time.monotonic(), attempt)
        self._decoder.expect(None)
        return self._no_answer(request, saw_garbage)

    def _no_answer(self, request: Request, saw_garbage: bool) -> Exchange:
        what = f"{request.kind.value} to board {request.board}"
        if saw_garbage:
            raise BoardReplyError(
                f"invalid reply to {what}", board=request.board, kind=request.kind.value
            )
        raise BoardTimeout(
            f"no reply to {what} within {self.settings.timeout_for(request.kind)} s",
            board=request.board,
            kind=request.kind.value,
        )

    # -- line handling -----------------------------------------------------------

    def _require_port(self) -> Port:
        if self._port is None:
            raise LinkClosedError("serial link is not started")
        return self._port

    def _write(self, port: Port, data: bytes) -> float:
        logger.log(TRACE, "tx %s", data.hex(" "))
        with _translated_io(self.url):
            port.write(data)
            port.flush()
        self._last_activity = time.monotonic()
        return self._last_activity

    def _receive(self, port: Port, echo: _EchoFilter | None) -> None:
        """Read what is there (waiting at most one read poll); end frames on a quiet gap."""
        with _translated_io(self.url):
            data = port.read(port.in_waiting or 1)
        now = time.monotonic()
        if data:
            logger.log(TRACE, "rx %s", data.hex(" "))
            self._last_activity = now
            self._rx_since_quiet = True
            if echo is not None:
                data, dropped = echo.strip(data)
                self._count("echoes_discarded", dropped)
            self._decoder.feed(data)
        elif self._rx_since_quiet and now - self._last_activity >= self.settings.quiet_gap:
            self._rx_since_quiet = False
            self._decoder.line_quiet()

    def _pull_frames(self, request: Request | None) -> tuple[Reply | None, bool]:
        """Drain decoded frames; return the answer to ``request`` (if any) and whether
        garbage was seen. Everything else is logged and counted."""
        saw_garbage = False
        while (frame := self._decoder.next_frame()) is not NEED_DATA:
            if isinstance(frame, Garbage):
                saw_garbage = True
                self._note_garbage(frame)
            elif self._is_late_answer(frame):
                continue
            elif request is not None and self._answers(request, frame):
                assert isinstance(frame, Reply)
                return frame, saw_garbage
            else:
                self._note_unexpected(frame, request)
        return None, saw_garbage

    def _remember_owed(self, request: Request) -> None:
        """The board may still answer ``request``: that answer must not serve another."""
        expires = time.monotonic() + self.settings.late_reply_horizon
        self._owed[request.to_bytes()] = (request, expires)

    def _is_late_answer(self, frame: object) -> bool:
        if not self._owed or not isinstance(frame, Reply):
            return False
        now = time.monotonic()
        for key, (owed, expires) in list(self._owed.items()):
            if expires < now:
                del self._owed[key]
            elif owed.matches(frame):
                del self._owed[key]
                self._late_answer_seen = True
                self._count("late_replies_discarded")
                logger.info(
                    "discarded a late answer to an earlier %s to board %d",
                    owed.kind.value,
                    owed.board,
                )
                return True
        return False

    def _answers(self, request: Request, frame: object) -> bool:
        if not isinstance(frame, Reply) or not request.matches(frame):
            return False
        # An echoing adapter that is not configured as such hands our own query back;
        # it can look like a reply, but the board never answers a query with its copy.
        if request.kind not in _UNLOCK_KINDS and frame.to_bytes() == request.to_bytes():
            self._count("echoes_discarded", len(frame.to_bytes()))
            logger.info("discarded a copy of our own %s (adapter echo?)", request.kind.value)
            return False
        return True

    def _note_garbage(self, garbage: Garbage) -> None:
        self._count("garbage")
        logger.info("discarded %d garbage bytes: %s", len(garbage.data), garbage.reason)
        logger.log(TRACE, "garbage %s", garbage.data.hex(" "))

    def _note_unexpected(self, frame: Any, request: Request | None) -> None:
        self._count("unexpected_frames")
        waiting = f"while waiting for {request.kind.value}" if request is not None else "while idle"
        logger.info(
            "ignored an unexpected frame from board %s %s", getattr(frame, "board", "?"), waiting
        )
        logger.log(TRACE, "unexpected %s", frame.to_bytes().hex(" "))

    def _absorb_idle_input(self) -> None:
        """Between requests: read, log and count anything the boards send unasked."""
        port = self._require_port()
        with _translated_io(self.url):
            waiting = port.in_waiting
        if waiting or self._rx_since_quiet:
            self._decoder.expect(None)
            self._receive(port, None)
            self._pull_frames(None)

    def _prepare_line(self) -> None:
        """Keep the inter-transaction gap; if bytes are arriving, let them finish first."""
        port = self._require_port()
        with _translated_io(self.url):
            busy = port.in_waiting > 0
        if busy or self._decoder.buffered:
            self._settle(self.settings.quiet_gap)  # let the frame on the line finish
        pause = self._last_activity + self.settings.transaction_gap - time.monotonic()
        if pause > 0:
            time.sleep(pause)

    def _settle(self, quiet_for: float | None = None) -> None:
        """Wait until the line is quiet for ``quiet_for`` (default ``settle_after_error``),
        logging what arrives, then flush everything."""
        quiet_for = self.settings.settle_after_error if quiet_for is None else quiet_for
        port = self._require_port()
        self._decoder.expect(None)
        started = last_rx = time.monotonic()
        flushed = 0
        while True:
            now = time.monotonic()
            if now - last_rx >= quiet_for:
                break
            if now - started >= self.settings.settle_limit:
                logger.warning("line on %s never went quiet; flushing anyway", self.url)
                break
            with _translated_io(self.url):
                data = port.read(port.in_waiting or 1)
            if data:
                logger.log(TRACE, "flush %s", data.hex(" "))
                self._decoder.feed(data)
                flushed += len(data)
                last_rx = time.monotonic()
        self._decoder.line_quiet()
        self._pull_frames(None)
        with _translated_io(self.url):
            port.reset_input_buffer()
        self._rx_since_quiet = False
        self._last_activity = time.monotonic()
        self._count("flushed_bytes", flushed)
