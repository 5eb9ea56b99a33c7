"""Sign request bodies the way Slack does, so tests exercise Bolt's real verification.

Slack's documented scheme: basestring `v0:{X-Slack-Request-Timestamp}:{raw body}`, HMAC-SHA256
keyed with the app's signing secret, sent as `X-Slack-Signature: v0=<hex digest>`. Requests older
than five minutes are rejected by the receiver. Written from the documentation, independently of
slack_sdk's SignatureVerifier, so a bug there would show up here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode


def signature(secret: str, timestamp: int, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: str, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(secret, ts, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def slash_command_body(
    command: str,
    text: str,
    *,
    response_url: str,
    user_id: str = "U0ALICE",
    channel_id: str = "C0ALERTS",
    team_id: str = "T0KERNBOT",
) -> str:
    """A form body shaped like the one Slack POSTs for a slash command."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": team_id,
            "team_domain": "kernbot-test",
            "channel_id": channel_id,
            "channel_name": "alerts",
            "user_id": user_id,
            "user_name": "alice",
            "command": command,
            "text": text,
            "api_app_id": "A0KERNBOT",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": "1234.5678.abcdef",
        }
    )


def block_action_body(
    action_id: str,
    value: str,
    *,
    response_url: str,
    user_id: str = "U0ALICE",
    channel_id: str = "C0ALERTS",
    message_ts: str = "1700000000.000100",
) -> str:
    """A form body (`payload=<json>`) shaped like an interactive button press."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0KERNBOT", "domain": "kernbot-test"},
        "user": {"id": user_id, "username": "alice", "team_id": "T0KERNBOT"},
        "api_app_id": "A0KERNBOT",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": "1234.5678.abcdef",
        "channel": {"id": channel_id, "name": "alerts"},
        "message": {"type": "message", "ts": message_ts, "text": "OOM kill"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "kernbot_silence",
                "text": {"type": "plain_text", "text": "Silence"},
                "value": value,
                "action_ts": "1700000001.000200",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})
