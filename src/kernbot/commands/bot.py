"""`kernbot bot`: wires settings into the store, the alert rules, the outbox worker, the HTTP
server, the agent client and the scheduler, and runs them until SIGTERM.

`build_bot` is the one place that builds these I/O objects; `kernbot up` embeds the result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kernbot.hostport import url_host

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from kernbot.bot.delivery import DeliveryWorker
    from kernbot.bot.ingest import Ingestor
    from kernbot.bot.jobs import BotJobs
    from kernbot.bot.ports import Notifier
    from kernbot.bot.server import ServerContext
    from kernbot.bot.service import FleetService
    from kernbot.bot.store import Database
    from kernbot.settings import BotSettings

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (else KERNBOT_CONFIG)")


def default_notifier(settings: BotSettings) -> Notifier:
    """Slack when a bot token is set, else the terminal (the Slack edge's factory table)."""
    from kernbot.bot.notifiers import build_notifier

    return build_notifier(settings)


class Bot:
    """The running bot. `start()` returns once it serves; `stop()` undoes it all."""

    def __init__(
        self,
        settings: BotSettings,
        *,
        notifier: Notifier,
        clock: Callable[[], float] = time.time,
        delivery_backoff_s: float = 1.0,
    ) -> None:
        from kernbot.bot.alerts import AlertDecider, AlertPolicy, parse_routes
        from kernbot.bot.delivery import DeliveryWorker
        from kernbot.bot.ingest import Ingestor
        from kernbot.bot.store import Database

        self.settings = settings
        self.notifier = notifier
        self.clock = clock
        self.db: Database = Database(settings.effective_database_url())
        policy = AlertPolicy(
            storm_window_s=settings.storm_window_s,
            fleet_burst_hosts=settings.fleet_burst_hosts,
            fleet_burst_window_s=settings.fleet_burst_window_s,
            default_channel=settings.slack_channel,
            routes=parse_routes(settings.routes),
        )
        self.delivery: DeliveryWorker = DeliveryWorker(
            self.db,
            notifier,
            clock=clock,
            backoff_base_s=delivery_backoff_s,
            burst_window_s=settings.fleet_burst_window_s,
        )
        self.ingestor: Ingestor = Ingestor(
            self.db,
            AlertDecider(policy),
            notice_channel=settings.slack_channel,
            clock=clock,
            on_enqueue=self.delivery.wake,
        )
        self.service: FleetService | None = None
        self.jobs: BotJobs | None = None
        self.app: web.Application | None = None
        self.url = ""
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        import aiohttp
        from aiohttp import web

        from kernbot.bot.agents_client import AgentsClient
        from kernbot.bot.jobs import BotJobs
        from kernbot.bot.server import ServerContext, build_app
        from kernbot.bot.service import FleetService

        s = self.settings
        await asyncio.to_thread(self.db.migrate)
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
        token = s.token.get_secret_value() if s.token else None
        if token is None:
            log.warning("KERNBOT_TOKEN is not set: the ingest API accepts unauthenticated agents")
        client = AgentsClient(self._http, token=token, timeout_s=s.agent_timeout_s)
        self.service = FleetService(
            self.db, client, stale_after_s=s.stale_after_s, clock=self.clock
        )
        ctx = ServerContext(
            db=self.db,
            ingestor=self.ingestor,
            delivery=self.delivery.health,
            notifier_name=self.notifier.name,
            token=token,
            stale_after_s=s.stale_after_s,
            clock=self.clock,
        )
        self.app = build_app(ctx, max_body_bytes=s.max_body_bytes)
        self._mount_slack(self.app, ctx)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        host, port = s.listen_host_port()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0]
        self.url = f"http://{url_host(host)}:{bound[1]}"
        self._tasks.append(asyncio.create_task(self.delivery.run(), name="kernbot-delivery"))
        self.jobs = BotJobs(
            self.db,
            stale_after_s=s.stale_after_s,
            notice_channel=s.slack_channel,
            digest_time=s.digest_time,
            fleet=self.service,
            clock=self.clock,
            on_enqueue=self.delivery.wake,
        )
        self.jobs.start()
        log.info("kernbot bot listening on %s (notifier: %s)", self.url, self.notifier.name)

    def _mount_slack(self, app: web.Application, ctx: ServerContext) -> None:
        """Slash commands and buttons, when the Slack edge provides its mount hook."""
        if self.service is None or self.settings.slack_bot_token is None:
            return
        from kernbot.bot.slack_app import SlackSetupError, mount

        try:
            mount(app, self.settings, self.service)
        except SlackSetupError as exc:  # alerts only: a legitimate setup, said once
            log.warning("slash commands and buttons are off: %s", exc)
        except Exception as exc:
            log.exception("Slack endpoint not mounted")
            ctx.extra_problems.append(f"/slack/events not mounted: {exc}")

    async def stop(self) -> None:
        if self.jobs is not None:
            self.jobs.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            # Cancel again until it ends: on Python 3.11 an asyncio.wait_for in a notifier loses a
            # cancellation that arrives as its call completes (cpython gh-86296; SlackNotifier
            # used one), and a single cancel() then left `kernbot bot` deaf to SIGTERM.
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        close = getattr(self.notifier, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
        await asyncio.to_thread(self.db.dispose)

    async def run_forever(self) -> None:
        """Start, serve until SIGTERM/SIGINT (or cancellation), then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


def build_bot(
    settings: BotSettings,
    *,
    notifier: Notifier | None = None,
    clock: Callable[[], float] = time.time,
    delivery_backoff_s: float = 1.0,
) -> Bot:
    return Bot(
        settings,
        notifier=notifier or default_notifier(settings),
        clock=clock,
        delivery_backoff_s=delivery_backoff_s,
    )


def run(args: argparse.Namespace) -> int:
    from kernbot.logsetup import configure_logging
    from kernbot.settings import BotSettings, SettingsError, load_settings

    try:
        settings = load_settings(BotSettings, getattr(args, "config", None))
        bot = build_bot(settings)
    except (SettingsError, ValueError) as exc:
        print(f"kernbot bot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    from kernbot.bot.store import StoreUnavailable

    try:
        asyncio.run(bot.run_forever())
    except StoreUnavailable as exc:
        print(f"kernbot bot: {exc}", file=sys.stderr)
        return 2
    return 0
