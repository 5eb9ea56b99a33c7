"""The agent's composition root: `build_agent(settings)` makes the parts, `Agent` starts and
stops them (ARCHITECTURE.md). `kernbot agent` and `kernbot up` both run it.

The parts: a `SourceFollower` (kernbot.agent.follow) feeds the `Pipeline` (detector, then the
stages of kernbot.agent.stages, then history + outbox); the `Shipper` drains the outbox to the
bot; periodic jobs (heartbeat, SYN counter sampling, vmstat reconciliation) run on a scheduler;
`HostQueries` answers the HTTP API. What a test wants to replace is injected: the source maker,
outbox, history, Kubernetes API client and clock.

Lifecycle: `start()` opens everything (a source that cannot be opened raises `SourceUnavailable`
unless a fallback source is configured), `stop()` flushes half-read reports, saves the position
and gives the shipper a last bounded chance, all well within the 5 s a SIGTERM allows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from kernbot import __version__
from kernbot.agent.api import build_app
from kernbot.agent.clock import SYSTEM_CLOCK, Clock
from kernbot.agent.enrich import Enricher
from kernbot.agent.follow import SourceFollower, SourceMaker
from kernbot.agent.history import History, RecentLines
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.outbox import Outbox
from kernbot.agent.pipeline import Pipeline
from kernbot.agent.pods import KubernetesApi, PodResolver
from kernbot.agent.position import Position, PositionSaver, PositionStore
from kernbot.agent.proc import ProcReader
from kernbot.agent.queries import HostQueries
from kernbot.agent.risk import RiskSampler, RiskStage
from kernbot.agent.scheduler import Scheduler
from kernbot.agent.shipper import Shipper
from kernbot.agent.sources import Source, SourceConfig, make_source, source_name
from kernbot.agent.stages import Advise, ApiPodNames, Enrich, KillAccounting, Stage, SynEpisodes
from kernbot.core.deferred import Deferred
from kernbot.core.detector import Detector, diagnose
from kernbot.core.events import Event, OomKillEvent
from kernbot.core.oom.reconcile import OomReconciler
from kernbot.core.oom.recurrence import WINDOW_S as RECURRENCE_WINDOW_S
from kernbot.core.syn.episodes import SynEpisodeTracker
from kernbot.core.wire import (
    Heartbeat,
)
from kernbot.hostport import url_host
from kernbot.http_guard import KEEPALIVE_TIMEOUT_S, GuardedSite
from kernbot.settings import AgentSettings

log = logging.getLogger(__name__)

RECONCILE_EVERY_S = 5.0
STOP_SHIP_BUDGET_S = 2.5
RECONCILED_SOURCES = ("kmsg", "journal")
"""Sources that see every kernel line of this boot, so vmstat's kill count can be checked."""

Job = Callable[[], Awaitable[None]]


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


def _reconciler(
    host: str, boot_id: str | None, spec: str, saved: Position | None
) -> OomReconciler | None:
    """vmstat reconciliation, resuming the kills already accounted for in this boot."""
    if source_name(spec) not in RECONCILED_SOURCES:
        return None
    if saved is None:
        accounted = None  # first start: the backlog decides
    elif saved.boot_id in (None, boot_id):
        accounted = saved.oom_kills_accounted
    else:
        accounted = 0  # a new boot: every kill is new
    return OomReconciler(host, boot_id, accounted)


def _risk_stage(
    settings: AgentSettings, proc_root: Path, host: str, boot_id: str | None, clock: Clock
) -> RiskStage | None:
    """OOM-risk warnings (kernbot.agent.risk) with the episodes a previous run left open;
    None when `risk_sample_interval_s` is 0."""
    if settings.risk_sample_interval_s <= 0:
        return None
    from kernbot.agent.cgroups import CgroupReader
    from kernbot.core.risk import RiskSettings, RiskTracker

    risk = RiskSettings(
        percent=settings.risk_percent,
        eta_s=settings.risk_eta_s,
        psi_full=settings.risk_psi_full,
        end_percent=settings.risk_end_percent,
        end_after_s=settings.risk_end_after_s,
        window_s=settings.risk_window_s,
    )
    sampler = RiskSampler(
        reader=CgroupReader(settings.cgroup_root),
        tracker=RiskTracker(host=host, boot_id=boot_id, settings=risk),
        proc_root=proc_root,
        state_path=settings.state_dir / "oom_risk.json",
        discover_s=settings.risk_discover_interval_s,
    )
    sampler.load(clock.wall())
    return RiskStage(sampler, clock.wall)


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        proc: ProcReader,
        *,
        outbox: Outbox,
        history: History,
        kubernetes_api: KubernetesApi | None,
        source_maker: SourceMaker = make_source,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.proc = proc
        self.clock = clock
        self.host = settings.hostname
        self.boot_id = proc.boot_id()
        self.started_mono = clock.mono()
        self.outbox = outbox
        self.history = history
        self.recent = RecentLines()
        self.metrics = AgentMetrics()
        self.metrics.bind_outbox(outbox.depth, lambda: outbox.counter("dropped"))
        positions = PositionStore(settings.state_dir)
        saved = positions.load()
        resume = (
            saved if saved is not None and saved.source == source_name(settings.source) else None
        )
        self.reconciler = _reconciler(self.host, self.boot_id, settings.source, saved)
        self.syn_tracker = SynEpisodeTracker(
            host=self.host, boot_id=self.boot_id, quiet_after_s=3 * settings.syn_sample_interval_s
        )
        self._token = settings.token.get_secret_value() if settings.token else None
        self.shipper = Shipper(
            outbox,
            bot_url=settings.bot_url,
            token=self._token,
            host=self.host,
            metrics=self.metrics,
            timeout_s=settings.ship_timeout_s,
        )
        self.enricher = Enricher(
            proc,
            PodResolver(settings.pod_log_dir, kubernetes_api is not None, kubernetes_api),
            clock=clock.wall,
        )
        # the last days of kills, for "killed again every ~N min" across restarts
        since = clock.wall() - RECURRENCE_WINDOW_S
        self.enricher.remember(
            [OomKillEvent.model_validate(b) for b in self.history.query("oom_kill", since, 2000)]
        )
        self.syn_episodes = SynEpisodes(self.syn_tracker, proc, clock.wall)
        self.pod_names = ApiPodNames(self.enricher)
        self.risk_stage = _risk_stage(settings, proc.root, self.host, self.boot_id, clock)
        self.risk: RiskSampler | None = self.risk_stage.sampler if self.risk_stage else None
        # OOM risk before enrichment: the `killed` update a kill brings is enriched too
        risk_stages: list[Stage] = [self.risk_stage] if self.risk_stage is not None else []
        stages = [self.syn_episodes, *risk_stages, Enrich(self.enricher), self.pod_names, Advise()]
        if self.reconciler is not None:
            stages.append(KillAccounting(self.reconciler))
        # the detector's revisions unbuilt: the pipeline builds the newest of each batch only
        deferred: list[Event | Deferred] = []
        self.pipeline = Pipeline(
            detector=Detector(
                host=self.host, boot_id=self.boot_id, advise=False, diagnose=False, defer=deferred
            ),
            deferred=deferred,
            finish=diagnose,
            outbox=outbox,
            history=history,
            recent=self.recent,
            metrics=self.metrics,
            stages=stages,
            on_stored=self.shipper.wake,
            on_position=self._note_accounted,
            first_start=saved is None,
            history_max_age_s=settings.history_max_age_s,
            boot_id=self.boot_id,
            clock=clock,
        )
        self.syn_episodes.resume = self.pipeline.resume
        if self.risk_stage is not None:
            self.risk_stage.resume = self.pipeline.resume
        self.pod_names.resume = self.pipeline.resume
        self.saver = PositionSaver(
            positions, lambda: self.pipeline.safe_position, clock.mono, saved=saved
        )
        self.follower = SourceFollower(
            settings.source,
            self.pipeline,
            self.saver,
            self.metrics,
            config=SourceConfig(arg=None, resume=resume, boot_id=self.boot_id, proc_root=proc.root),
            fallback=settings.fallback_source,
            factory=source_maker,
            clock=clock,
        )
        self.queries = HostQueries(
            host=self.host,
            boot_id=self.boot_id,
            proc=proc,
            source=self.follower,
            stats=self.pipeline.stats,
            outbox=outbox,
            history=history,
            recent=self.recent,
            metrics=self.metrics,
            syn_tracker=self.syn_tracker,
            uptime_s=lambda: clock.mono() - self.started_mono,
            queue_test_alert=self.test_alert,
            risk=self.risk,
        )
        self.jobs: list[tuple[float, str, Job]] = [
            (settings.heartbeat_interval_s, "heartbeat", self.send_heartbeat),
            (settings.syn_sample_interval_s, "syn-sample", self.syn_episodes.sample),
        ]
        """Periodic jobs (interval s, name, coroutine); add one here, it starts with the agent."""
        if self.reconciler is not None:
            self.jobs.append((RECONCILE_EVERY_S, "oom-reconcile", self.reconcile))
        if self.risk_stage is not None:
            self.metrics.bind_risk(self.risk_stage.watched, self.risk_stage.sampler.open_count)
            self.jobs.append((settings.risk_sample_interval_s, "oom-risk", self.risk_stage.sample))
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._scheduler: Scheduler | None = None
        self._stopping = asyncio.Event()
        self.bound_port: int | None = None

    # ---- what callers read -----------------------------------------------------------------
    @property
    def source(self) -> Source | None:
        return self.follower.source

    @property
    def source_spec(self) -> str:
        return self.follower.spec

    @property
    def fatal(self) -> BaseException | None:
        return self.follower.fatal

    def _note_accounted(self, pos: Position) -> None:
        if self.reconciler is not None:
            pos.oom_kills_accounted = self.reconciler.accounted

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.follower.open()
        self.metrics.source_healthy.set_function(lambda: 1.0 if self.follower.healthy else 0.0)
        await self._start_api()
        self._tasks = [
            asyncio.create_task(self.follower.run(self._stopping), name="kernbot-read"),
            asyncio.create_task(self.shipper.run(), name="kernbot-ship"),
            asyncio.create_task(self._housekeeping(), name="kernbot-housekeeping"),
        ]
        sched = Scheduler()
        for every_s, name, job in self.jobs:
            sched.every(every_s, name, job)
        sched.start()
        self._scheduler = sched
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.send_heartbeat()))
        log.info(
            "agent %s: source %s, serving on %s, bot %s",
            self.host, self.source_spec, self.settings.listen, self.settings.bot_url or "(none)",
        )  # fmt: skip

    async def _start_api(self) -> None:
        app = build_app(self.queries, self._token, self.clock.wall)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_TIMEOUT_S
        )
        await runner.setup()
        host, port = self.settings.listen_host_port()
        await GuardedSite(runner, host, port, reuse_address=True, max_connections=64).start()
        self._runner = runner
        self.bound_port = int(runner.addresses[0][1])  # the real port when `listen` asked for 0

    async def stop(self) -> None:
        """Flush, persist, ship what we can in a bounded time, close."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("agent task %s failed", task.get_name())
        self._tasks = []
        await self.pod_names.cancel()  # a pending API lookup is not worth waiting for
        self.pipeline.flush()
        self.saver.save(force=True)
        try:
            await asyncio.wait_for(self.shipper.ship_once(), STOP_SHIP_BUDGET_S)
        except Exception as exc:  # the outbox keeps it for the next start
            log.warning("last shipping attempt at stop: %s: %s", type(exc).__name__, exc)
        await self.shipper.close()
        await self.follower.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.outbox.close()
        self.history.close()

    async def run_forever(self, started: Callable[[], None] = lambda: None) -> None:
        """Start, run until `request_stop()` (SIGTERM) or a fatal source error, then stop;
        `started` is called once the agent runs."""
        await self.start()
        started()
        try:
            await self._stopping.wait()
        finally:
            await self.stop()
        if self.fatal is not None:
            raise self.fatal

    def request_stop(self) -> None:
        self._stopping.set()

    async def _housekeeping(self) -> None:
        """Flush reports that stopped arriving; persist the position now and then."""
        tick = min(0.25, self.settings.flush_timeout_s / 4)
        while True:
            # idle hosts: wake once a second; a half-read report: often enough to flush on time
            await self.clock.sleep(tick if self.pipeline.detector.pending else 1.0)
            self.pipeline.flush_if_idle(self.settings.flush_timeout_s)
            self.saver.save()

    # ---- periodic jobs ---------------------------------------------------------------------
    async def send_heartbeat(self) -> None:
        await self.shipper.heartbeat(self.heartbeat())

    def heartbeat(self) -> Heartbeat:
        st = self.queries.status(light=True)
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
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock.wall())),
        )

    def test_alert(self) -> str:
        """Queue an alert marked as a test (`kernbot doctor --test-alert`) straight into the
        outbox: it is shipped like any event but never enters the history or /oom answers."""
        now = self.clock.wall()
        ev = OomKillEvent(
            id=f"test:{int(now * 1000)}",
            host=self.host,
            boot_id=self.boot_id,
            time=datetime.fromtimestamp(now, UTC).isoformat(),
            lines=["kernbot test alert (kernbot doctor --test-alert): no process was killed"],
            test=True,
        )
        assert ev.id is not None
        self.outbox.put(ev.id, 0, ev.kind, ev.model_dump(mode="json"))
        self.shipper.wake()
        log.info("test alert %s queued", ev.id)
        return ev.id

    def advertise_url(self) -> str:
        if self.settings.advertise_url:
            return self.settings.advertise_url
        host, port = self.settings.listen_host_port()
        if host in ("0.0.0.0", "::"):
            host = self.host
        return f"http://{url_host(host)}:{self.bound_port or port}"

    async def reconcile(self) -> None:
        """Kills vmstat counted that the log never showed become events of their own."""
        assert self.reconciler is not None
        ev = self.reconciler.check(
            self.proc.vmstat_oom_kill(), self.clock.wall(), busy=self.pipeline.detector.pending
        )
        if ev is not None:
            log.warning("%s", ev.lines[0])
            self.pipeline.emit(ev, old=False)


def build_agent(
    settings: AgentSettings,
    *,
    proc: ProcReader | None = None,
    source_maker: SourceMaker = make_source,
    outbox: Outbox | None = None,
    history: History | None = None,
    kubernetes_api: KubernetesApi | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Agent:
    """The agent for these settings; call inside a running event loop, then `await start()`.
    Each keyword replaces the part the settings would make (tests/agent/agent_harness.py)."""
    state = settings.state_dir
    return Agent(
        settings,
        proc or ProcReader(Path(settings.proc_root), net_pid=settings.net_pid),
        outbox=outbox
        or Outbox(state / "outbox.db", max_rows=settings.outbox_max, history=state / "history.db"),
        history=history or History(state / "history.db", outbox=state / "outbox.db"),
        kubernetes_api=kubernetes_api if kubernetes_api is not None else _kubernetes_api(settings),
        source_maker=source_maker,
        clock=clock,
    )
