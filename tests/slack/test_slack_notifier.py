"""SlackNotifier against the fake Slack Web API: delivery, threads, updates, error translation."""

from __future__ import annotations

import socket

import pytest

from fakes.fake_fleet import sample_oom
from fakes.fake_slack import PERMALINK_BASE, FakeSlack
from kernbot.bot import render
from kernbot.bot.ports import AlertView, DeliveryError, Message, PostedRef
from kernbot.bot.slack_notifier import SlackNotifier


def notifier(slack: FakeSlack, **kwargs: object) -> SlackNotifier:
    opts: dict[str, object] = {"base_url": slack.base_url, "default_channel": "C0ALERTS"}
    opts.update(kwargs)
    token = str(opts.pop("token", slack.bot_token))
    return SlackNotifier(token, **opts)  # type: ignore[arg-type]


async def test_post_thread_reply_and_update(slack: FakeSlack) -> None:
    n = notifier(slack)
    alert = render.render_alert(AlertView(event=sample_oom()))
    ref = await n.post(None, alert)
    assert ref.channel == "C0ALERTS" and ref.ts
    reply = await n.post("C0OPS", Message(text="again"), thread=ref)
    assert reply.channel == "C0ALERTS" and reply.ts != ref.ts  # thread wins over channel
    await n.update(ref, Message(text="updated", blocks=alert.blocks[:2]))
    first, second = slack.messages
    assert first["ts"] == ref.ts and first["text"] == "updated" and first["edits"] == 1
    assert len(first["blocks"]) == 2
    assert second["thread_ts"] == ref.ts and second["text"] == "again"
    sent = slack.posted("chat.postMessage")[0]
    assert sent["unfurl_links"] is False and sent["blocks"] == alert.blocks
    await n.post_ephemeral("C0ALERTS", "U0ALICE", Message(text="only you"))
    assert slack.ephemerals[0]["user"] == "U0ALICE"


async def test_an_alert_gets_its_permalink_and_a_reply_does_not_ask(slack: FakeSlack) -> None:
    n = notifier(slack)
    ref = await n.post(None, Message(text="alert"))
    assert ref.permalink == f"{PERMALINK_BASE}C0ALERTS/p{ref.ts.replace('.', '')}"
    asked = slack.posted("chat.getPermalink")
    assert asked == [{"channel": "C0ALERTS", "message_ts": ref.ts}]
    reply = await n.post(None, Message(text="again"), thread=ref)
    assert reply.permalink is None and len(slack.posted("chat.getPermalink")) == 1


async def test_no_permalink_does_not_fail_the_post(slack: FakeSlack) -> None:
    """The message is in Slack: a refused chat.getPermalink must not make the bot post again."""
    n = notifier(slack)
    slack.fail("chat.getPermalink", error="message_not_found")
    ref = await n.post(None, Message(text="alert"))
    assert ref.ts and ref.permalink is None
    slack.fail("chat.getPermalink", status=500)
    ref2 = await n.post(None, Message(text="alert 2"))
    assert ref2.ts and ref2.permalink is None
    assert len(slack.messages) == 2


async def test_channel_by_name(slack: FakeSlack) -> None:
    ref = await notifier(slack).post("#ops", Message(text="hi"))
    assert ref.channel == "C0OPS"


async def test_rate_limit_gives_retry_after(slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(DeliveryError) as err:
        await notifier(slack).post(None, Message(text="x"))
    assert err.value.retry_after == 7.0 and not err.value.permanent
    assert (await notifier(slack).post(None, Message(text="x"))).ts  # next one goes through


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retryable(slack: FakeSlack, status: int) -> None:
    slack.fail("chat.postMessage", status=status)
    with pytest.raises(DeliveryError) as err:
        await notifier(slack).post(None, Message(text="x"))
    assert not err.value.permanent and err.value.retry_after is None
    assert str(status) in err.value.code


async def test_slow_slack_times_out_retryably(slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", delay=1.0)
    with pytest.raises(DeliveryError) as err:
        await notifier(slack, timeout_s=0.2).post(None, Message(text="x"))
    assert err.value.code == "timeout" and not err.value.permanent


@pytest.mark.parametrize(
    "error", ["not_authed", "account_inactive", "not_in_channel", "channel_not_found"]
)
async def test_permanent_errors(slack: FakeSlack, error: str) -> None:
    slack.fail("chat.postMessage", error=error)
    with pytest.raises(DeliveryError) as err:
        await notifier(slack).post(None, Message(text="x"))
    assert err.value.code == error and err.value.permanent


async def test_wrong_token_and_unknown_channel_from_the_fake_itself(slack: FakeSlack) -> None:
    with pytest.raises(DeliveryError) as err:
        await notifier(slack, token="xoxb-wrong").post(None, Message(text="x"))
    assert (err.value.code, err.value.permanent) == ("invalid_auth", True)
    with pytest.raises(DeliveryError) as err:
        await notifier(slack).post("C0NOPE", Message(text="x"))
    assert (err.value.code, err.value.permanent) == ("channel_not_found", True)
    with pytest.raises(DeliveryError) as err:
        await notifier(slack).update(PostedRef(channel="C0ALERTS", ts="1.2"), Message(text="x"))
    assert err.value.code == "message_not_found"


async def test_invalid_blocks_are_permanent(slack: FakeSlack) -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}
    with pytest.raises(DeliveryError) as err:
        await notifier(slack).post(None, Message(text="x", blocks=[header]))
    assert err.value.code == "invalid_blocks" and err.value.permanent


async def test_no_channel_anywhere_is_permanent(slack: FakeSlack) -> None:
    with pytest.raises(DeliveryError) as err:
        await notifier(slack, default_channel=None).post(None, Message(text="x"))
    assert err.value.permanent


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = SlackNotifier("xoxb-x", base_url=f"http://127.0.0.1:{port}/api", default_channel="C1")
    with pytest.raises(DeliveryError) as err:
        await n.post(None, Message(text="x"))
    assert err.value.code.startswith("network") and not err.value.permanent


async def test_console_notifier_prints_the_same_facts_without_terminal_escapes() -> None:
    import io

    from kernbot.bot.console_notifier import ConsoleNotifier
    from kernbot.core.alert import facts_of
    from kernbot.render_text import escape_terminal

    event = sample_oom(host="node-1")
    event.victim.comm = "\x1b]0;pwned\x07*x*<!channel>"
    out = io.StringIO()
    console = ConsoleNotifier(stream=out)
    ref = await console.post(None, render.render_alert(AlertView(event=event, kills_24h_host=2)))
    await console.post(None, Message(text="again"), thread=ref)
    await console.update(ref, Message(text="resolved"))
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;pwned\\x07*x*<!channel>" in text  # shown literally, readable
    assert "💀 OOM kill on node-1" in text and "  Host:" in text
    doc = render.render_alert(AlertView(event=event, kills_24h_host=2)).document
    assert doc is not None  # the console prints the document Slack's blocks were made from
    for label, value in facts_of(doc):
        assert f"  {label}:" in text and escape_terminal(value) in text
    assert "1974 on the memory cgroup's scale" in text and "oom_score_adj 916" in text
    assert "       $ kubectl -n payments describe pod ledger-7d9f8-x2k4q" in text
    assert "```" not in text and "*Host*" not in text  # no Block Kit or mrkdwn left over
    assert "  ↳ again" in text and "(update of alert 1)resolved" in text
    assert ref.channel == "console"


async def test_build_notifier_picks_slack_with_a_token(slack: FakeSlack) -> None:
    from kernbot.bot.console_notifier import ConsoleNotifier
    from kernbot.bot.notifiers import build_notifier
    from kernbot.settings import BotSettings

    assert isinstance(build_notifier(BotSettings(slack_bot_token=None)), ConsoleNotifier)
    settings = BotSettings(
        slack_bot_token=slack.bot_token, slack_api_url=slack.base_url, slack_channel="#ops"
    )
    chosen = build_notifier(settings)
    assert isinstance(chosen, SlackNotifier)
    assert (await chosen.post(None, Message(text="hi"))).channel == "C0OPS"
