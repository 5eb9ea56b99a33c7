"""The host agent as one object: `build_agent(settings)` wires source, pipeline, outbox, shipper,
API and periodic jobs; `kernbot agent` and `kernbot up` both run it.

Lifecycle: `start()` opens everything (a source that cannot be opened raises `SourceUnavailable`
unless a fallback source is configured), `stop()` flushes half-read reports, saves the position
and gives the shipper a last bounded chance, all well within the 5 s a SIGTERM allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import platform
import time
from pathlib import Path

from aiohttp import web

from kernbot import __version__
from kernbot.agent.api import build_app
from kernbot.agent.enrich import Enricher
from kernbot.agent.history import History, RecentLines
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.outbox import Outbox
from kernbot.agent.pipeline import Pipeline
from kernbot.agent.pods import KubernetesApi
from kernbot.agent.position import Position, PositionStore
from kernbot.agent.proc import ProcReader
from kernbot.agent.scheduler import Scheduler
from kernbot.agent.shipper import Shipper
from kernbot.agent.sources import (
    Source,
    SourceConfig,
    SourceUnavailable,
    make_source,
    source_name,
)
from kernbot.core.events import Event, OomKillEvent, SynFloodEvent
from kernbot.core.oom.reconcile import OomReconciler
from kernbot.core.oom.recurrence import WINDOW_S as RECURRENCE_WINDOW_S
from kernbot.core.syn.episodes import SynEpisodeTracker
from kernbot.core.wire import (
    AgentStatus,
    DmesgResponse,
    Heartbeat,
    OomResponse,
    SynResponse,
    TopResponse,
)
from kernbot.settings import AgentSettings

log = logging.getLogger(__name__)

POSITION_SAVE_EVERY_S = 0.25
RECONCILE_EVERY_S = 5.0
STOP_SHIP_BUDGET_S = 2.5


def _enricher(settings: AgentSettings, proc: ProcReader) -> Enricher:
    """Live host context, pod names and advice for each event (kernbot.agent.enrich)."""
    from kernbot.agent.pods import PodResolver

    api = _kubernetes_api(settings)
    return Enricher(proc, PodResolver(settings.pod_log_dir, settings.kubernetes_api, api))


def _kubernetes_api(settings: AgentSettings) -> KubernetesApi | None:
    if not settings.kubernetes_api:
        return None
    from kernbot.agent.pods import InClusterKubernetesApi

    try:
        return InClusterKubernetesApi.from_environment(node_name=settings.hostname)
    except (KeyError, OSError) as exc:
        log.warning(
            "KERNBOT_KUBERNETES_API is set but this is not a pod with a service account (%s): "
            "pod names come from the pod log directories only",
            exc,
        )
        return None


class _LiveSynContext:
    """Quiet SYN samples skip reading the listeners, so a kernel "Possible SYN flooding" line
    that opens an episode between samples first gives the tracker the listeners of now."""

    def __init__(self, tracker: SynEpisodeTracker, proc: ProcReader) -> None:
        self.tracker = tracker
        self.proc = proc

    def on_kernel_event(self, ev: SynFloodEvent, now: float) -> list[SynFloodEvent]:
        if ev.port not in self.tracker.open_ports:
            self.tracker.set_context(self.proc.listeners(), self.proc.net_sysctls())
        return self.tracker.on_kernel_event(ev, now)


class Agent:
    def __init__(self, settings: AgentSettings, proc: ProcReader) -> None:
        from kernbot.core.detector import Detector

        self.settings = settings
        self.proc = proc
        self.host = settings.hostname
        self.boot_id = proc.boot_id()
        self.started_mono = time.monotonic()
        state = settings.state_dir
        self.positions = PositionStore(state)
        self.metrics = AgentMetrics()
        self.outbox = Outbox(state / "outbox.db", max_rows=settings.outbox_max)
        self.history = History(state / "history.db")
        self.recent = RecentLines()
        self.metrics.bind_outbox(self.outbox.depth, lambda: self.outbox.counter("dropped"))
        self.source_spec = settings.source
        saved = self.positions.load()
        self.first_start = saved is None
        same_boot = saved is not None and saved.boot_id in (None, self.boot_id)
        self.reconciler: OomReconciler | None = None
        if source_name(self.source_spec) in ("kmsg", "journal"):
            accounted = saved.oom_kills_accounted if saved is not None and same_boot else None
            if saved is not None and not same_boot:
                accounted = 0
            self.reconciler = OomReconciler(self.host, self.boot_id, accounted)
        self._resume = (
            saved if saved is not None and saved.source == source_name(self.source_spec) else None
        )
        self.syn_tracker = SynEpisodeTracker(
            host=self.host,
            boot_id=self.boot_id,
            quiet_after_s=3 * settings.syn_sample_interval_s,
        )
        token = settings.token.get_secret_value() if settings.token else None
        self.shipper = Shipper(
            self.outbox,
            bot_url=settings.bot_url,
            token=token,
            host=self.host,
            metrics=self.metrics,
            timeout_s=settings.ship_timeout_s,
        )
        self.enricher = _enricher(settings, proc)
        since = time.time() - RECURRENCE_WINDOW_S
        self.enricher.remember(
            [OomKillEvent.model_validate(b) for b in self.history.query("oom_kill", since, 2000)]
        )
        self._name_tasks: set[asyncio.Task[None]] = set()
        self._awaiting_names: dict[str, OomKillEvent] = {}
        self.pipeline = Pipeline(
            detector=Detector(host=self.host, boot_id=self.boot_id),
            outbox=self.outbox,
            history=self.history,
            recent=self.recent,
            metrics=self.metrics,
            reconciler=self.reconciler,
            enrich=self.enricher.enrich,
            on_live=self._names_later,
            syn=_LiveSynContext(self.syn_tracker, proc),
            on_stored=self.shipper.wake,
            first_start=self.first_start,
            history_max_age_s=settings.history_max_age_s,
            boot_id=self.boot_id,
        )
        self._token = token
        self.source: Source | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._scheduler: Scheduler | None = None
        self._saved: Position | None = saved
        self._last_save = 0.0
        self._stopping = asyncio.Event()
        self.fatal: BaseException | None = None
        self.bound_port: int | None = None

    # ---- pod names from the Kubernetes API ---------------------------------------------------
    def _names_later(self, ev: Event) -> None:
        """The alert has gone out with the pod UID; when the logs did not name the pod and the
        API may be asked, ask it without holding up the log, and ship the names as an update."""
        if not isinstance(ev, OomKillEvent) or ev.id is None:
            return
        if ev.id in self._awaiting_names:
            self._awaiting_names[ev.id] = ev  # the names go onto the newest revision
            return
        if not self.enricher.wants_api_names(ev):
            return
        self._awaiting_names[ev.id] = ev
        task = asyncio.get_running_loop().create_task(self._ship_api_names(ev.id))
        self._name_tasks.add(task)
        task.add_done_callback(self._name_tasks.discard)

    async def _ship_api_names(self, event_id: str) -> None:
        try:
            names = await self.enricher.api_names(self._awaiting_names[event_id])
        finally:
            latest = self._awaiting_names.pop(event_id)
        if names is not None:
            # The pipeline gives it the revision after the newest one shipped.
            self.pipeline.store(self.enricher.with_names(latest, names), enriched=True)

    # ---- lifecycle -------------------------------------------------------------------------
    async def _open_source(self) -> Source:
        cfg = SourceConfig(
            arg=None, resume=self._resume, boot_id=self.boot_id, proc_root=self.proc.root
        )
        try:
            source = make_source(self.source_spec, cfg)
            await source.open()
            return source
        except SourceUnavailable as exc:
            fallback = self.settings.fallback_source
            if not fallback:
                raise
            log.warning("%s; falling back to source %r", exc, fallback)
            self.source_spec = fallback
            source = make_source(fallback, cfg)
            await source.open()
            return source

    async def start(self) -> None:
        self.source = await self._open_source()
        self.metrics.source_healthy.set_function(
            lambda: 1.0 if self.source is not None and self.source.healthy else 0.0
        )
        await self._start_api()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="kernbot-read"),
            asyncio.create_task(self._ship_loop(), name="kernbot-ship"),
            asyncio.create_task(self._housekeeping(), name="kernbot-housekeeping"),
        ]
        sched = Scheduler()
        sched.every(self.settings.heartbeat_interval_s, "heartbeat", self.send_heartbeat)
        sched.every(self.settings.syn_sample_interval_s, "syn-sample", self.sample_syn)
        if self.reconciler is not None:
            sched.every(RECONCILE_EVERY_S, "oom-reconcile", self.reconcile)
        sched.start()
        self._scheduler = sched
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.send_heartbeat()))
        log.info(
            "agent %s: source %s, serving on %s, bot %s",
            self.host, self.source_spec, self.settings.listen, self.settings.bot_url or "(none)",
        )  # fmt: skip

    async def _start_api(self) -> None:
        app = build_app(self, self._token, time.time)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = self.settings.listen_host_port()
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        self._runner = runner
        self.bound_port = int(runner.addresses[0][1])  # the real port when `listen` asked for 0

    async def stop(self) -> None:
        """Flush, persist, ship what we can in a bounded time, close."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown()
        tasks = [*self._tasks, *self._name_tasks]  # a pending API lookup is not worth waiting for
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self.pipeline.flush()
        self._save_position(force=True)
        with contextlib.suppress(TimeoutError, Exception):
            await asyncio.wait_for(self.shipper.ship_once(), STOP_SHIP_BUDGET_S)
        await self.shipper.close()
        if self.source is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.source.close(), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.outbox.close()
        self.history.close()

    async def run_forever(self) -> None:
        """Start, run until `request_stop()` (SIGTERM) or a fatal source error, then stop."""
        await self.start()
        try:
            await self._stopping.wait()
        finally:
            await self.stop()
        if self.fatal is not None:
            raise self.fatal

    def request_stop(self) -> None:
        self._stopping.set()

    # ---- loops -----------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self.source is not None
        delay = 0.5
        while not self._stopping.is_set():
            try:
                async for batch in self.source.batches():
                    self.pipeline.feed(batch)
                    self._save_position()
                    delay = 0.5
                log.info("source %s reached its end", self.source.name)
                self.pipeline.flush()
                self._save_position(force=True)
                return
            except asyncio.CancelledError:
                raise
            except SourceUnavailable as exc:
                self.fatal = exc
                self._stopping.set()
                return
            except Exception as exc:
                self.source.healthy = False
                self.source.error = f"{type(exc).__name__}: {exc}"
                log.exception("source %s failed; restarting in %.1fs", self.source.name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                with contextlib.suppress(Exception):
                    await self.source.close()
                    self._resume = self.pipeline.safe_position or self._resume
                    self.source = await self._open_source()

    async def _ship_loop(self) -> None:
        await self.shipper.run()

    async def _housekeeping(self) -> None:
        """Flush reports that stopped arriving; persist the position now and then."""
        tick = min(0.25, self.settings.flush_timeout_s / 4)
        while True:
            # idle hosts: wake once a second; a half-read report: often enough to flush on time
            await asyncio.sleep(tick if self.pipeline.detector.pending else 1.0)
            self.pipeline.flush_if_idle(self.settings.flush_timeout_s)
            self._save_position()

    def _save_position(self, force: bool = False) -> None:
        pos = self.pipeline.safe_position
        if pos is None or pos == self._saved:
            return
        now = time.monotonic()
        if not force and now - self._last_save < POSITION_SAVE_EVERY_S:
            return
        try:
            self.positions.save(pos)
        except OSError as exc:
            log.error("cannot save position to %s: %s", self.positions.path, exc)
            return
        self._saved = dataclasses.replace(pos)  # a copy: the pipeline updates `pos` in place
        self._last_save = now

    # ---- periodic jobs ---------------------------------------------------------------------
    async def send_heartbeat(self) -> None:
        await self.shipper.heartbeat(self.heartbeat())

    def heartbeat(self) -> Heartbeat:
        st = self.status(light=True)
        return Heartbeat(
            host=self.host,
            advertise_url=self.advertise_url(),
            agent_version=__version__,
            kernel=st.kernel,
            boot_id=self.boot_id,
            uptime_s=st.uptime_s,
            source=st.source,
            source_healthy=st.source_healthy,
            source_error=st.source_error,
            records_read=st.records_read,
            records_lost=st.records_lost,
            outbox_depth=st.outbox_depth,
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )

    def advertise_url(self) -> str:
        if self.settings.advertise_url:
            return self.settings.advertise_url
        host, port = self.settings.listen_host_port()
        if host in ("0.0.0.0", "::"):
            host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.bound_port or port}"

    async def sample_syn(self) -> None:
        now = time.time()
        counters = self.proc.tcpext()
        if self.syn_tracker.needs_context(now, counters):
            listeners, sysctls = self.proc.listeners(), self.proc.net_sysctls()
        else:  # quiet: this sample cannot use them, skip the fd walk
            listeners, sysctls = self.syn_tracker.context
        events = self.syn_tracker.sample(now, counters, listeners, sysctls)
        for ev in events:
            self.pipeline.store(ev)

    async def reconcile(self) -> None:
        assert self.reconciler is not None
        ev = self.reconciler.check(
            self.proc.vmstat_oom_kill(), time.time(), busy=self.pipeline.detector.pending
        )
        if ev is not None:
            log.warning("%s", ev.lines[0])
            self.pipeline.emit(ev, old=False)

    # ---- AgentQueries (the HTTP API calls these) -------------------------------------------
    def status(self, light: bool = False) -> AgentStatus:
        src = self.source
        stats = self.pipeline.stats
        return AgentStatus(
            host=self.host,
            agent_version=__version__,
            kernel=self.proc.kernel_release() or platform.release(),
            boot_id=self.boot_id,
            uptime_s=round(time.monotonic() - self.started_mono, 3),
            source=self.source_spec,
            source_healthy=bool(src and src.healthy),
            source_error=src.error if src else "not started",
            records_read=stats.records_read,
            records_lost=stats.records_lost,
            records_garbled=stats.records_garbled,
            events=dict(stats.events),
            outbox_depth=self.outbox.depth(),
            meminfo={} if light else self.proc.meminfo(),
            psi={} if light else self.proc.psi_memory(),
        )

    def oom(self, since: float | None) -> OomResponse:
        events = [OomKillEvent.model_validate(b) for b in self.history.query("oom_kill", since)]
        return OomResponse(
            host=self.host,
            events=events,
            top=self.proc.top_by_oom_score(10),
            meminfo=self.proc.meminfo(),
            psi=self.proc.psi_memory(),
        )

    def syn(self, since: float | None) -> SynResponse:
        events = [SynFloodEvent.model_validate(b) for b in self.history.query("syn_flood", since)]
        return SynResponse(
            host=self.host,
            events=events,
            listeners=self.proc.listeners(),
            counter_rates=dict(self.syn_tracker.rates),
            counters=self.proc.tcpext(),
            sysctls=self.proc.net_sysctls(),
        )

    def top(self, n: int) -> TopResponse:
        return TopResponse(host=self.host, processes=self.proc.top_by_oom_score(n))

    def dmesg(self, grep: str | None, lines: int) -> DmesgResponse:
        out, more = self.recent.tail(lines, grep)
        return DmesgResponse(host=self.host, lines=out, truncated=more)

    def metrics_text(self) -> bytes:
        return self.metrics.render()


def build_agent(settings: AgentSettings) -> Agent:
    """The agent for these settings; call inside a running event loop, then `await start()`."""
    proc = ProcReader(Path(settings.proc_root), net_pid=settings.net_pid)
    return Agent(settings, proc)
