"""kernbot: the Linux kernel's OOM kills and SYN floods, explained in Slack."""

__version__ = "0.1.0"
