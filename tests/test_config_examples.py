"""The commented examples in config/ load into the real settings models, and a bad value gets
one clear message per field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernbot.settings import AgentSettings, BotSettings, SettingsError, UpSettings, load_settings

CONFIG = Path(__file__).resolve().parent.parent / "config"


def test_agent_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERNBOT_SOURCE", raising=False)
    s = load_settings(AgentSettings, CONFIG / "agent.yaml")
    assert s.bot_url == "http://127.0.0.1:9100"
    assert s.source == "kmsg"
    assert s.outbox_max == 10000
    assert s.risk_sample_interval_s == 5 and s.risk_percent == 90
    assert str(s.cgroup_root) == "/sys/fs/cgroup"


def test_bot_example_loads() -> None:
    s = load_settings(BotSettings, CONFIG / "bot.yaml")
    assert s.slack_channel == "#kernel-alerts"
    assert s.routes[0] == {"host": "db-*", "channel": "#dba-oncall"}
    assert s.stale_after_s == 180


def test_up_example_loads() -> None:
    s = load_settings(UpSettings, CONFIG / "up.yaml")
    assert s.agent_listen == "127.0.0.1:9101"


def test_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNBOT_SOURCE", "journal")
    assert load_settings(AgentSettings, CONFIG / "agent.yaml").source == "journal"


def test_invalid_values_give_one_message_per_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("outbox_max: lots\nheartbeat_interval_s: soon\n")
    with pytest.raises(SettingsError) as err:
        load_settings(AgentSettings, bad)
    assert len(err.value.problems) == 2
    assert any(p.startswith("outbox_max:") for p in err.value.problems)


def test_missing_and_malformed_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"nope\.yaml"):
        load_settings(BotSettings, tmp_path / "nope.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(BotSettings, bad)
