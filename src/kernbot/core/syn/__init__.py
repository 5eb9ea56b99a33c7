"""SYN flood warnings and the episodes the agent builds from them and the TcpExt counters."""
