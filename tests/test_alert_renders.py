"""One alert document, two renders: Slack (Block Kit) and the terminal show the same facts.

Every corpus event goes through the real renderers; the facts are read back out of each render
independently (Block Kit fields; the terminal's `Label: value` lines) and compared, with the
headline and title. Then hostile comms, and what the agent adds (PSI, who is next).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from fakes.fake_fleet import sample_oom
from fakes.fake_slack import validate_blocks
from kernbot.bot import render
from kernbot.bot.ports import AlertView, Message
from kernbot.core.alert import build_alert, plain_text
from kernbot.core.context import OomContext
from kernbot.core.detector import detect
from kernbot.core.events import Event, OomKillEvent
from kernbot.core.formats.reader import read_lines
from kernbot.render_text import escape_terminal, render_document

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
FILES = sorted(CORPUS.glob("*.txt"))
HOSTILE = ["<!channel>", "`rm -rf /`", "*bold*", "_node_exporter_", "a&b<c>"]
_FACT_LINE = re.compile(r"^  ([^ :][^:]*):\s+(.*)$")


def events_of(path: Path) -> list[Event]:
    return list(detect(read_lines(path.read_text(errors="replace").splitlines())))


def _from_mrkdwn(text: str) -> str:
    """What a reader sees in Slack: code-span backticks and bold markers gone, entities decoded."""
    text = re.sub(r"`([^`]*)`|\*([^*`]+)\*", lambda m: m.group(1) or m.group(2) or "", text)
    text = text.replace("\u02cb", "`")
    return html.unescape(text)


def slack_facts(message: Message) -> list[tuple[str, str]]:
    out = []
    for block in message.blocks:
        for field in block.get("fields", []):
            m = re.match(r"\*(.+?)\*\n(.*)", field["text"], re.S)
            assert m is not None, field
            out.append((html.unescape(m.group(1)), _from_mrkdwn(m.group(2))))
    return out


def terminal_facts(text: str, skip: int = 0) -> list[tuple[str, str]]:
    """The facts after the title, the `skip` Why/bar lines and the headline."""
    out = []
    for line in text.splitlines()[2 + skip :]:
        m = _FACT_LINE.match(line)
        if m is None:
            break
        out.append((m.group(1), m.group(2)))
    return out


def both(event: Event, **view: Any) -> tuple[Message, str]:
    message = render.render_alert(AlertView(event=event, **view))
    assert message.document is not None
    return message, render_document(message.document)


def assert_same_facts(event: Event) -> None:
    message, text = both(event)
    assert validate_blocks(message.blocks) == []
    doc = message.document
    assert doc is not None
    expected = [(f.label, escape_terminal(plain_text(f.value))) for f in doc.facts]
    assert terminal_facts(text, len(doc.why)) == expected
    assert [(k, escape_terminal(v)) for k, v in slack_facts(message)] == expected
    header = message.blocks[0]["text"]["text"]
    assert escape_terminal(html.unescape(header)) == text.splitlines()[0]
    skip = len(doc.why)
    if skip:  # the Why line, the bar and the pattern: one section in Slack, lines on a terminal
        why = _from_mrkdwn(message.blocks[1]["text"]["text"])
        why_lines = [escape_terminal(line) for line in why.split("\n")]
        assert why_lines == text.splitlines()[1 : 1 + skip]
    headline = _from_mrkdwn(message.blocks[1 + bool(skip)]["text"]["text"])
    assert escape_terminal(headline) == text.splitlines()[1 + skip]
    shown = "\n".join([text.split("  advice")[0], *(v for _, v in slack_facts(message))])
    assert not re.search(r"\bNone\b|\?\)|\(\?|: \?|\?/", shown), shown
    assert "(1 tasks)" not in shown
    for advice in event.advice:
        for command in advice.commands:
            assert "None" not in command and "'?'" not in command and "?'" not in command
            assert not re.search(r"<[a-z-]+>", command), f"a placeholder in {command!r}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_corpus_event_shows_the_same_facts_in_slack_and_terminal(path: Path) -> None:
    for event in events_of(path):
        assert_same_facts(event)


@pytest.mark.parametrize("comm", HOSTILE)
def test_hostile_comms_render_inert_and_identical(comm: str) -> None:
    for path in FILES[:40]:
        for event in events_of(path):
            if isinstance(event, OomKillEvent) and event.victim.comm is not None:
                event.victim.comm = comm
                event.host = comm
                assert_same_facts(event)
                message, text = both(event)
                body = (
                    "\n".join(f["text"] for b in message.blocks for f in b.get("fields", []))
                    + message.blocks[1]["text"]["text"]
                )
                assert "<!" not in body and "<c>" not in body
                outside = re.sub(r"`[^`]*`", "", body)
                assert comm not in outside, "a host value outside a code span"
                if not set(comm) & set("`<>&"):
                    assert f"`{comm}`" in body  # intact: no look-alikes inside code spans
                assert comm in text


def test_partial_report_says_what_it_carries_and_no_placeholder() -> None:
    """node-problem-detector's e2e test writes just these two lines."""
    lines = [
        "Kill process 1012 (heapster) score 1035 or sacrifice child",
        "Killed process 1012 (heapster) total-vm:327128kB, anon-rss:306328kB, file-rss:0kB, "
        "shmem-rss:0kB",
    ]
    (event,) = detect(read_lines(lines))
    assert_same_facts(event)
    _, text = both(event)
    assert "anon-rss 299.1 MiB, file-rss 0 KiB, shmem-rss 0 KiB, total-vm 319.5 MiB" in text
    assert "the kernel printed score 1035" in text
    assert "hit its limit" not in text and "the whole host ran out" not in text
    assert "systemd-cgls" not in text and "/sys/fs/cgroup" not in text


def test_who_is_next_and_psi_are_shown_when_the_agent_sent_them() -> None:
    event = sample_oom()
    event.context = OomContext.model_validate(
        {
            "psi": {"some": {"avg10": 12.5, "avg60": 8.0, "avg300": 2.0}, "full": {"avg10": 3.1}},
            "meminfo": {"MemTotal": 33554432, "MemAvailable": 1048576},
            "top_oom_score": [
                {"pid": 4242, "comm": "node_exporter", "oom_score": 668, "rss_kb": 20480},
                {"pid": 1, "comm": "systemd", "oom_score": 0, "oom_score_adj": 0},
            ],
        }
    )
    message, text = both(event, kills_24h_host=2)
    slack = "\n".join(
        [b.get("text", {}).get("text", "") for b in message.blocks]
        + [f["text"] for b in message.blocks for f in b.get("fields", [])]
    )
    for render_ in (text, slack):
        assert "Who is next (highest oom_score now, on the /proc/PID/oom_score scale)" in render_
        assert "node_exporter" in render_  # intact, no look-alike
        assert "PSI memory some 12.50 % / 8.00 % / 2.00 %, full 3.10 %" in render_
        assert "MemAvailable 1.0 GiB of 32.0 GiB" in render_
        assert "on the memory cgroup's scale" in render_  # the victim's score, named as such
    assert_same_facts(event)


def test_unresolved_pod_name_and_panic_say_what_is_known() -> None:
    event = sample_oom()
    assert event.kubernetes is not None
    event.kubernetes.namespace = event.kubernetes.pod = event.kubernetes.container = None
    _, text = both(event)
    assert f"uid {event.kubernetes.pod_uid}, name not resolved (QoS burstable)" in text
    panic = OomKillEvent(host="h", panic=True, global_oom=True)
    message, text = both(panic)
    assert "No process was killed: the kernel panicked" in text
    assert "Killed:" not in text and "None" not in message.model_dump_json()


def test_every_alert_document_renders_the_same_in_both(tmp_path: Path) -> None:
    """The document is built once: rendering it twice gives the same result (no hidden state)."""
    event = sample_oom()
    assert build_alert(event) == build_alert(event)


def test_oom_and_synflood_answers_follow_the_same_rules() -> None:
    from kernbot.bot import render_answers
    from kernbot.bot.ports import OomHostAnswer, SynHostAnswer
    from kernbot.core.context import ProcInfo, Psi
    from kernbot.core.events import SynFloodEvent

    panic = OomKillEvent(host="h", panic=True, global_oom=True, time="2024-01-01T00:00:00Z")
    partial = events_of(CORPUS / "oom-rhel6-2.6.32-573-killed-process-UID-variant-line.txt")[0]
    answer = OomHostAnswer(
        host="node_exporter-1",
        agent_reachable=True,
        events=[sample_oom(), panic, partial],
        top=[ProcInfo(pid=7, comm="node_exporter")],
        meminfo={"MemTotal": 2048},
        psi=Psi.model_validate({"some": {"avg10": 1.0}}),
    )
    message = render_answers.render_oom_host(answer)
    body = "\n".join(
        [b.get("text", {}).get("text", "") for b in message.blocks]
        + [e["text"] for b in message.blocks for e in b.get("elements", []) if "text" in e]
    )
    assert "None" not in body and "?" not in body.replace("Who is next", "")
    assert "no process was killed: the kernel panicked" in body
    assert "`node_exporter-1`" in body and "node_exporter" in body  # intact identifiers
    assert "on the memory cgroup's scale" in body and "PSI memory some 1.00 %" in body
    assert "MemAvailable" not in body  # not known: not shown
    syn = SynHostAnswer(host="h", agent_reachable=True, events=[SynFloodEvent(port=80)])
    text = "\n".join(
        b.get("text", {}).get("text", "") for b in render_answers.render_syn_host(syn).blocks
    )
    assert "None" not in text and "?" not in text and "`port 80` SYN cookies" in text


def test_no_command_with_a_placeholder_when_the_port_is_not_known() -> None:
    from kernbot.core.advice import advise
    from kernbot.core.context import SynContext
    from kernbot.core.events import SynFloodEvent

    event = SynFloodEvent(host="h", context=SynContext(source="counters", verdict="attack"))
    event.advice = advise(event)
    assert event.advice and all(
        "None" not in c and "<" not in c for a in event.advice for c in a.commands
    )
    assert_same_facts(event)


def test_a_kind_without_a_builder_still_renders_what_every_event_carries() -> None:
    """A newer agent's kind (here `swap_storm`, built unvalidated) gets a plain document."""
    event = OomKillEvent.model_construct(kind="swap_storm", host="db-1", time="2024-05-01T10:00Z")  # type: ignore[arg-type]
    doc = build_alert(event)
    assert doc.title == "swap storm on db-1"
    assert [f.label for f in doc.facts] == ["Host", "When"]
    message = render.to_message(doc)
    assert validate_blocks(message.blocks) == [] and "swap_storm" in render_document(doc)


def test_diagnosis_is_shown_first_and_inert() -> None:
    from kernbot.core.events import Finding

    event = sample_oom()
    event.diagnosis = [
        Finding(cause="memcg_limit", summary="the cgroup *x* <!channel> used 31 of 32 GiB"),
        Finding(cause="one_process", summary="java held 1.9 GiB anon"),
    ]
    message, text = both(event)
    assert "  Likely cause\n    the cgroup *x* <!channel> used 31 of 32 GiB" in text
    section = next(b for b in message.blocks if "Likely cause" in b.get("text", {}).get("text", ""))
    assert "&lt;!channel&gt;" in section["text"]["text"] and "*x*" not in section["text"]["text"]
    assert_same_facts(event)
