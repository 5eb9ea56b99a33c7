"""The agent in-process over the harness (agent_harness.py): history vs. live, revisions, the
saved position, advice once per event after enrichment, and a failing source's restart path.
Each test drives the agent only through what it exposes: the source, the clock, the outbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agent_harness import SNAPSHOT_BOOT_ID, AgentHarness, FakeSources, make_agent

from kernbot.agent.pods import PodNames
from kernbot.core import advice
from kernbot.core.events import Advice

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
MEMCG_OOM = (CORPUS / "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt").read_text().splitlines()
POD_UID = "94eb36cd-29e1-478b-b365-4cb5dfc7d6fb"
CID = "46b3e0a4df44b752b841aecca454e6e78995d567912a84950390bae6f6777a63"
NOISE = ["[ 3000.000001] eth0: link up", "[ 3000.000002] usb 1-1: new device"]


async def until(cond: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def ooms(h: AgentHarness) -> list[dict[str, Any]]:
    return [b for b in h.outbox.puts if b["kind"] == "oom_kill"]


async def test_first_start_backlog_is_history_and_what_follows_is_live(tmp_path: Path) -> None:
    h = make_agent(tmp_path)
    await h.agent.start()
    try:
        h.sources.current.push(MEMCG_OOM, backlog=True)
        await until(lambda: bool(ooms(h)), "the backlog's OOM event")
        h.agent.pipeline.flush()
        backlog = ooms(h)[-1]
        assert backlog["history"] is True
        assert backlog["context"].get("meminfo") is None, (
            "history is not enriched with today's host"
        )
        assert backlog["advice"], "history events are advised too (from their own numbers)"

        later = [line.replace("[ 2993.", "[ 3993.") for line in MEMCG_OOM]
        h.sources.current.push(later, first_offset=100)
        await until(lambda: len({b["id"] for b in ooms(h)}) == 2, "the live OOM event")
        h.agent.pipeline.flush()
        live = ooms(h)[-1]
        assert live["id"] != backlog["id"]
        assert live["history"] is False
        assert live["context"]["meminfo"]["MemTotal"] > 0, "live events carry host context"
        assert live["boot_id"] == SNAPSHOT_BOOT_ID
    finally:
        await h.agent.stop()


async def test_advice_is_computed_once_per_stored_revision_after_enrichment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    real = advice.RULES["oom_kill"]

    def counting(ev: Any) -> list[Advice]:
        seen.append(ev.context.model_dump(exclude_none=True))
        return real(ev)

    monkeypatch.setitem(advice.RULES, "oom_kill", counting)
    h = make_agent(tmp_path)
    await h.agent.start()
    try:
        h.sources.current.push(MEMCG_OOM)
        h.sources.current.push(NOISE, first_offset=50)
        await until(lambda: h.agent.pipeline.safe_position is not None, "the position")
        await until(lambda: not h.agent.pipeline.detector.pending, "the report to close")
        h.agent.pipeline.flush()
    finally:
        await h.agent.stop()
    revisions = ooms(h)
    assert revisions
    assert len(seen) == len(revisions), "one advice run per stored revision, none in the detector"
    assert all("meminfo" in ctx and "kills_24h" in ctx for ctx in seen), "advised after enrichment"


async def test_position_advances_only_between_reports_and_a_restart_resumes_there(
    tmp_path: Path,
) -> None:
    h = make_agent(tmp_path)
    await h.agent.start()
    try:
        src = h.sources.current
        src.push(NOISE)
        await until(lambda: h.agent.pipeline.safe_position is not None, "the first position")
        assert h.agent.pipeline.safe_position is not None
        assert h.agent.pipeline.safe_position.offset == 2
        src.push(MEMCG_OOM[:4], first_offset=10)  # half a report: the position must not move
        await until(lambda: h.agent.pipeline.stats.records_read == 6, "the half report")
        assert h.agent.pipeline.detector.pending
        assert h.agent.pipeline.safe_position.offset == 2
        src.push(MEMCG_OOM[4:], first_offset=14)
        src.push(NOISE, first_offset=40)
        await until(
            lambda: (
                h.agent.pipeline.safe_position is not None
                and h.agent.pipeline.safe_position.offset == 42
            ),
            "the position after the report",
        )
    finally:
        await h.agent.stop()
    saved = json.loads((tmp_path / "position.json").read_text())
    assert saved["source"] == "fake" and saved["offset"] == 42

    again = make_agent(tmp_path, sources=FakeSources())
    await again.agent.start()
    try:
        (cfg,) = [s.config for s in again.sources.made]
        assert cfg.resume is not None and cfg.resume.offset == 42
        again.sources.current.push(MEMCG_OOM, first_offset=10)  # the same report, re-read
        await until(lambda: again.agent.pipeline.stats.records_read == 13, "the re-read")
        again.agent.pipeline.flush()
        assert ooms(again) == [], "what was sent before a restart is not sent again"
    finally:
        await again.agent.stop()


async def test_revisions_stay_monotonic_when_the_api_names_arrive_between_detector_revisions(
    tmp_path: Path,
) -> None:
    release = asyncio.Event()

    class SlowApi:
        async def pod_by_uid(self, uid: str) -> PodNames | None:
            await release.wait()
            return PodNames("shop", "api-5c7b", {CID: "node-app"}) if uid == POD_UID else None

    h = make_agent(tmp_path, kubernetes_api=SlowApi())
    await h.agent.start()
    try:
        h.sources.current.push(MEMCG_OOM[:12])  # up to the first kill line
        await until(lambda: bool(ooms(h)), "the alert without names")
        first = ooms(h)[-1]
        assert first["kubernetes"]["pod_uid"] == POD_UID and first["kubernetes"]["pod"] is None
        release.set()
        await until(
            lambda: ooms(h)[-1]["kubernetes"].get("pod") == "api-5c7b", "the names revision"
        )
        named = ooms(h)[-1]
        assert named["id"] == first["id"] and named["revision"] > first["revision"]
        assert named["context"]["pod_source"] == "names from the Kubernetes API"
        h.sources.current.push(MEMCG_OOM[12:], first_offset=12)  # the detector's next revision
        h.sources.current.push(NOISE, first_offset=20)
        await until(lambda: ooms(h)[-1]["revision"] > named["revision"], "the next revision")
        h.agent.pipeline.flush()
    finally:
        await h.agent.stop()
    revs = [b["revision"] for b in ooms(h)]
    assert revs == sorted(set(revs)), f"revisions must only grow: {revs}"
    assert ooms(h)[-1]["kubernetes"]["pod"] == "api-5c7b", "later revisions keep the API's names"


async def test_a_failed_reopen_is_counted_retried_with_backoff_and_shown_unhealthy(
    tmp_path: Path,
) -> None:
    h = make_agent(tmp_path)
    await h.agent.start()
    try:
        h.sources.current.push(NOISE)
        await until(lambda: h.agent.pipeline.stats.records_read == 2, "the first lines")
        h.sources.refuse = 10**6  # every open fails until the test allows it
        slept_before = len(h.clock.slept)
        h.sources.current.fail(OSError("read error on the log"))
        await until(lambda: h.sources.refuse <= 10**6 - 7, "seven failed reopens")
        status = h.agent.queries.status(light=True)
        assert not status.source_healthy, "a source that cannot be reopened is shown unhealthy"
        assert status.source_error and "reopen failed" in status.source_error
        metrics = h.agent.queries.metrics_text().decode()
        name = "kernbot_agent_source_reopen_failures_total"
        (line,) = [m for m in metrics.splitlines() if m.startswith(name)]
        assert float(line.split()[1]) >= 7
        backoff = [s for task, s in h.clock.slept[slept_before:] if task == "kernbot-read"]
        assert backoff[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0], backoff
        assert len(h.sources.made) == 1, "no source was handed out while opens failed"
        h.sources.refuse = 0
        await until(lambda: len(h.sources.made) == 2, "the successful reopen")
        new = h.sources.current
        assert new.config.resume is not None and new.config.resume.offset == 2
        assert h.sources.made[0].closed
        new.push(MEMCG_OOM, first_offset=2)
        await until(lambda: h.agent.pipeline.stats.records_read == 15, "reading after the reopen")
        assert h.agent.queries.status(light=True).source_healthy
    finally:
        await h.agent.stop()


async def test_an_unreadable_source_falls_back_and_without_fallback_is_fatal(
    tmp_path: Path,
) -> None:
    from kernbot.agent.sources import SourceUnavailable

    sources = FakeSources(unavailable={"fake"})
    h = make_agent(tmp_path / "a", sources=sources, fallback_source="fake:2")
    await h.agent.start()
    try:
        assert h.agent.source_spec == "fake:2" and sources.specs == ["fake", "fake:2"]
    finally:
        await h.agent.stop()
    alone = make_agent(tmp_path / "b", sources=FakeSources(unavailable={"fake"}))
    with pytest.raises(SourceUnavailable):
        await alone.agent.start()
    await alone.agent.stop()


async def test_kills_vmstat_counted_that_no_log_showed_become_one_event(tmp_path: Path) -> None:
    """The captured /proc says 2 OOM kills this boot; on a first start with an empty log those
    are older than the agent: one `missing_from_log` event, kept as history (no alert)."""
    h = make_agent(tmp_path, source="kmsg")  # a source that sees every line, so reconciled
    await h.agent.start()
    try:
        for _ in range(3):
            await h.agent.reconcile()
        (ev,) = ooms(h)
        assert ev["missing_from_log"] is True
        assert ev["context"]["missing_kills"] == 2
        assert ev["history"] is True
        h.sources.current.push(NOISE)
        await until(lambda: h.agent.pipeline.safe_position is not None, "a position")
    finally:
        await h.agent.stop()
    saved = json.loads((tmp_path / "position.json").read_text())
    assert saved["oom_kills_accounted"] == 2, "the kills are accounted across a restart"
