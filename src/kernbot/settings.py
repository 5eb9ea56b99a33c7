"""Typed settings for every command: environment variables, then a YAML file, then defaults.

Only the entry points (`kernbot.cli` and the `main` of each command) build settings; everything
else receives them. Names follow ARCHITECTURE.md ("Settings").
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from kernbot.errors import KernbotError


def _default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/kernbot")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kernbot"


_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration_s(text: str) -> float:
    """`30m`, `2h`, `7d`, `1h30m` -> seconds; ValueError otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 7d")
    return float(sum(int(n) * _UNITS[u] for n, u in parts))


class SettingsError(KernbotError):
    """Invalid settings: one human-readable line per problem in `problems`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the file named by `--config` (passed in) or KERNBOT_CONFIG."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is None:
            env = os.environ.get("KERNBOT_CONFIG")
            path = Path(env) if env else None
        if path is not None:
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise SettingsError([f"config file {path}: {exc.strerror or exc}"]) from exc
            except yaml.YAMLError as exc:
                raise SettingsError([f"config file {path}: not valid YAML: {exc}"]) from exc
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, dict):
                raise SettingsError([f"config file {path}: expected a mapping of settings"])
            self._data = {str(k).lower(): v for k, v in loaded.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        names = set(self.settings_cls.model_fields)
        return {k: v for k, v in self._data.items() if k in names}


_config_path: Path | None = None


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KERNBOT_", extra="ignore", populate_by_name=True)

    token: SecretStr | None = None
    """Shared secret between agents and bot (`Authorization: Bearer ...`)."""
    listen: str = "127.0.0.1:9100"
    state_dir: Path = Field(default_factory=_default_state_dir)
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls, _config_path))

    def listen_host_port(self) -> tuple[str, int]:
        from kernbot.hostport import parse_host_port

        return parse_host_port(self.listen)


class AgentSettings(CommonSettings):
    listen: str = "127.0.0.1:9101"
    bot_url: str | None = None
    hostname: str = Field(default_factory=socket.gethostname)
    advertise_url: str | None = None
    source: str = "kmsg"
    """`kmsg`, `journal`, `file:PATH` or `stdin`."""
    fallback_source: str | None = None
    """Used when the main source cannot be opened (e.g. `journal` when /dev/kmsg is denied)."""
    proc_root: Path = Path("/proc")
    net_pid: int | None = None
    """Watch the network namespace of this pid (TcpExt counters, listeners); default: the
    agent's."""
    pod_log_dir: Path = Path("/var/log/pods")
    kubernetes_api: bool = False
    """Ask the Kubernetes API (in-cluster service account) for pod names when the log dir lacks
    them."""
    history_max_age_s: float = 24 * 3600.0
    """On first start, events older than this in the existing ring buffer are kept as history
    but never alerted on."""
    flush_timeout_s: float = 3.0
    """An OOM report that never completes is flushed after this much silence."""
    syn_sample_interval_s: float = 10.0
    heartbeat_interval_s: float = 30.0
    outbox_max: int = 10_000
    ship_timeout_s: float = 10.0
    cgroup_root: Path = Path("/sys/fs/cgroup")
    """Where the memory cgroups are read for OOM-risk warnings (/host/sys/fs/cgroup in a pod)."""
    risk_sample_interval_s: float = 5.0
    """How often memory cgroups and the host are sampled for OOM risk; 0 turns warnings off."""
    risk_discover_interval_s: float = 30.0
    """How often the cgroup tree is walked for new and removed cgroups."""
    risk_percent: float = 90.0
    """Warn when the working set reaches this percentage of the limit..."""
    risk_eta_s: float = 600.0
    """...or would reach the limit within this many seconds at the fitted growth..."""
    risk_psi_full: float = 10.0
    """...or memory PSI `full avg10` reaches this percentage."""
    risk_end_percent: float = 80.0
    """An episode ends when the working set stays below this percentage (and PSI low)..."""
    risk_end_after_s: float = 120.0
    """...for this long."""
    risk_window_s: float = 180.0
    """Growth is fitted over this many seconds of samples."""


class BotSettings(CommonSettings):
    listen: str = "127.0.0.1:9100"
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_api_url: str = "https://slack.com/api/"
    slack_channel: str | None = None
    database_url: str | None = None
    """SQLAlchemy URL; default a SQLite file under state_dir."""
    allowed_users: list[str] = Field(default_factory=list)
    """Slack user IDs allowed to run slash commands and press buttons; empty = everyone."""
    allowed_channels: list[str] = Field(default_factory=list)
    routes: list[dict[str, str]] = Field(default_factory=list)
    """Routing rules: `{host: glob, namespace: glob, kind: oom_kill|syn_flood, channel: C...}`."""
    agent_timeout_s: float = 3.0
    stale_after_s: float = 180.0
    storm_window_s: float = 600.0
    fleet_burst_hosts: int = 5
    """This many hosts alerting within `fleet_burst_window_s` become one summary message."""
    fleet_burst_window_s: float = 60.0
    digest_time: str | None = None
    """`HH:MM` (UTC) for a daily digest; unset = no digest."""
    max_body_bytes: int = 4 * 1024 * 1024
    agent_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """CIDRs an agent may advertise a URL in, beside the address its heartbeat came from (NAT,
    proxies; the chart sets the pod network). Comma-separated or a JSON/YAML list."""
    admin_users: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Slack user IDs allowed fleet-wide (`*`) or long silences, and `/kernbot dmesg`."""
    dmesg_users: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """More Slack user IDs allowed `/kernbot dmesg`; `*` for everyone who may use commands."""
    max_silence: str = "7d"
    """Longer silences need an admin (KERNBOT_ADMIN_USERS)."""
    host_alerts_per_min: int = Field(default=10, ge=1)
    """New top-level alerts per host per minute; beyond it one storm message per host."""

    @field_validator("agent_networks", "admin_users", "dmesg_users", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("agent_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad one
        return value

    @field_validator("max_silence")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration_s(value)
        return value

    def max_silence_s(self) -> float:
        return parse_duration_s(self.max_silence)

    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'kernbot.db'}"


class UpSettings(AgentSettings, BotSettings):
    """`kernbot up`: agent and bot in one process, loopback only."""

    listen: str = "127.0.0.1:9100"
    agent_listen: str = "127.0.0.1:9101"


S = TypeVar("S", bound=CommonSettings)


def load_settings(cls: type[S], config: Path | None = None, **overrides: Any) -> S:
    """Build settings or raise SettingsError with one line per invalid field."""
    global _config_path
    _config_path = config
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError(problems) from exc
    finally:
        _config_path = None
