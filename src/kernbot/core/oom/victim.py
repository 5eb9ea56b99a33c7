"""The killed process as one `Victim`, merged from every line of a report that names it.

The kill line has the memory numbers, the task table row has uid/adj/pgtables on kernels whose
kill line lacks them, old kernels print the victim only in `Kill process … score`, and a
fragment may hold nothing but the `oom-kill:` summary or the reaper line. Later sources fill only
what earlier ones left empty.
"""

from __future__ import annotations

from kernbot.core.bounds import clip_comm
from kernbot.core.events import Task, Victim, validated
from kernbot.core.oom import lines as ol
from kernbot.core.oom.era import normalised_3x
from kernbot.core.oom.report_state import ReportState
from kernbot.core.oom.score import oom_score


def pgtables_fixed(killed: ol.Killed, row: Task | None) -> tuple[int | None, bool]:
    """Undo 5.4.0's `pgtables:` printed in bytes but labelled kB.

    Rule: when the victim's table row is known, the kill line's number equals that row's
    pgtables_bytes; otherwise page tables larger than total_vm/64 + 1 MiB are impossible
    (they map total_vm at ~1/512 of its size), so the number must be bytes.
    """
    kb = killed.pgtables_kb
    if kb is None or kb == 0:
        return kb, False
    if row is not None and row.pgtables_kb is not None:
        if kb != row.pgtables_kb and kb // 1024 == row.pgtables_kb:
            return kb // 1024, True
        return kb, False
    if killed.total_vm_kb is not None and kb > killed.total_vm_kb // 64 + 1024:
        return kb // 1024, True
    return kb, False


def victim(
    r: ReportState, era: str | None, totalpages: int | None, rows: dict[int, Task]
) -> Victim:
    """The main victim: from the kill line, else `Kill process`, reaper or `oom-kill:` line.

    Each field is worked out first and the `Victim` made once, as validation would make it
    (`events.validated`; a `Victim()` then a dozen assignments, each through pydantic's
    `__setattr__`, cost ~3 us)."""
    pid: int | None = None
    comm: str | None = None
    uid: int | None = None
    total_vm: int | None = None
    anon: int | None = None
    file: int | None = None
    shmem: int | None = None
    adj: int | None = None
    pgtables: int | None = None
    printed: int | None = None
    score: int | None = None
    labelled = False
    k, kp, ok, rp = r.killed, r.kill_process, r.oom_kill, r.reaper
    if k is not None:
        pid, comm, uid = k.pid, k.comm, k.uid
        total_vm, anon, file, shmem = k.total_vm_kb, k.anon_rss_kb, k.file_rss_kb, k.shmem_rss_kb
        adj = k.oom_score_adj
        pgtables, labelled = pgtables_fixed(k, rows.get(k.pid))
    elif kp is not None:
        pid, comm = kp.pid, kp.comm
    elif rp is not None:
        pid, comm = rp.pid, rp.comm
    elif ok is not None and ok.pid is not None:
        pid, comm = ok.pid, ok.task
    if ok is not None and ok.pid == pid and uid is None:
        uid = ok.uid
    if kp is not None and kp.score is not None and kp.pid == pid:
        # `Kill process P … score N or sacrifice child` then `Killed process C`: N is P's score.
        printed = kp.score
    row = rows.get(pid) if pid is not None else None
    if row is not None:
        if uid is None:
            uid = row.uid
        if adj is None:
            adj = row.oom_score_adj
        if comm is None:
            comm = row.name
        if pgtables is None:
            pgtables = row.pgtables_kb
        score = row.oom_score
    elif pid is not None and anon is not None:
        score = oom_score(
            era=era,
            rss_kb=anon + (file or 0) + (shmem or 0),
            pgtables_kb=pgtables or 0,
            oom_score_adj=adj or 0,
            totalpages=totalpages,
            normalised_3x=normalised_3x(r),
        )
    fields = {
        "pid": pid,
        "comm": clip_comm(comm) if comm is not None else None,  # what its `Comm` type does
        "uid": uid,
        "total_vm_kb": total_vm,
        "anon_rss_kb": anon,
        "file_rss_kb": file,
        "shmem_rss_kb": shmem,
        "pgtables_kb": pgtables,
        "oom_score_adj": adj,
        "oom_score": score,
        "printed_score": printed,
        "pgtables_bytes_labelled_kb": labelled,
    }
    return validated(Victim, fields)


def killed_victim(k: ol.Killed) -> Victim:
    """A memory.oom.group victim: only its own kill line is known."""
    return Victim(
        pid=k.pid,
        comm=k.comm,
        uid=k.uid,
        total_vm_kb=k.total_vm_kb,
        anon_rss_kb=k.anon_rss_kb,
        file_rss_kb=k.file_rss_kb,
        shmem_rss_kb=k.shmem_rss_kb,
        pgtables_kb=k.pgtables_kb,
        oom_score_adj=k.oom_score_adj,
    )
