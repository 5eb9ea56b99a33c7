"""vmstat oom_kill reconciliation: kills counted by the kernel but never seen in the log."""

from __future__ import annotations

from kernbot.core.oom.reconcile import OomReconciler


def test_a_deficit_that_persists_for_two_samples_becomes_one_event() -> None:
    rec = OomReconciler("h", "boot", accounted=5)
    assert rec.check(5, now=1.0, busy=False) is None
    assert rec.check(7, now=2.0, busy=False) is None, "first sight may be a kill in flight"
    ev = rec.check(7, now=3.0, busy=False)
    assert ev is not None and ev.missing_from_log and not ev.complete
    assert ev.context.missing_kills == 2 and ev.id == "boot:vmstat-oom-kill:7"
    assert not ev.context.before_first_start
    assert rec.check(7, now=4.0, busy=False) is None


def test_kills_seen_in_the_log_close_the_gap() -> None:
    rec = OomReconciler("h", "boot", accounted=5)
    assert rec.check(6, now=1.0, busy=False) is None
    rec.saw_kills(1)
    assert rec.check(6, now=2.0, busy=False) is None
    assert rec.accounted == 6


def test_nothing_is_concluded_while_a_report_is_being_assembled() -> None:
    rec = OomReconciler("h", "boot", accounted=0)
    assert rec.check(1, now=1.0, busy=True) is None
    assert rec.check(1, now=2.0, busy=True) is None
    rec.saw_kills(1)
    assert rec.check(1, now=3.0, busy=False) is None


def test_first_start_marks_kills_older_than_the_agent() -> None:
    rec = OomReconciler("h", "boot", accounted=None)
    rec.saw_kills(2)  # the backlog showed two
    assert rec.check(3, now=1.0, busy=False) is None
    ev = rec.check(3, now=2.0, busy=False)
    assert ev is not None and ev.context.before_first_start is True
    assert ev.context.missing_kills == 1
