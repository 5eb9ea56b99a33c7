"""Words for an `oom_risk` episode, shared by the Slack alert, the terminal and `/kernbot risks`.

Plain text: every name here can come from a cgroup path or a comm (hostile), so renderers escape
the result for their medium (Slack mrkdwn, terminal). Sizes in MiB, times in rounded minutes.
"""

from __future__ import annotations

from datetime import datetime

from kernbot.core.events import OomKillEvent, OomRiskEvent

MIB = 1024


def _mib(kb: float) -> str:
    """The alert document's one unit style (kernbot.core.alert.size): `512.0 MiB`."""
    from kernbot.core.units import size

    return size(int(kb))


def duration(seconds: float) -> str:
    """`~40 s`, `~4 min`, `~2 h`."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)} min"
    return f"~{round(seconds / 3600)} h"


def who(ev: OomRiskEvent) -> str:
    """`payments/api-0 (api)`, `container docker 0123456789ab`, `payments.service`, the host."""
    if ev.cgroup == "/":
        return f"host {ev.host or '?'}"
    k8s = ev.kubernetes
    if k8s is not None:
        if k8s.namespace and k8s.pod:
            name = f"{k8s.namespace}/{k8s.pod}"
            return f"{name} ({k8s.container})" if k8s.container else name
        pod = f"pod {k8s.pod_uid}" if k8s.pod_uid else "pod"
        return f"{pod} container {k8s.container_id[:12]}" if k8s.container_id else pod
    ct = ev.container
    if ct is not None:
        if ct.kind == "container" and ct.container_id:
            return f"{ct.runtime or 'container'} {ct.container_id[:12]}"
        if ct.kind == "lxc" and ct.lxc_id:
            return f"LXC {ct.lxc_id}"
        if ct.unit:
            return ct.unit
    return f"cgroup {ev.cgroup}"


def trend(ev: OomRiskEvent) -> str:
    """`+12 MiB/min → limit in ~4 min`, or empty when not growing."""
    if not ev.growth_kb_per_s or ev.growth_kb_per_s <= 0:
        return ""
    text = f"+{_mib(ev.growth_kb_per_s * 60)}/min"
    if ev.eta_s is not None:
        text += f" → limit in {duration(ev.eta_s)}"
    return text


def headline(ev: OomRiskEvent) -> str:
    """One line for the state the episode is in."""
    limit = _mib(ev.limit_kb) if ev.limit_kb else "?"
    pct = f"{ev.percent:.0f} %" if ev.percent is not None else "? %"
    if ev.state == "killed":
        return f"💀 {who(ev)}: the OOM killer struck after this warning ({limit} limit)"
    if ev.state == "ended":
        peak = f", peak {ev.peak_percent:.0f} %" if ev.peak_percent is not None else ""
        return f"✅ {who(ev)} back to {pct} of {limit}{peak}: risk over"
    text = f"⚠️ {who(ev)} at {pct} of {limit}"
    grow = trend(ev)
    if grow:
        text += f", {grow}"
    if "psi" in ev.reasons and ev.psi is not None and ev.psi.full_avg10 is not None:
        text += f", stalled on memory {ev.psi.full_avg10:.0f} % of the time"
    return text


def severity(ev: OomRiskEvent) -> float:
    """Higher is worse: the percentage, up to 50 more for a limit less than 10 min away, plus
    the share of time stalled on memory."""
    soon = max(0.0, 600.0 - ev.eta_s) / 12.0 if ev.eta_s is not None else 0.0
    full = ev.psi.full_avg10 if ev.psi is not None and ev.psi.full_avg10 is not None else 0.0
    return (ev.percent or 0.0) + soon + full


def warned_before(kill: OomKillEvent) -> str | None:
    """`~4 min` between the warning that named this kill and the kill, or None."""
    if not kill.risk_id or not kill.risk_started or not kill.time:
        return None
    try:
        start = datetime.fromisoformat(kill.risk_started)
        end = datetime.fromisoformat(kill.time)
        seconds = (end - start).total_seconds()
    except (ValueError, TypeError):
        return None
    return duration(max(0.0, seconds))
