"""Bounded input, never a 5xx: property-based requests against running processes.

Hypothesis posts random and mutated event batches and heartbeats to a running `kernbot bot`
(SQLite and PostgreSQL) and random queries to a running `kernbot agent`, over HTTP, with a fixed
budget (derandomized, so every run tries the same cases). Every answer must be below 500, the
process must stay up and its memory bounded. Bounds violations must be a 422 naming the field.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_processes import TOKEN, KernbotProcess, clean_env, free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.fake_fleet import sample_oom, sample_syn

BUDGET = 150
RSS_LIMIT_KB = 600_000
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
FUZZ = settings(
    max_examples=BUDGET,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INTS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 10**30, 2**31, -1, 0]),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "a\nb", "<!channel>", "\u2028", "x" * 70_000, "é" * 300]),
)
LEAF = st.one_of(st.none(), st.booleans(), INTS, st.floats(allow_nan=False), TEXT)
JSON = st.recursive(
    LEAF,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5), st.dictionaries(st.text(max_size=10), kids, max_size=5)
    ),
    max_leaves=20,
)


def _valid_batch() -> dict[str, Any]:
    events = [sample_oom().model_dump(mode="json"), sample_syn().model_dump(mode="json")]
    return {"version": 1, "host": "fuzz-host", "events": events}


def _valid_heartbeat() -> dict[str, Any]:
    return {"host": "fuzz-host", "agent_version": "1", "source": "kmsg", "records_read": 3}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _mutate(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = _mutate(doc[head], rest, value)
    return copy


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """A valid body with one to three values replaced (or a key added) at random."""
    doc: Any = base
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        if draw(st.booleans()) or not path:
            doc = _mutate(doc, path, draw(JSON))
        else:
            doc = _mutate(doc, path, draw(st.sampled_from([None, 2**64, -1, "", [], {}])))
    if isinstance(doc, dict) and draw(st.booleans()):
        doc = {**doc, draw(st.text(max_size=8)): draw(JSON)}
    return json.dumps(doc).encode()


RAW = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"{", b"[]", b"null", b'{"host": "h", "events": [{}]}', b"\xff\xfe"]),
)


class Served:
    def __init__(self, proc: KernbotProcess, port: int) -> None:
        self.proc, self.port = proc, port
        self.statuses: dict[int, int] = {}

    def request(self, method: str, path: str, body: bytes | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=HEADERS)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
        assert resp.status < 500, (resp.status, path, body[:300] if body else None, text[:500])
        return resp.status

    def rss_kb(self) -> int:
        assert self.proc.proc is not None
        for line in Path(f"/proc/{self.proc.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def assert_healthy(self) -> None:
        assert self.proc.proc is not None and self.proc.proc.poll() is None, self.proc.output()
        assert self.request("GET", "/healthz") == 200
        assert self.rss_kb() < RSS_LIMIT_KB, self.rss_kb()
        assert "Traceback" not in self.proc.stderr(), self.proc.stderr()[-3000:]


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    base = os.environ.get("KERNBOT_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("KERNBOT_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, make_url, text

    server = make_url(base)
    name = f"kernbot_fuzz_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def running(command: str, workdir: Path, **settings: str) -> Iterator[Served]:
    port = free_port()
    env = clean_env(
        KERNBOT_TOKEN=TOKEN,
        KERNBOT_LISTEN=f"127.0.0.1:{port}",
        KERNBOT_STATE_DIR=str(workdir / "state"),
        **settings,
    )
    proc = KernbotProcess(command, workdir, env, [port])
    proc.start()
    try:
        proc._wait_serving(30.0)
        yield Served(proc, port)
    finally:
        proc.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
def bot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    with contextlib.ExitStack() as stack:
        extra = {}
        if request.param == "postgres":
            extra["KERNBOT_DATABASE_URL"] = stack.enter_context(postgres_database())
        yield stack.enter_context(running("bot", tmp_path, **extra))


def test_bot_survives_random_and_mutated_bodies(bot: Served) -> None:
    batch, hb = _valid_batch(), _valid_heartbeat()
    assert bot.request("POST", "/v1/events", json.dumps(batch).encode()) == 200
    comm = _mutate(batch, ("events", 0, "victim", "comm"), "a\x00b")
    assert bot.request("POST", "/v1/events", json.dumps(comm).encode()) == 200  # kept as sent
    for field in (("events", 0, "id"), ("events", 0, "kubernetes", "namespace")):
        nul = _mutate(batch, field, "x\x00")  # keys PostgreSQL text cannot hold: refused
        assert bot.request("POST", "/v1/events", json.dumps(nul).encode()) == 422

    @FUZZ
    @given(
        st.one_of(
            st.tuples(st.just("/v1/events"), mutated(batch)),
            st.tuples(st.just("/v1/heartbeat"), mutated(hb)),
            st.tuples(st.sampled_from(["/v1/events", "/v1/heartbeat"]), RAW),
        )
    )
    def one(case: tuple[str, bytes]) -> None:
        bot.request("POST", case[0], case[1])

    one()
    bot.assert_healthy()
    print("bot answers by status:", bot.statuses, "rss kB:", bot.rss_kb())
    # the accept path is exercised too; a typed context makes most mutations a 422
    assert bot.statuses.get(200, 0) >= 5 and bot.statuses.get(422, 0) > 10, bot.statuses


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        (("events", 0, "revision"), 2**63, "revision"),
        (("events", 0, "revision"), -1, "revision"),
        (("events", 0, "victim", "pid"), 10**30, "victim.pid"),
        (("host",), "h" * 3_900_000, "host"),
        (("events", 0, "victim", "comm"), "c" * 65, "victim.comm"),
        (("events", 0, "memcg", "task_path"), "/" + "p" * 4096, "memcg.task_path"),
        (("events", 0, "lines"), ["x"] * 401, "lines"),
        (("events", 0, "lines", 0), "l" * 8193, "lines.0"),
        (("events", 0, "host"), "a\nb", "host"),
    ],
)
def test_bounds_are_422_naming_the_field(
    tmp_path: Path, field: tuple[Any, ...], value: Any, named: str
) -> None:
    with running("bot", tmp_path, KERNBOT_MAX_BODY_BYTES=str(8 * 1024 * 1024)) as bot:
        body = json.dumps(_mutate(_valid_batch(), field, value)).encode()
        conn = http.client.HTTPConnection("127.0.0.1", bot.port, timeout=30)
        try:
            conn.request("POST", "/v1/events", body=body, headers=HEADERS)
            resp = conn.getresponse()
            answer = json.loads(resp.read())
        finally:
            conn.close()
        assert resp.status == 422, answer
        assert any(named in p for p in answer["problems"]), answer


def test_agent_survives_random_queries(tmp_path: Path) -> None:
    with running("agent", tmp_path, KERNBOT_SOURCE="stdin", KERNBOT_HOSTNAME="fuzz-agent") as a:
        params = st.dictionaries(
            st.sampled_from(["since", "n", "lines", "grep", "x", ""]),
            st.one_of(TEXT.filter(lambda t: len(t) < 300), INTS.map(str)),
            max_size=4,
        )

        @FUZZ
        @given(
            st.sampled_from(
                ["/v1/oom", "/v1/syn", "/v1/top", "/v1/dmesg", "/v1/status", "/metrics", "/x"]
            ),
            params,
        )
        def one(path: str, query: dict[str, str]) -> None:
            from urllib.parse import urlencode

            a.request("GET", f"{path}?{urlencode(query)}")

        one()
        a.assert_healthy()
        print("agent answers by status:", a.statuses, "rss kB:", a.rss_kb())
        assert a.statuses.get(200, 0) > 10, a.statuses
