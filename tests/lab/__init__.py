"""The kernel lab: real OOM kills, real SYN floods and real log daemons, on demand, for tests.

This is test scaffolding that makes the kernel produce the text kernbot must explain, so it never
imports kernbot. Everything needs root and a real kernel: use the `root_kernel` / `netns_ready`
fixtures (tests/conftest.py) or call `lab.privileges.require_root_kernel()` first, and the test
skips elsewhere with the reason. Other tests make OOMs and floods on the same machine at the
same time: pick your records by pid, cgroup or port, never by "the last one".

- `lab.memcg.memcg_oom(victim_comm=, trigger_comm=, bystander_comm=, limit_mb=64) -> OomResult`
  (cgroup as printed, victim/trigger pids and comms, limit_kb, seq_before, kill_line, records).
- `lab.synflood.syn_flood(family=, syncookies=, count=200) -> SynFloodResult` (listen_addr, port,
  kernel_line, netstat, seq_before); `running_syn_flood(...)` yields a `SynFlood` to keep going:
  `.send(n)`, `.start_sending(rate)`, `.stop_sending()`, `.netstat()`, `.listener_pid`,
  `.wait_kernel_line()`; `netns_pair()` for the namespaces alone.
- `lab.kmsg`: `KmsgTail` follows /dev/kmsg from now; `last_seq()`, `kmsg_since(seq)`,
  `kmsg_raw_since(seq)` (records as /dev/kmsg returns them, input for `kernbot scan -`).
- `lab.logdaemons`: `journald()` (so `journalctl -k` works), `rsyslog()` (yields a kern.log path).
- `lab.scan`: `run_scan(*args, stdin=)` runs `python -m kernbot scan --json`; `oom_events_for`,
  `syn_events_for` select one test's events.
- `lab.waiting.poll_until(check, timeout)`; `lab.fixtures`: the pytest fixtures.
"""
