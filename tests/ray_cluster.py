"""Test helpers for Ray: who listens where, which processes a session left, and a real
multi-process Ray cluster on this machine (``ray start --head``) with token authentication.

Everything here reads /proc (Linux) with the standard library: psutil is not a dependency.

The cluster fixture, for tests that join a cluster (``nasbench sweep --address``)::

    from tests.ray_cluster import ray_cluster  # noqa: F401  (a pytest fixture)

    def test_join(ray_cluster, monkeypatch):
        for key, value in ray_cluster.env.items():
            monkeypatch.setenv(key, value)        # or pass env=ray_cluster.subprocess_env()
        ... ray_session(address=ray_cluster.address) / nasbench sweep --address ...

The cluster serves on 127.0.0.1 only, keeps its temp dir, HOME and token in its own
directory (nothing under ~/.ray), and is stopped by killing its own processes: never with
``ray stop``, which stops every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nasbench_suite.sweep.ray_session import _session_pids, is_loopback, ray_programs

#: /proc/net files and the socket state that means "listening" (TCP) or "bound" (UDP)
_NET = (("tcp", socket.AF_INET, "0A"), ("tcp6", socket.AF_INET6, "0A"),
        ("udp", socket.AF_INET, "07"), ("udp6", socket.AF_INET6, "07"))


@dataclass(frozen=True)
class Listener:
    """One listening TCP (or bound UDP) socket and the process that holds it."""

    pid: int
    proto: str
    host: str
    port: int
    command: str

    def __str__(self) -> str:
        return f"{self.proto} {self.host}:{self.port} pid {self.pid} ({self.command})"


def _address(hex_addr: str, family: int) -> tuple[str, int]:
    """/proc/net's ``0100007F:1F90`` (little-endian 32-bit words) -> ('127.0.0.1', 8080)."""
    ip_hex, port_hex = hex_addr.split(":")
    raw = bytes.fromhex(ip_hex)
    words = b"".join(struct.pack("<I", struct.unpack(">I", raw[i:i + 4])[0])
                     for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words), int(port_hex, 16)


def listening_sockets() -> dict[int, tuple[str, str, int]]:
    """Socket inode -> (protocol, host, port) for every listening TCP and bound UDP socket."""
    found: dict[int, tuple[str, str, int]] = {}
    for name, family, state in _NET:
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == state:
                found[int(fields[9])] = (name, *_address(fields[1], family))
    return found


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets a process holds open (empty if it is gone)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()[:160]
    except OSError:
        return "?"


def listeners(pids: Iterable[int]) -> list[Listener]:
    """Every listening socket held by these processes."""
    table = listening_sockets()
    return [Listener(pid, *table[inode], command(pid))
            for pid in sorted(set(pids)) for inode in socket_inodes(pid) if inode in table]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[0] not in ("Z", "X"):
                children.setdefault(int(stat[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@dataclass(frozen=True)
class Proc:
    """A process identified by pid and start time, so that a reused pid is not mistaken
    for it."""

    pid: int
    start: str
    command: str

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        stat = _stat(pid)
        return None if stat is None else cls(pid, stat[19], command(pid))

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and stat[19] == self.start and stat[0] not in ("Z", "X")


def snapshot(pids: Iterable[int]) -> list[Proc]:
    return [p for p in (Proc.of(pid) for pid in pids) if p is not None]


def wait_gone(procs: Iterable[Proc], timeout: float) -> list[Proc]:
    """Wait until none of ``procs`` is alive; return those still alive at ``timeout``."""
    procs = list(procs)
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if p.alive()]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def kill_all(procs: Iterable[Proc]) -> None:
    for proc in procs:
        if proc.alive():
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a real cluster --------------------------------------------------------------------------
@dataclass
class RayCluster:
    """A ``ray start --head`` cluster on 127.0.0.1 with token authentication."""

    address: str
    client_address: str
    token: str
    #: what a process needs in its environment to join (the token, nothing else)
    env: dict[str, str]
    root: Path
    temp_dir: Path
    home: Path
    ray_env: dict[str, str] = field(repr=False, default_factory=dict)

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """This process's environment plus what joining needs, minus Ray variables that
        would point elsewhere (RAY_ADDRESS, another token)."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
                            "RAY_AUTH_TOKEN_PATH")}
        return {**env, **self.env, **extra}

    def processes(self) -> set[int]:
        """Live processes of this cluster: they name its temp dir or hold files in it."""
        return _session_pids(str(self.temp_dir), ray_programs(), frozenset({os.getpid()}))

    def stop(self, grace: float = 5.0) -> list[Proc]:
        """SIGTERM this cluster's processes, SIGKILL what is left after ``grace`` seconds;
        return the processes that were still there for the SIGKILL."""
        procs = snapshot(self.processes())
        for proc in procs:
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGTERM)
        left = wait_gone(procs, grace)
        kill_all(left)
        # agents and workers may appear or be re-parented while the raylet goes down
        for _ in range(3):
            extra = snapshot(self.processes())
            if not extra:
                break
            kill_all(extra)
            wait_gone(extra, 2.0)
        return left


def _ray_cli() -> list[str]:
    """The `ray` command of the Ray this Python imports: its console script beside the
    interpreter, else the module behind it (a venv that sees Ray through another
    environment's site-packages has no `ray` script of its own)."""
    candidate = Path(sys.executable).with_name("ray")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


def start_cluster(num_cpus: int = 2) -> RayCluster:
    """``ray start --head`` on 127.0.0.1 in a fresh directory of its own (short, under
    /tmp: Ray's unix socket paths must stay under 108 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="nbray-", dir="/tmp"))
    home, temp_dir = root / "home", root / "t"
    home.mkdir()
    token = secrets.token_hex(32)
    port, client_port = free_port(), free_port()
    ray_env = {k: v for k, v in os.environ.items()
               if not k.startswith("RAY_") or k == "RAY_USAGE_STATS_ENABLED"}
    ray_env.update({
        "HOME": str(home),  # Ray's default token and usage-stats files land here
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
        "RAY_USAGE_STATS_ENABLED": "0",
        # keep 127.0.0.1 as the node's address, so that every server binds loopback only
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    })
    cmd = [*_ray_cli(), "start", "--head", "--node-ip-address", "127.0.0.1",
           "--port", str(port), "--ray-client-server-port", str(client_port),
           "--dashboard-agent-listen-port", str(free_port()),
           "--metrics-export-port", str(free_port()),
           "--include-dashboard", "false", "--num-cpus", str(num_cpus),
           "--temp-dir", str(temp_dir), "--disable-usage-stats"]
    cluster = RayCluster(address=f"127.0.0.1:{port}",
                         client_address=f"ray://127.0.0.1:{client_port}", token=token,
                         env={"RAY_AUTH_TOKEN": token}, root=root, temp_dir=temp_dir,
                         home=home, ray_env=ray_env)
    try:
        done = subprocess.run(cmd, env=ray_env, cwd=root, capture_output=True, text=True,
                              timeout=120)
    except subprocess.TimeoutExpired:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    if done.returncode != 0:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"ray start failed ({done.returncode}):\n{done.stdout}\n"
                           f"{done.stderr}")
    return cluster


def _home_ray_listing() -> list[str]:
    ray_dir = Path.home() / ".ray"
    if not ray_dir.is_dir():
        return []
    return sorted(f"{p.relative_to(ray_dir)} {p.stat().st_mtime_ns}" for p in ray_dir.rglob("*"))


@contextlib.contextmanager
def running_cluster(num_cpus: int = 2) -> Iterator[RayCluster]:
    """A cluster for the block; afterwards none of its processes and none of its files
    remain, and ~/.ray is as it was."""
    before = _home_ray_listing()
    cluster = start_cluster(num_cpus)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
    after = _home_ray_listing()
    assert after == before, f"the cluster changed ~/.ray: {before} -> {after}"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """A 2-CPU ``ray start --head`` cluster on 127.0.0.1 with token authentication, shared
    by the tests of one module; join it with ``address`` and ``env``."""
    with running_cluster() as cluster:
        yield cluster


def loopback_violations(found: Iterable[Listener]) -> list[str]:
    """The listeners that are not on loopback, as readable lines."""
    return [str(item) for item in found if not is_loopback(item.host)]


def kill_driver_and_list_leftovers(driver: subprocess.Popen[str] | subprocess.Popen[bytes],
                                   procs: Iterable[Proc], within: float) -> list[str]:
    """SIGKILL ``driver``; the commands of ``procs`` still alive ``within`` seconds later
    (killed then, so nothing outlives the test)."""
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    left = wait_gone(procs, within)
    kill_all(left)
    return [p.command for p in left]

