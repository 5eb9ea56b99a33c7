"""Asking agents live questions (/v1/oom, /v1/syn, /v1/top, /v1/dmesg), many at once.

Every call carries the shared token and its own timeout; a failure becomes an `AgentError`
naming the host and the reason, never an exception that escapes a fan-out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from kernbot.errors import KernbotError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class AgentTarget:
    host: str
    url: str


class AgentError(KernbotError):
    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


class AgentsClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: str | None,
        timeout_s: float = 3.0,
        concurrency: int = 256,
    ) -> None:
        self.session = session
        self.token = token
        self.timeout_s = timeout_s
        self._limit = asyncio.Semaphore(concurrency)

    async def get(
        self,
        agent: AgentTarget,
        path: str,
        model: type[M],
        params: Mapping[str, str | int] | None = None,
    ) -> M:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = agent.url.rstrip("/") + path
        try:
            async with (
                self._limit,
                asyncio.timeout(self.timeout_s),
                self.session.get(url, params=params, headers=headers) as resp,
            ):
                if resp.status != 200:
                    detail = (await resp.text())[:200]
                    raise AgentError(agent.host, f"HTTP {resp.status} {detail}".strip())
                body = await resp.read()
        except TimeoutError:
            raise AgentError(agent.host, f"no answer within {self.timeout_s:g}s") from None
        except aiohttp.ClientError as exc:
            raise AgentError(agent.host, f"{type(exc).__name__}: {exc}") from None
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise AgentError(agent.host, f"unexpected answer: {exc.error_count()} errors") from None

    async def fan_out(
        self,
        agents: Sequence[AgentTarget],
        path: str,
        model: type[M],
        params: Mapping[str, str | int] | None = None,
    ) -> dict[str, M | AgentError]:
        """Ask every agent concurrently; the whole call takes at most about one timeout."""

        async def one(agent: AgentTarget) -> M | AgentError:
            try:
                return await self.get(agent, path, model, params)
            except AgentError as exc:
                return exc

        results = await asyncio.gather(*(one(a) for a in agents))
        return {a.host: r for a, r in zip(agents, results, strict=True)}
