"""Live host facts read from /proc for the agent: memory, PSI, oom_scores, TcpExt, listeners."""

from kernbot.agent.proc.reader import ProcReader

__all__ = ["ProcReader"]
