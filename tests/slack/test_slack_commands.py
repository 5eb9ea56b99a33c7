"""Slash command parsing and answers, without HTTP: durations, access rules, every subcommand."""

from __future__ import annotations

import asyncio

import pytest

from fakes.fake_fleet import FakeFleet
from kernbot.bot import commands
from kernbot.bot.ports import Message, TopAnswer
from kernbot.settings import BotSettings


def shown(message: Message) -> str:
    return (
        message.text
        + "\n"
        + "\n".join(str(b.get("text", {}).get("text", "")) for b in message.blocks)
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("45s", 45),
        ("1w", 604800),
        (" 2H ", 7200),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert commands.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "2", "h", "-1h", "1.5h", "2h foo", "0m", "31d"])
def test_bad_durations_say_how(text: str) -> None:
    with pytest.raises(commands.UsageError) as err:
        commands.parse_duration(text)
    assert "30m" in str(err.value) or "30 days" in str(err.value)


def test_access_rules() -> None:
    everyone = BotSettings()
    assert commands.is_allowed(everyone, "U1", "C1")
    only = BotSettings(allowed_users=["U1"], allowed_channels=["C1"])
    assert commands.is_allowed(only, "U1", "C1")
    assert not commands.is_allowed(only, "U2", "C1")
    assert not commands.is_allowed(only, "U1", "C2")
    assert not commands.is_allowed(only, None, None)


async def test_each_command_asks_the_right_question() -> None:
    fleet = FakeFleet()
    cases = [
        ("/oom", "", ("oom_fleet", (86400.0,))),
        ("/oom", "edge-3", ("oom_host", ("edge-3",))),
        ("/synflood", "edge-3", ("syn_host", ("edge-3",))),
        ("/kernbot", "hosts", ("hosts", ())),
        ("/kernbot", "risks", ("risks_fleet", ())),
        ("/kernbot", "top edge-3", ("top", ("edge-3", 10))),
        ("/kernbot", "dmesg edge-3", ("dmesg", ("edge-3", None, 50))),
        ("/kernbot", "dmesg edge-3 " + "x" * 500, ("dmesg", ("edge-3", "x" * 100, 50))),
        (
            "/kernbot",
            "silence pod:payments/ledger 30m",
            ("silence", ("pod:payments/ledger", 1800.0, "U1")),
        ),
    ]
    for command, text, call in cases:
        admin = commands.Access(admin_users=frozenset({"U1"}))
        await commands.answer(command, text, fleet, user_id="U1", access=admin)
        assert fleet.calls[-1] == call, (command, text)


async def test_failures_become_sentences() -> None:
    fleet = FakeFleet()
    assert "Did you mean `edge-3`" in shown(await commands.answer("/oom", "edge3", fleet))
    assert "Usage: `/kernbot silence" in shown(
        await commands.answer("/kernbot", "silence x", fleet)
    )
    assert "Which host?" in shown(await commands.answer("/kernbot", "top", fleet))
    assert "Unknown command" in shown(await commands.answer("/nope", "", fleet))
    assert "/oom HOST" in shown(await commands.answer("/kernbot", "", fleet))


class BrokenFleet(FakeFleet):
    async def top(self, host: str, n: int = 10) -> TopAnswer:
        raise RuntimeError("database is locked")


class StuckFleet(FakeFleet):
    async def top(self, host: str, n: int = 10) -> TopAnswer:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")


async def test_errors_and_timeouts_never_escape() -> None:
    broken = await commands.answer("/kernbot", "top edge-3", BrokenFleet())
    assert "went wrong" in shown(broken) and "database" not in shown(broken)
    stuck = await commands.answer("/kernbot", "top edge-3", StuckFleet(), timeout_s=0.2)
    assert "took too long" in shown(stuck)


async def test_risks_fleet_wide_worst_first_and_on_oom_host() -> None:
    fleet = FakeFleet()
    said = shown(await commands.answer("/kernbot", "risks", fleet, user_id="U1"))
    assert "OOM risks across the fleet: 2" in said
    assert said.index("k8s-node-18") < said.index("k8s-node-17")  # 97 % and 1 min first
    assert "`payments/api-0 (&lt;!channel&gt;)` at 97 % of its 512.0 MiB limit" in said
    assert "the limit in ~60 s" in said
    assert "<!channel>" not in said
    host = shown(await commands.answer("/oom", "edge-3", fleet, user_id="U1"))
    assert "At risk of OOM now* (1)" in host and "at 93 % of its 512.0 MiB limit" in host
    assert "<!channel>" not in host
