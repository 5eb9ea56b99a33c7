"""`/oom HOST` answers carry the cause of each kill: from the agent's diagnosis, or worked out
by the bot from the kill's own lines when an older agent sent none."""

from __future__ import annotations

import json
from pathlib import Path

from fakes.fake_slack import validate_blocks
from kernbot.bot.ports import OomHostAnswer
from kernbot.bot.render_answers import render_oom_host
from kernbot.core.detector import detect
from kernbot.core.events import OomKillEvent
from kernbot.core.formats.reader import read_lines

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def _event(name: str) -> OomKillEvent:
    with (CORPUS / name).open(encoding="utf-8", errors="replace") as fh:
        return next(e for e in detect(read_lines(fh)) if isinstance(e, OomKillEvent))


def test_each_kill_in_the_answer_says_why() -> None:
    shmem = _event("oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt")
    old_agent = _event(
        "oom-el7-3.10.0-514-vendor-patched-k8s-cgroupfs-memcg-hybrid-oomkill-line.txt"
    )
    old_agent.diagnosis = []
    answer = OomHostAnswer(host="node-1", agent_reachable=True, events=[shmem, old_agent])
    msg = render_oom_host(answer)
    validate_blocks(msg.blocks)
    text = json.dumps(msg.blocks, ensure_ascii=False)
    assert "Why: the cgroup hit its memory+swap limit (34.0 GiB); shmem/tmpfs held" in text
    assert "Why: the cgroup hit its 3.0 GiB limit; kernel memory held 3.0 GiB (100%)." in text


def test_slack_alert_opens_with_why_and_the_bar() -> None:
    from kernbot.bot.ports import AlertView
    from kernbot.bot.render import render_alert

    ev = _event("oom-el7-3.10.0-514-vendor-patched-k8s-cgroupfs-memcg-hybrid-oomkill-line.txt")
    ev.victim.comm = "<!channel>"
    msg = render_alert(AlertView(event=ev))
    validate_blocks(msg.blocks)
    first = msg.blocks[1]["text"]["text"]
    assert first.startswith("*Why:* the cgroup hit its 3.0 GiB limit; kernel memory held 3.0 GiB")
    assert "\n`[▪▪▪▪▪▪▪▪▪▪▪▪▪▪▪▪▪▪▪▪] ▪ other 100% (of 3.0 GiB limit)`" in first
    assert "<!channel>" not in json.dumps(msg.blocks)
