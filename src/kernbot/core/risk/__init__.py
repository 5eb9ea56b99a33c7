"""Before the kill: which cgroups (and the host) are about to run out of memory, and when.

Pure logic, no I/O and no clock reads: the agent reads the cgroup files and passes samples with
`now` (wall-clock Unix seconds). `fit` estimates growth robustly, `assess` applies the thresholds,
`episodes` turns assessments into `oom_risk` events with hysteresis, `advice` says what to do.
"""

from kernbot.core.risk.assess import Assessment, RiskSettings, assess
from kernbot.core.risk.episodes import RiskTracker
from kernbot.core.risk.sample import MemSample, Series

__all__ = ["Assessment", "MemSample", "RiskSettings", "RiskTracker", "Series", "assess"]
