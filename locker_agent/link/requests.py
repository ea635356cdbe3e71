"""The courier desk's request client: one ``req`` out, the matching signed ``res`` back.

:meth:`RequestClient.ask` is called from the kiosk's thread and blocks until the answer
arrives or its time is up. It never publishes itself: it hands the request to the
runtime's worker (the only thread that publishes) through ``send``, and the worker hands
every received ``res`` to :meth:`RequestClient.receive`. A reply is used only if, in
this order, it decodes as a signed ``res``, its key is trusted, its signature verifies
and it names this cabinet (the checks of :mod:`locker_agent.link.inbound`), it is not
past its ``expires_at`` on the server's clock as the cabinet knows it (``expired``) and
a request with its ``request_id`` is still waiting (``unmatched``). Anything else is
dropped and journaled as a ``res_rejected`` alarm through the runtime's
:class:`~locker_agent.link.refusals.RefusalRecorder` (bounded during a flood).

The link down, a publish that fails or no answer in time: :class:`ServerUnreachable`,
which the kiosk shows as "server unreachable" (registration on the spot needs the
server; a deposit of a reservation the cabinet holds does not).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from locker_agent.journal import Journal
from locker_agent.link.errors import ServerUnreachable
from locker_agent.link.inbound import Refused, authenticate
from locker_agent.link.refusals import RefusalRecorder
from locker_contract import encode, new_envelope, new_message_id, topics
from locker_contract.desk import Answer, Operation, ReplyMessage, Request

logger = logging.getLogger(__name__)

ALARM_KIND: Final = "res_rejected"
#: how long the kiosk waits for an answer before it says the server is unreachable
DEFAULT_TIMEOUT: Final = 8.0


@dataclass(slots=True)
class _Waiting:
    arrived: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None
    failure: str | None = None


#: ``send(request_id, topic, payload)``: queue a publish; the worker reports a failure
#: back through :meth:`RequestClient.failed`.
Send = Callable[[str, str, bytes], None]


class RequestClient:
    """Sends courier-desk requests and matches their signed replies."""

    def __init__(
        self,
        cabinet_id: str,
        trusted_keys: Mapping[str, Ed25519PublicKey],
        journal: Journal,
        refusals: RefusalRecorder,
        *,
        send: Send,
        link_up: Callable[[], bool],
        server_now: Callable[[], datetime],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._cabinet_id = cabinet_id
        self._trusted_keys = trusted_keys
        self._journal = journal
        self._refusals = refusals
        self._send = send
        self._link_up = link_up
        self._server_now = server_now
        self.timeout = timeout
        self._waiting: dict[str, _Waiting] = {}
        self._lock = threading.Lock()

    # -- the kiosk's side --------------------------------------------------------------

    def ask(self, operation: Operation) -> Answer:
        """Send ``operation`` and return the server's answer; ``ServerUnreachable`` if the
        link is down, the publish fails or no valid answer comes within ``timeout``."""
        if not self._link_up():
            raise ServerUnreachable("the link to the server is down")
        request_id = new_message_id()
        waiting = _Waiting()
        with self._lock:
            self._waiting[request_id] = waiting
        try:
            self._send(
                request_id, topics.req(self._cabinet_id), self._encode(request_id, operation)
            )
            return self._wait(waiting)
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    def _encode(self, request_id: str, operation: Operation) -> bytes:
        expires_at = self._server_now() + timedelta(seconds=self.timeout)
        body = Request(request_id=request_id, expires_at=expires_at, operation=operation)
        return encode(new_envelope(self._cabinet_id, body))

    def _wait(self, waiting: _Waiting) -> Answer:
        if not waiting.arrived.wait(self.timeout):
            raise ServerUnreachable(f"no answer from the server within {self.timeout:g} s")
        if waiting.answer is None:
            raise ServerUnreachable(waiting.failure or "the request could not be sent")
        return waiting.answer

    # -- the worker's side -------------------------------------------------------------

    def failed(self, request_id: str, reason: str) -> None:
        """The worker could not publish the request: end the wait now."""
        with self._lock:
            waiting = self._waiting.get(request_id)
        if waiting is not None:
            waiting.failure = f"the request could not be sent: {reason}"
            waiting.arrived.set()

    def receive(self, payload: bytes) -> None:
        """A message on ``res``: hand its answer to the request waiting for it, or refuse it."""
        if not payload:
            return
        verdict = authenticate(
            payload, ReplyMessage, cabinet_id=self._cabinet_id, trusted_keys=self._trusted_keys
        )
        if isinstance(verdict, Refused):
            self._refuse(verdict.reason.value, verdict.message_id)
            return
        reply = verdict.body
        if reply.expires_at <= self._server_now():
            self._refuse("expired", verdict.id)
            return
        with self._lock:
            waiting = self._waiting.get(reply.request_id)
        if waiting is None:
            self._refuse("unmatched", verdict.id)
            return
        waiting.answer = reply.answer
        waiting.arrived.set()

    def _refuse(self, reason: str, message_id: str | None) -> None:
        detail = f"{reason}: res {message_id or 'unidentified'}"
        with self._journal.transaction() as tx:
            journaled = self._refusals.record(tx, ALARM_KIND, reason, detail)
        level = logging.WARNING if journaled else logging.DEBUG
        logger.log(level, "res %s refused: %s", message_id or "unidentified", reason)
