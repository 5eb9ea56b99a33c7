"""The OOM killer's report: lines, assembly into events, victim, oom_score by kernel era."""
