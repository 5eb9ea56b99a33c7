"""Ships the outbox to the bot: POST /v1/events with the agent token, and the heartbeat.

Rows leave the outbox only once the bot answered 2xx, so delivery is at-least-once and the bot's
idempotent ids (`boot_id:seq`) make it exactly-once. Failures back off exponentially with full
jitter, capped, so a fleet of agents does not hammer a bot that just came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable

import aiohttp

from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.outbox import Outbox, Queued
from kernbot.bearer import authorization
from kernbot.core.wire import MAX_BATCH, EventBatch, Heartbeat, fit_to_wire
from kernbot.logsafe import logsafe

log = logging.getLogger(__name__)

RETRYABLE_4XX = {401, 403, 404, 408, 409, 425, 429}
MAX_POST_BYTES = 512 << 10
"""Event JSON per POST at most (a single larger event goes alone). `MAX_BATCH` events of an OOM
report are ~7 MB: past the bot's `max_body_bytes` (4 MiB) and aiohttp's default 1 MiB, so after
an outage every batch was refused (413) and then sent one event per POST."""


def by_size(items: list[Queued], limit: int) -> list[list[Queued]]:
    """`items` cut, in order, into runs whose JSON adds up to at most `limit` bytes of UTF-8
    (one longer event alone)."""
    bodies: list[list[Queued]] = []
    size = 0
    for q in items:
        text = q.text
        n = len(text) if text.isascii() else len(text.encode())
        if bodies and size + n <= limit:
            bodies[-1].append(q)
            size += n
        else:
            bodies.append([q])
            size = n
    return bodies


_JSON = {"Content-Type": "application/json"}


def _wants_upgrade(answer: bytes) -> bool:
    """The bot refused our wire major (its 422 body carries `"upgrade": true`)."""
    try:
        body = json.loads(answer)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("upgrade") is True


class Shipper:
    def __init__(
        self,
        outbox: Outbox,
        *,
        bot_url: str | None,
        token: str | None,
        host: str,
        metrics: AgentMetrics,
        timeout_s: float = 10.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.outbox = outbox
        self.bot_url = bot_url.rstrip("/") if bot_url else None
        self.token = token
        self.host = host
        self.metrics = metrics
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._rand = rand
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._head: str | None = None
        self.failures = 0
        self.last_error: str | None = None

    def _headers(self) -> dict[str, str]:
        return authorization(self.token) if self.token else {}

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self._headers())
        return self._session

    def wake(self) -> None:
        self._wake.set()

    def backoff(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**failures)], at least 50 ms."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * float(2 ** min(failures, 30)))
        return max(0.05, ceiling * float(self._rand()))

    def _body(self, items: list[Queued]) -> bytes:
        """The `EventBatch` JSON with each queued event's stored text spliced in as it is: the
        events were encoded once, by the pipeline (kernbot.agent.stored); decoding, validating
        and encoding them again for every POST cost a tenth of the agent's CPU in an OOM loop.
        The bot validates what it receives; an event it refuses is found by posting one at a
        time (`ship_once`)."""
        if self._head is None:
            head = EventBatch(host=self.host, events=[]).model_dump_json(exclude={"events"})
            self._head = head[:-1] + ',"events":['
        return "".join((self._head, ",".join(q.text for q in items), "]}")).encode()

    async def _post(self, items: list[Queued]) -> str:
        """'ok', 'retry' or 'reject' for one batch."""
        assert self.bot_url is not None
        try:
            async with self._sess().post(
                f"{self.bot_url}/v1/events", data=self._body(items), headers=_JSON
            ) as resp:
                answer = await resp.read()
                if resp.status < 300:
                    return "ok"
                self.last_error = f"bot answered HTTP {resp.status}"
                if _wants_upgrade(answer):
                    # The bot is older than this agent: keep the events until it is upgraded.
                    self.last_error = f"bot is older than this agent: {answer[:300]!r}"
                    return "retry"
                if 400 <= resp.status < 500 and resp.status not in RETRYABLE_4XX:
                    self.last_error += f": {answer[:300]!r}"
                    return "reject"
                return "retry"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return "retry"

    async def _post_fitted(self, q: Queued) -> str:
        """Post `q` again with what the wire refuses made to fit (`fit_to_wire`), once; the
        verdict, or 'reject' when nothing could be made to fit. A kill whose text a garbled
        line made too long is delivered cut, not dropped."""
        refused = self.last_error
        fitted = fit_to_wire(q.text)
        if fitted is None:
            return "reject"
        verdict = await self._post([Queued(q.row, q.event_id, q.revision, fitted)])
        if verdict == "ok":
            log.warning(
                "bot refused event %s as it was (%s); delivered cut to fit", q.event_id, refused
            )
        return verdict

    async def ship_once(self) -> bool:
        """Send everything queued; False when the bot could not take it (retry later)."""
        if self.bot_url is None:
            return True
        while items := self.outbox.peek(MAX_BATCH):
            for body in by_size(items, MAX_POST_BYTES):
                if not await self._ship(body):
                    return self._failed()
        return True

    async def _ship(self, items: list[Queued]) -> bool:
        """Post one body's events; False when the bot could not take them (retry later)."""
        verdict = await self._post(items)
        if verdict == "reject" and len(items) > 1:
            for q in items:  # find the bad one(s); the rest go through
                one = await self._post([q])
                if one == "reject":
                    one = await self._post_fitted(q)
                if one == "retry":
                    return False
                if one == "ok":
                    self.outbox.ack([q])
                    self.metrics.events_shipped.inc()
                else:
                    self._dropped([q])
            self.failures = 0
            self.last_error = None
            return True
        if verdict == "reject":
            verdict = await self._post_fitted(items[0])
        if verdict == "retry":
            return False
        if verdict == "reject":
            self._dropped(items)
        else:
            self.outbox.ack(items)
            self.metrics.events_shipped.inc(len(items))
        self.failures = 0
        self.last_error = None
        return True

    def _dropped(self, items: list[Queued]) -> None:
        """The bot refused these for good (nothing could be made to fit): out of the outbox,
        counted (`rejected`), and each named in the log: an alert that never comes is not
        silent here."""
        for q in items:
            log.error(
                "bot rejected event %s (revision %d): %s; dropped",
                logsafe(q.event_id), q.revision, logsafe(self.last_error or "", 600),
            )  # fmt: skip
        self.outbox.drop(items)

    def _failed(self) -> bool:
        self.failures += 1
        self.metrics.ship_failures.inc()
        log.warning("shipping failed (%d in a row): %s", self.failures, self.last_error)
        return False

    async def run(self) -> None:
        if self.bot_url is None:
            log.warning("KERNBOT_BOT_URL is not set: events stay in the outbox and history")
        while True:
            self._wake.clear()
            if await self.ship_once():
                await self._wake.wait()
            else:
                await asyncio.sleep(self.backoff(self.failures))

    async def heartbeat(self, hb: Heartbeat) -> bool:
        if self.bot_url is None:
            return False
        try:
            async with self._sess().post(
                f"{self.bot_url}/v1/heartbeat", json=hb.model_dump(mode="json")
            ) as resp:
                await resp.read()
                return resp.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("heartbeat failed: %s", exc)
            return False

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None
