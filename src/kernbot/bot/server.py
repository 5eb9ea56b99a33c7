"""The bot's HTTP surface: the agents' ingest endpoints, /healthz, /metrics, and the Slack
edge's `/slack/events` (mounted by `kernbot.bot.slack_app.mount` when that module exists).

Agent requests must carry the shared token (compared in constant time); bodies are size-capped
by aiohttp and validated with the wire models; anything malformed gets a 4xx with the reason, so
an agent's log tells its operator what to fix.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from kernbot.bot.delivery import DeliveryHealth
from kernbot.bot.ingest import Ingestor
from kernbot.bot.metrics import render_metrics
from kernbot.bot.store import Database, Repository
from kernbot.core.events import WIRE_VERSION
from kernbot.core.wire import EventBatch, Heartbeat, newer_major

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass
class ServerContext:
    db: Database
    ingestor: Ingestor
    delivery: DeliveryHealth
    notifier_name: str
    token: str | None
    stale_after_s: float
    clock: Callable[[], float]
    extra_problems: list[str] = field(default_factory=list)


CTX = web.AppKey("kernbot_ctx", ServerContext)


def _error(status: int, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": reason, **extra}, status=status)


def _authorized(request: web.Request, token: str | None) -> bool:
    if token is None:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")
    )


async def _body(request: web.Request, model: type[M]) -> M | web.Response:
    ctx = request.app[CTX]
    if not _authorized(request, ctx.token):
        return _error(401, "missing or wrong Authorization: Bearer token (KERNBOT_TOKEN)")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        return _error(413, f"body too large: {exc.text} (setting max_body_bytes)")
    try:
        body = model.model_validate_json(raw)  # pydantic-core parses and validates in one go
    except ValidationError as exc:
        if (newer := newer_major(raw)) is not None:
            return _upgrade(newer)
        if exc.errors()[0]["type"] == "json_invalid":
            return _error(400, f"body is not JSON: {exc.errors()[0]['msg']}")
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:20]
        ]
        return _error(422, f"body does not match {model.__name__}", problems=problems)
    # The batch and each event carry a version; the highest decides.
    versions = [getattr(body, "version", WIRE_VERSION)]
    versions += [e.version for e in getattr(body, "events", [])]
    if max(versions) > WIRE_VERSION:
        return _upgrade(max(versions))
    return body


def _upgrade(version: int) -> web.Response:
    return _error(
        422,
        f"wire version {version} is newer than this bot understands (version {WIRE_VERSION}):"
        " upgrade the kernbot bot to the agents' release",
        upgrade=True,
    )


async def post_events(request: web.Request) -> web.Response:
    batch = await _body(request, EventBatch)
    if isinstance(batch, web.Response):
        return batch
    result = await request.app[CTX].ingestor.events(batch)
    return web.json_response(result.model_dump())


async def post_heartbeat(request: web.Request) -> web.Response:
    hb = await _body(request, Heartbeat)
    if isinstance(hb, web.Response):
        return hb
    back = await request.app[CTX].ingestor.heartbeat(hb)
    return web.json_response({"ok": True, "back": back})


async def health_snapshot(ctx: ServerContext) -> tuple[int, dict[str, Any]]:
    """What /healthz shows. 503 only when the database is unusable: a Slack misconfiguration is
    shown loudly in the body but does not make Kubernetes restart a bot that cannot fix it."""
    problems = list(ctx.extra_problems)
    body: dict[str, Any] = {"status": "ok", "notifier": ctx.notifier_name}
    now = ctx.clock()
    try:

        def _read(s: Any) -> tuple[dict[str, int], int, int, list[str]]:
            repo = Repository(s)
            agents = repo.agents()
            stale = sum(1 for a in agents if a.is_stale(now, ctx.stale_after_s))
            failed = [f"{r.op} #{r.id}: {r.last_error}" for r in repo.failed_outbox(3)]
            return repo.outbox_counts(), len(agents), stale, failed

        counts, agents, stale, failed = await ctx.db.run(_read)
    except Exception as exc:
        log.exception("healthz: database check failed")
        body.update(status="failing", database=f"{type(exc).__name__}: {exc}"[:300])
        body["problems"] = [*problems, "database unreachable"]
        return 503, body
    health = ctx.delivery
    body["database"] = "ok"
    body["outbox"] = {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}
    body["agents"] = {"total": agents, "stale": stale}
    body["delivery"] = {
        "delivered": health.delivered,
        "retried": health.retried,
        "failed": health.failed,
        "last_ok_at": health.last_ok_at,
        "last_error": health.last_error,
        "permanent_error": health.permanent_error,
        "recent_failures": failed,
    }
    if health.permanent_error:
        problems.append(
            f"SLACK DELIVERY FAILING: {health.permanent_error} — alerts are not reaching Slack; "
            "check SLACK_BOT_TOKEN, KERNBOT_SLACK_CHANNEL and that the app is in the channel"
        )
    elif health.last_error and (health.last_ok_at or 0) < (health.last_error_at or 0):
        problems.append(f"Slack delivery retrying: {health.last_error}")
    if problems:
        body["status"] = "degraded"
    body["problems"] = problems
    return 200, body


async def get_healthz(request: web.Request) -> web.Response:
    status, body = await health_snapshot(request.app[CTX])
    return web.json_response(body, status=status)


async def get_metrics(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    try:
        counts = await ctx.db.run(lambda s: Repository(s).outbox_counts())
    except Exception:
        counts = {}
    text = render_metrics(ctx.ingestor.outcomes, ctx.delivery, counts)
    return web.Response(body=text, headers={"Content-Type": "text/plain; version=0.0.4"})


def build_app(ctx: ServerContext, *, max_body_bytes: int) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes)
    app[CTX] = ctx
    app.router.add_post("/v1/events", post_events)
    app.router.add_post("/v1/heartbeat", post_heartbeat)
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/metrics", get_metrics)
    return app
