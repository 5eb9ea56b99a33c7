"""OOM-risk episodes through the bot's store and outbox: one message per episode updated in
place (to "killed" at the end), the kill alert naming the warning, silences and routing."""

from __future__ import annotations

from bot_harness import FakeClock, Pipeline, RecordingNotifier, make_pipeline

from fakes.fake_fleet import sample_oom, sample_risk
from fakes.fake_slack import PERMALINK_BASE, FakeSlack
from kernbot.bot.alerts import parse_routes
from kernbot.bot.slack_notifier import SlackNotifier
from kernbot.bot.store import Database
from kernbot.core.events import OomRiskEvent
from kernbot.core.wire import EventBatch


async def send(p: Pipeline, *events: object) -> None:
    for event in events:
        await p.ingestor.events(EventBatch(host="x", events=[event]))


def step(ev: OomRiskEvent, **changes: object) -> OomRiskEvent:
    return ev.model_copy(update={"revision": ev.revision + 1, **changes}, deep=True)


async def test_one_message_per_episode_updated_to_killed(pipeline: Pipeline) -> None:
    start = sample_risk()
    await send(pipeline, start)
    await pipeline.drain()
    ongoing = step(start, state="ongoing", percent=97.0)
    killed = step(ongoing, state="killed", kill_id="b00t:4711")
    await send(pipeline, ongoing, killed)
    kill = sample_oom(id="b00t:4711", time="2021-12-20T09:15:00+00:00")
    kill.risk_id, kill.risk_started = start.id, start.started
    await send(pipeline, kill)
    await pipeline.drain()
    top = pipeline.notifier.top_level()
    assert len(top) == 2  # the warning and the kill alert, nothing per sample
    warning_ref = top[0][3]
    assert "at 93 % of 512.0 MiB" in top[0][1].text  # the notification's text
    last = [m for ref, m in pipeline.notifier.updates if ref == warning_ref][-1]
    assert "OOM killer struck" in str(last.blocks) and "b00t:4711" in str(last.blocks)
    # each points at the other: the channel (a link in Slack) and when it was posted
    assert "see the kill alert `b00t:4711` (posted in `C0ALERTS` at `" in str(last.blocks)
    assert "4 min earlier" in str(top[1][1].blocks) and "kernbot warned" in str(top[1][1].blocks)
    assert "(posted in `C0ALERTS` at `" in str(top[1][1].blocks)


async def test_warning_and_kill_alert_link_to_each_other_in_slack(
    db: Database, clock: FakeClock, slack: FakeSlack
) -> None:
    """Through the real SlackNotifier and the fake Slack: each message carries a link to the
    other, made from the permalink Slack gave for it (chat.getPermalink)."""
    notifier = SlackNotifier(slack.bot_token, base_url=slack.base_url, default_channel="C0ALERTS")
    p = make_pipeline(db, notifier, clock)  # type: ignore[arg-type]
    start = sample_risk()
    await send(p, start)
    await p.drain()
    killed = step(step(start, state="ongoing", percent=97.0), state="killed", kill_id="b00t:4711")
    kill = sample_oom(id="b00t:4711", time="2021-12-20T09:15:00+00:00")
    kill.risk_id, kill.risk_started = start.id, start.started
    await send(p, killed, kill)
    await p.drain()
    warning, alert = [m for m in slack.messages if not m["thread_ts"]]
    to_warning = f"<{PERMALINK_BASE}C0ALERTS/p{warning['ts'].replace('.', '')}|open it>"
    to_alert = f"<{PERMALINK_BASE}C0ALERTS/p{alert['ts'].replace('.', '')}|open it>"
    assert "kernbot warned" in str(alert["blocks"]) and to_warning in str(alert["blocks"])
    assert "OOM-killed after this warning" in str(warning["blocks"]), warning
    assert to_alert in str(warning["blocks"])
    assert len(slack.posted("chat.getPermalink")) == 2  # one per alert, none per update


async def test_silenced_pod_and_routed_kind(db: Database, clock: FakeClock) -> None:
    from kernbot.bot.service import FleetService

    routes = parse_routes([{"kind": "oom_risk", "channel": "C0RISK"}])
    notifier = RecordingNotifier()
    p = make_pipeline(db, notifier, clock, routes=routes, default_channel="C0ALERTS")
    svc = FleetService(db, None, clock=clock, notice_channel="C0ALERTS")  # type: ignore[arg-type]
    known = sample_risk()
    known.id, known.history = "b00t:risk:known", True
    await send(p, known)  # silence targets must name pods the bot knows
    await svc.silence("pod:payments/api-*", 3600, "U1")
    await send(p, sample_risk())  # payments/api-0: silenced
    other = sample_risk(host="k8s-node-18")
    other.id, other.kubernetes = "b00t:risk:other", None
    await send(p, other)
    await p.drain()
    assert p.ingestor.outcomes["silenced"] == 1
    # the silence itself is announced in the alert channel; the one risk alert is routed
    assert [c for c, *_ in notifier.top_level()] == ["C0ALERTS", "C0RISK"]


async def test_an_ended_episode_updates_its_message_in_slack(
    db: Database, clock: FakeClock, slack: FakeSlack
) -> None:
    """The issue: "an ended episode updates the message too" — the same Slack message, edited,
    says the risk is over with the level, the peak and when it ended; no Silence buttons."""
    notifier = SlackNotifier(slack.bot_token, base_url=slack.base_url, default_channel="C0ALERTS")
    p = make_pipeline(db, notifier, clock)  # type: ignore[arg-type]
    start = sample_risk()
    await send(p, start)
    await p.drain()
    ended = step(
        start,
        state="ended",
        percent=61.0,
        working_set_kb=int(512 * 1024 * 0.61),
        peak_percent=97.0,
        growth_kb_per_s=None,
        eta_s=None,
        ended="2021-12-20T09:31:00+00:00",
    )
    await send(p, ended)
    await p.drain()
    (msg,) = [m for m in slack.messages if not m["thread_ts"]]  # one message, edited
    assert msg["edits"] >= 1
    text = str(msg["blocks"])
    assert "back to 61 % of 512.0 MiB, peak 97 %: risk over" in msg["text"]
    assert "is back to 61 % of its 512.0 MiB limit (peak 97 %): the risk is over." in text
    assert "until `2021-12-20T09:31:00+00:00`" in text and "peak 97 %" in text
    assert "Time to limit" not in text and "Growth" not in text  # only while live
    assert "kernbot_silence" not in text
    assert "<!channel>" not in text  # the hostile container name stays inert


async def test_risk_warnings_are_under_storm_control(db: Database, clock: FakeClock) -> None:
    """Per-host cap: the fourth new episode within a minute is not posted on its own; the
    storm message counts it (as for kills). Updates of a posted episode are not new alerts."""
    from bot_harness import RecordingNotifier

    notifier = RecordingNotifier()
    p = make_pipeline(db, notifier, clock, host_alerts_per_min=3, fleet_burst_hosts=99)
    episodes = [
        sample_risk().model_copy(update={"id": f"b00t:risk:{n}", "cgroup": f"/system.slice/w{n}"})
        for n in range(5)
    ]
    for ev in episodes:
        ev.kubernetes = None
    await p.ingestor.events(EventBatch(host="k8s-node-17", events=episodes))
    await p.drain()
    top = [m.text for _, m, _, _ in notifier.top_level()]
    assert p.ingestor.outcomes["posted"] == 3 and p.ingestor.outcomes["capped"] == 2, top
    assert len(top) == 4 and "Alert storm from k8s-node-17: 2 more events" in top[-1], top
    await p.ingestor.events(
        EventBatch(host="k8s-node-17", events=[step(episodes[0], percent=95.0)])
    )
    assert p.ingestor.outcomes["capped"] == 2  # an update of a posted episode is not capped
