"""The shipper against a real HTTP server on loopback (tests/fakes/fake_bot.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from fakes.fake_bot import FakeBot
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.outbox import Outbox, Queued
from kernbot.agent.shipper import MAX_POST_BYTES, Shipper, by_size
from kernbot.core.events import OomKillEvent


def _ev(seq: int, rev: int = 0) -> dict[str, object]:
    return OomKillEvent(id=f"boot:{seq}", seq=seq, revision=rev, boot_id="boot").model_dump(
        mode="json"
    )


def _shipper(box: Outbox, bot: FakeBot, token: str = "test-token") -> Shipper:
    return Shipper(
        box, bot_url=bot.url, token=token, host="h1", metrics=AgentMetrics(),
        timeout_s=2.0, backoff_base_s=0.05, backoff_cap_s=0.2,
    )  # fmt: skip


async def test_events_are_posted_with_the_token_and_leave_the_outbox(tmp_path: Path) -> None:
    bot = await FakeBot().start()
    box = Outbox(tmp_path / "o.db")
    try:
        box.put("boot:1", 0, "oom_kill", _ev(1))
        box.put("boot:2", 0, "oom_kill", _ev(2))
        ship = _shipper(box, bot)
        assert await ship.ship_once()
        assert [e["id"] for e in bot.events] == ["boot:1", "boot:2"]
        assert box.depth() == 0
        assert not box.put("boot:1", 0, "oom_kill", _ev(1))
        await ship.close()
    finally:
        await bot.stop()


async def test_a_bot_outage_keeps_events_queued_until_it_returns(tmp_path: Path) -> None:
    bot = await FakeBot().start()
    box = Outbox(tmp_path / "o.db")
    ship = _shipper(box, bot)
    task = asyncio.create_task(ship.run())
    try:
        await bot.down()
        box.put("boot:1", 0, "oom_kill", _ev(1))
        ship.wake()
        await asyncio.sleep(0.5)
        box.put("boot:2", 0, "oom_kill", _ev(2))
        ship.wake()
        await asyncio.sleep(0.3)
        assert bot.events == [] and box.depth() == 2 and ship.failures >= 2
        await bot.up()
        got = await bot.wait_for(lambda e: True, timeout=5, count=2)
        await asyncio.sleep(0.3)
        assert sorted(e["id"] for e in got) == ["boot:1", "boot:2"]
        assert len(bot.events) == 2, "each delivered once"
        assert ship.failures == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ship.close()
        await bot.stop()


async def test_wrong_token_is_retried_not_dropped(tmp_path: Path) -> None:
    bot = await FakeBot().start()
    box = Outbox(tmp_path / "o.db")
    try:
        box.put("boot:1", 0, "oom_kill", _ev(1))
        ship = _shipper(box, bot, token="wrong")
        assert not await ship.ship_once()
        assert bot.unauthorized == 1 and box.depth() == 1
        await ship.close()
    finally:
        await bot.stop()


async def test_a_rejected_event_is_dropped_and_the_rest_delivered(tmp_path: Path) -> None:
    bot = await FakeBot().start()
    box = Outbox(tmp_path / "o.db")
    try:
        box.put("boot:1", 0, "oom_kill", _ev(1))
        box.put("bad", 0, "oom_kill", {"kind": "not-a-kind"})
        box.put("boot:3", 0, "oom_kill", _ev(3))
        bot.status = 422
        ship = _shipper(box, bot)
        await ship.ship_once()
        assert box.depth() == 0 and box.counter("rejected") == 3
        bot.status = None
        box.put("boot:4", 0, "oom_kill", _ev(4))
        assert await ship.ship_once()
        assert [e["id"] for e in bot.events] == ["boot:4"]
        await ship.close()
    finally:
        await bot.stop()


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    box_metrics = AgentMetrics()
    ship = Shipper(
        Outbox.__new__(Outbox), bot_url=None, token=None, host="h", metrics=box_metrics,
        backoff_base_s=0.5, backoff_cap_s=30.0, rand=lambda: 1.0,
    )  # fmt: skip
    assert [ship.backoff(n) for n in (0, 1, 2, 3)] == [0.5, 1.0, 2.0, 4.0]
    assert ship.backoff(40) == 30.0
    ship._rand = lambda: 0.0
    assert ship.backoff(5) == 0.05


async def test_heartbeat_reaches_the_bot(tmp_path: Path) -> None:
    from kernbot.core.wire import Heartbeat

    bot = await FakeBot().start()
    try:
        ship = _shipper(Outbox(tmp_path / "o.db"), bot)
        hb = Heartbeat(host="h1", agent_version="0", source="kmsg", boot_id="b")
        assert await ship.heartbeat(hb)
        assert bot.heartbeats[0]["host"] == "h1"
        await ship.close()
    finally:
        await bot.stop()


async def test_an_event_refused_for_a_size_is_delivered_cut_to_fit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot refuses (422) an event whose pid is past int64 or whose line is longer than a
    kmsg record, which a garbled log line can make; the shipper does not drop the kill: it
    posts it once more with those values made to fit, and the rest of the batch goes through.
    What cannot be made to fit is dropped, counted and named in the log (not only counted);
    the events delivered one by one count as shipped."""
    caplog.set_level(logging.ERROR, logger="kernbot.agent.shipper")
    bot = await FakeBot().start()
    box = Outbox(tmp_path / "o.db")
    try:
        bad = _ev(2)
        bad["victim"] = {"pid": 10**25, "comm": "x"}
        bad["lines"] = ["l" * 9000, "kept"]
        box.put("boot:1", 0, "oom_kill", _ev(1))
        box.put("boot:2", 0, "oom_kill", bad)
        box.put("bad", 0, "oom_kill", {"kind": "not-a-kind"})  # cannot be made to fit
        ship = _shipper(box, bot)
        ship.failures = 3  # earlier rounds failed: the bot answering again resets the count
        assert await ship.ship_once()
        assert ship.failures == 0
        assert bot.refused >= 2
        got = {e["id"]: e for e in bot.events}
        assert sorted(got) == ["boot:1", "boot:2"]
        assert got["boot:2"]["victim"]["pid"] == 2**63 - 1
        assert got["boot:2"]["lines"] == ["l" * 8191 + "…", "kept"]
        assert box.depth() == 0 and box.counter("rejected") == 1
        dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(dropped) == 1 and dropped[0].startswith("bot rejected event bad (revision 0)")
        shipped = ship.metrics.registry.get_sample_value("kernbot_agent_events_shipped_total")
        assert shipped == 2
        await ship.close()
    finally:
        await bot.stop()


async def test_a_big_backlog_goes_out_in_bodies_the_bot_takes(tmp_path: Path) -> None:
    """After an outage the outbox holds hundreds of OOM reports of ~13 KB: `MAX_BATCH` of them
    in one POST is past what a bot takes (this fake one, as aiohttp by default: 1 MiB), which
    answered 413 and had every event posted on its own. Bodies of at most `MAX_POST_BYTES`
    (UTF-8: `é` is two bytes), in order, each event once."""
    bot = await FakeBot().start()
    box = Outbox(tmp_path / "o.db")
    try:
        for seq in range(200):
            ev = _ev(seq)
            ev["lines"] = [f"{seq} line {i} " + "é" * 30 for i in range(200)]
            box.put(f"boot:{seq}", 0, "oom_kill", ev)
        total = sum(len(q.text.encode()) for q in box.peek(500))
        assert total > 2 * (1 << 20)  # the whole backlog: more than twice the fake bot's limit
        ship = _shipper(box, bot)
        assert await ship.ship_once()
        assert [e["id"] for e in bot.events] == [f"boot:{seq}" for seq in range(200)]
        assert bot.posts <= total // MAX_POST_BYTES + 2, "bodies of about MAX_POST_BYTES"
        assert bot.refused == 0 and box.depth() == 0
        parts = by_size(box_items := [Queued(i, str(i), 0, "é" * 100) for i in range(10)], 450)
        assert [len(p) for p in parts] == [2, 2, 2, 2, 2]
        assert [q for p in parts for q in p] == box_items
        assert by_size([Queued(0, "big", 0, "x" * 999)], 10) == [[Queued(0, "big", 0, "x" * 999)]]
        await ship.close()
    finally:
        await bot.stop()
