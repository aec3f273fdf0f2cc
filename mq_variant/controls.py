"""Deliberately broken configurations (CC_CONTROL), never the default.

They exist so that the fault suite can show its checker catches what the real design prevents.
"""

from __future__ import annotations

from enum import StrEnum


class Control(StrEnum):
    NONE = ""
    NO_DEDUP = "no-dedup"  # consumers process every delivery: duplicates deduct twice
    DIRECT_PUBLISH = "direct-publish"  # API publishes after the order commit: a crash loses it
    ACK_BEFORE_COMMIT = "ack-before-commit"  # consumer acks first: a crash loses the message


def parse_control(text: str) -> Control:
    try:
        return Control(text)
    except ValueError:
        known = ", ".join(c.value for c in Control if c.value)
        raise ValueError(f"unknown MQ control {text!r} (known: {known})") from None
