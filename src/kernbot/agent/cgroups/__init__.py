"""Reading memory cgroups (v1 and v2) and the host's memory for the OOM-risk sampler.

The root is `KERNBOT_CGROUP_ROOT` (default /sys/fs/cgroup; the host's, mounted read-only, in a
pod), so tests inject whole trees.
"""

from kernbot.agent.cgroups.host import host_sample, top_processes
from kernbot.agent.cgroups.reader import CgroupReader

__all__ = ["CgroupReader", "host_sample", "top_processes"]
