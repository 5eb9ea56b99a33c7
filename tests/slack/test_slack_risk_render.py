"""The OOM-risk warning as Slack shows it: the issue's headline, inert hostile names, valid
Block Kit, the killed state pointing at the kill, and the kill alert saying it was warned."""

from __future__ import annotations

from fakes.fake_fleet import sample_oom, sample_risk
from fakes.fake_slack import validate_blocks
from kernbot.bot import render
from kernbot.bot.ports import AlertView, Message
from kernbot.core.advice import advise
from kernbot.core.events import TopProcess


def shown(message: Message) -> str:
    out = [message.text]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return "\n".join(out)


def test_start_warning_reads_like_the_issue_and_is_inert() -> None:
    ev = sample_risk()
    ev.top = [TopProcess(pid=4242, comm="<!here> `rm -rf`", rss_kb=400_000)]
    ev.advice = advise(ev)
    msg = render.render_alert(AlertView(event=ev))
    assert validate_blocks(msg.blocks) == []
    text = shown(msg)
    assert "⚠️ payments/api-0 (&lt;!channel&gt;) at 93 % of 512.0 MiB, +11.7 MiB/min" in text
    assert "limit in" in text and "4 min" in text
    assert "<!channel>" not in text and "<!here>" not in text
    assert "Raise the limit to" in text  # advice with the limit the trend needs
    assert any(b.get("block_id") == "kernbot_silence" for b in msg.blocks)


def test_killed_update_points_at_the_kill_and_drops_the_buttons() -> None:
    ev = sample_risk()
    ev.state, ev.kill_id, ev.revision = "killed", "b00t:4711", 2
    msg = render.render_alert(AlertView(event=ev))
    assert validate_blocks(msg.blocks) == []
    text = shown(msg)
    assert "OOM killer struck" in text and "b00t:4711" in text
    assert not any(b.get("block_id") == "kernbot_silence" for b in msg.blocks)


def test_kill_alert_says_how_long_before_it_was_warned() -> None:
    kill = sample_oom()
    kill.time = "2021-12-20T09:15:00+00:00"
    kill.risk_id, kill.risk_started = "b00t:risk:1", "2021-12-20T09:11:00+00:00"
    text = shown(render.render_alert(AlertView(event=kill)))
    assert "kernbot warned ∼4 min earlier" in text or "kernbot warned ~4 min earlier" in text


async def test_kernbot_up_terminal_prints_the_warning_and_its_update() -> None:
    """`kernbot up` without Slack: the console notifier prints the warning, then the update."""
    import io

    from kernbot.bot.console_notifier import ConsoleNotifier

    ev = sample_risk(host="node-1")
    out = io.StringIO()
    console = ConsoleNotifier(stream=out)
    ref = await console.post(None, render.render_alert(AlertView(event=ev)))
    ev.state, ev.kill_id = "killed", "b00t:4711"
    await console.update(ref, render.render_alert(AlertView(event=ev)))
    text = out.getvalue()
    print(text)
    assert "⚠️ payments/api-0 (<!channel>) at 93 % of 512.0 MiB" in text
    assert "(update of alert 1)" in text and "OOM killer struck" in text
