"""The kernel lab: real OOM kills, real SYN floods and real log daemons, on demand, for tests.

This is test scaffolding that makes the kernel produce the text kernbot must explain, so it never
imports kernbot. Everything needs root and a real kernel; call `require_root_kernel()` (or use the
`root_kernel` fixture) first and the test skips elsewhere with the reason.

- `lab.kmsg`: `KmsgTail` follows /dev/kmsg from "now"; `kmsg_since(seq)`.
- `lab.memcg`: `memcg_oom()` makes a memory cgroup OOM-kill a chosen victim.
- `lab.synflood`: `netns_pair()`, `syn_flood()`, `running_syn_flood()`.
- `lab.logdaemons`: `journald()`, `rsyslog()` make journalctl -k and a kern.log available.
- `lab.scan`: `run_scan()` runs `python -m kernbot scan --json` and parses its events.
- `lab.fixtures`: pytest fixtures (re-exported by tests/conftest.py).
"""
