"""Named fault points: off unless armed, one dict lookup when off.

Armed per process through CC_FAULTS (or Settings.faults), for example

    CC_FAULTS="inventory-consumer/after_consumer_commit=crash,times=1;relay/after_publish=delay,seconds=2"

Each entry is `[role/]point=action[,times=N][,seconds=S][,probability=P]`. An entry with a role
prefix applies only to that role. Actions:

- crash:     os._exit(137) at once (as SIGKILL would: no cleanup, no flush, no ack)
- pause:     the process stops itself (SIGSTOP) right there, so that a test or the fault suite
             can SIGKILL it at exactly that point (or SIGCONT it to model a long GC pause)
- raise:     raise FaultInjected (the code's normal error handling runs)
- delay:     sleep `seconds`
- duplicate: the caller performs the step twice (only where the call site supports it)

`times` is counted across restarts of the process, and across the copies of a role (the API's),
in files under Settings.run_dir/faults, so a crash armed once crashes once even though the
supervisor restarts the role with the same env.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import signal
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class FaultPoint(StrEnum):
    AFTER_ORDER_COMMIT = "after_order_commit"
    AFTER_PUBLISH = "after_publish"  # relay: broker confirmed, outbox row not yet deleted
    BEFORE_CONSUMER_COMMIT = "before_consumer_commit"  # consumer: work done, not yet committed
    AFTER_CONSUMER_COMMIT = "after_consumer_commit"  # consumer: committed, not yet acked
    AFTER_DEDUCT_COMMIT = "after_deduct_commit"  # deduction committed, not yet reported
    AFTER_SETTLE_COMMIT = "after_settle_commit"  # order status committed, not yet reported
    BEFORE_PUBLISH = "before_publish"
    WORKER_START = "worker_start"
    ACTIVITY_START = "activity_start"  # workflow: an activity attempt began, no side effect yet


class FaultAction(StrEnum):
    CRASH = "crash"
    PAUSE = "pause"
    RAISE = "raise"
    DELAY = "delay"
    DUPLICATE = "duplicate"


class FaultInjected(RuntimeError):
    pass


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True)
class FaultSpec:
    point: str
    action: FaultAction
    role: str | None = None
    times: int | None = None
    seconds: float = 0.0
    probability: float = 1.0

    @classmethod
    def parse(cls, entry: str) -> FaultSpec:
        try:
            target, _, options = entry.strip().partition("=")
            role, _, point = target.rpartition("/")
            action, *pairs = options.split(",")
            kwargs: dict[str, float | int] = {}
            for pair in pairs:
                key, _, value = pair.partition("=")
                if key == "times":
                    kwargs["times"] = int(value)
                elif key in ("seconds", "probability"):
                    kwargs[key] = float(value)
                else:
                    raise FaultSpecError(f"unknown option {key!r}")
            return cls(point=point, action=FaultAction(action), role=role or None, **kwargs)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise FaultSpecError(f"bad fault entry {entry!r}: {exc}") from exc


def parse_faults(text: str) -> list[FaultSpec]:
    return [FaultSpec.parse(e) for e in text.split(";") if e.strip()]


class Faults:
    def __init__(self, specs: list[FaultSpec], role: str, state_dir: Path) -> None:
        self._specs = {s.point: s for s in specs if s.role in (None, role)}
        self._role = role
        self._state_dir = state_dir

    @classmethod
    def from_text(cls, text: str, role: str, run_dir: Path) -> Faults:
        return cls(parse_faults(text), role, run_dir / "faults")

    @property
    def armed(self) -> bool:
        return bool(self._specs)

    def arms(self, point: FaultPoint) -> bool:
        """Whether a fault is set at `point` for this role (fired out or not)."""
        return point in self._specs

    def _consume(self, spec: FaultSpec) -> bool:
        if spec.probability < 1.0 and random.random() >= spec.probability:
            return False
        if spec.times is None:
            return True
        self._state_dir.mkdir(parents=True, exist_ok=True)
        counter = self._state_dir / f"{self._role}.{spec.point}"
        # One byte appended per firing: the file size is the count. Read and append under an
        # exclusive lock: the API's copies share the role's name, hence the counter.
        with counter.open("ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            if os.fstat(f.fileno()).st_size >= spec.times:
                return False
            f.write(b".")
        return True

    async def hit(self, point: FaultPoint) -> bool:
        """Called at a fault point. Returns True when the caller should duplicate the step."""
        if not self._specs:
            return False
        spec = self._specs.get(point)
        if spec is None or not self._consume(spec):
            return False
        print(f"FAULT {self._role}/{point}: {spec.action}", flush=True)
        if spec.action is FaultAction.CRASH:
            os._exit(137)
        if spec.action is FaultAction.PAUSE:
            os.kill(os.getpid(), signal.SIGSTOP)
            return False
        if spec.action is FaultAction.RAISE:
            raise FaultInjected(f"fault injected at {point}")
        if spec.action is FaultAction.DELAY:
            await asyncio.sleep(spec.seconds)
            return False
        return True
