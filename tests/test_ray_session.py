"""ray_session: a local Ray on loopback that ends with its driver; joining that fails fast.

Local sessions run in this process (the real thing: the driver's own servers count) or in
a subprocess that is then killed; the cluster tests join a ``ray start --head`` cluster
with token authentication (tests/ray_cluster.py).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbench_suite.errors import UsageError
from nasbench_suite.sweep.ray_session import _split_address, is_loopback, ray_session
from tests.ray_cluster import (
    RayCluster,
    descendants,
    kill_all,
    kill_driver_and_list_leftovers,
    listeners,
    loopback_violations,
    ray_cluster,  # noqa: F401  (a fixture)
    snapshot,
    wait_gone,
)

ray = pytest.importorskip("ray")

#: how long Ray processes may take to go once their driver is gone (the issue saw ~60 s)
GONE_WITHIN_S = 10.0


@pytest.fixture(scope="module", autouse=True)
def _own_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A local ray.init writes ~/.ray/auth_token when there is none: keep it in a temp
    dir (one for the module: Ray caches the token it read), and keep the tests' Ray away
    from any RAY_ADDRESS or token of the developer's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
            patch.delenv(key, raising=False)
        yield


@pytest.fixture(autouse=True)
def _no_session_left() -> Iterator[None]:
    yield
    if ray.is_initialized():  # a failed test must not hand its session to the next one
        ray.shutdown()


@ray.remote
def _env_of_worker(name: str) -> tuple[int, str | None]:
    return os.getpid(), os.environ.get(name)


@ray.remote
class _Pinger:
    def ping(self) -> int:
        return os.getpid()


def test_local_session_listens_on_loopback_only_and_passes_env_vars() -> None:
    with ray_session(num_cpus=2, env_vars={"NASBENCH_PROBE": "42"}) as session:
        assert session.local and session.owned
        worker_pid, value = ray.get(_env_of_worker.remote("NASBENCH_PROBE"))
        actor = _Pinger.remote()
        actor_pid = ray.get(actor.ping.remote())
        assert value == "42"
        assert ray.cluster_resources().get("CPU") == 2
        procs = descendants(os.getpid()) | {os.getpid()}
        assert {worker_pid, actor_pid} <= procs
        found = listeners(procs)
        serving = {item.pid for item in found}
        # the GCS, the raylet, the workers and this driver each serve gRPC
        assert {worker_pid, actor_pid, os.getpid()} <= serving, [str(f) for f in found]
        assert loopback_violations(found) == []
        assert not any(item.port == 8265 for item in found)  # no dashboard
        # a session inside a session uses it and leaves it running
        with ray_session() as inner:
            assert not inner.owned
        assert ray.is_initialized()
        procs = snapshot(descendants(os.getpid()))
    assert not ray.is_initialized()
    left = wait_gone(procs, GONE_WITHIN_S)  # the normal exit ends every Ray process
    kill_all(left)
    assert [p.command for p in left] == []


def test_local_session_processes_end_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError, match="crashed"), ray_session(num_cpus=1):
        ray.get(_Pinger.remote().ping.remote())
        procs = snapshot(descendants(os.getpid()))
        assert len(procs) >= 4  # GCS, raylet, a worker, the watchdog at least
        raise RuntimeError("a trial crashed the driver's loop")
    assert not ray.is_initialized()
    left = wait_gone(procs, GONE_WITHIN_S)
    kill_all(left)
    assert [p.command for p in left] == []


_DRIVER = textwrap.dedent("""
    import os, sys, time
    import ray
    from nasbench_suite.sweep.ray_session import _split_address, is_loopback, ray_session

    @ray.remote
    def pid():
        return os.getpid()

    @ray.remote
    class Actor:
        def pid(self):
            return os.getpid()

    with ray_session(num_cpus=1):
        ray.get([pid.remote(), Actor.remote().pid.remote()])
        print("ready", flush=True)
        time.sleep(600)
""")


@pytest.mark.slow
def test_local_session_processes_end_when_the_driver_is_killed() -> None:
    repo = Path(__file__).resolve().parents[1]
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        assert driver.stdout is not None
        ready, _, _ = select.select([driver.stdout], [], [], 180)
        assert ready and driver.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # let Ray's agents settle (they start beside the workers)
        procs = snapshot(descendants(driver.pid))
        assert len(procs) >= 5, [p.command for p in procs]  # GCS, raylet, agents, workers
    except BaseException:
        driver.kill()
        driver.wait()
        raise
    assert kill_driver_and_list_leftovers(driver, procs, GONE_WITHIN_S) == []


def test_joining_where_nothing_listens_fails_fast_in_one_line() -> None:
    start = time.monotonic()
    with pytest.raises(UsageError) as error, ray_session("127.0.0.1:1", join_timeout=5):
        pass
    assert time.monotonic() - start < 5 + 10
    message = str(error.value)
    assert "\n" not in message and "127.0.0.1:1" in message
    assert not ray.is_initialized()


def test_joining_a_silent_server_fails_within_join_timeout() -> None:
    """Something accepts connections but never answers (a wrong port, a stuck service)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    try:
        start = time.monotonic()
        with pytest.raises(UsageError) as error, ray_session(address, join_timeout=4):
            pass
        assert time.monotonic() - start < 4 + 10
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
    message = str(error.value)
    assert "\n" not in message and address in message and "did not answer" in message


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1:6379", ("127.0.0.1", 6379, False)),
    ("[::1]:6379", ("::1", 6379, False)),
    ("head.example:6380", ("head.example", 6380, False)),
    ("ray://127.0.0.1:10002", ("127.0.0.1", 10002, True)),
    ("ray://head.example", ("head.example", 10001, True)),
])
def test_addresses_are_split_into_host_and_port(address: str,
                                                expected: tuple[str, int, bool]) -> None:
    assert _split_address(address) == expected


@pytest.mark.parametrize("address", ["head", "head:", ":6379", "head:99999", "ray://"])
def test_malformed_addresses_are_usage_errors(address: str) -> None:
    with pytest.raises(UsageError, match="HOST:PORT"):
        _split_address(address)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True),
    ("::ffff:127.0.0.1", True), ("localhost", True), ("0.0.0.0", False), ("::", False),
    ("192.0.2.2", False), ("head.example", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_num_cpus_is_refused_when_joining() -> None:
    with pytest.raises(UsageError, match="cluster"), ray_session("127.0.0.1:1", num_cpus=2):
        pass


@pytest.mark.slow
def test_the_cluster_fixture_serves_on_loopback_only(ray_cluster: RayCluster) -> None:  # noqa: F811
    found = listeners(ray_cluster.processes())
    assert len(found) >= 3  # GCS, raylet, Ray Client server
    assert loopback_violations(found) == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gcs", "client"])
def test_joining_a_cluster_with_its_token(ray_cluster: RayCluster,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    for key, value in ray_cluster.env.items():
        monkeypatch.setenv(key, value)
    address = ray_cluster.address if kind == "gcs" else ray_cluster.client_address
    mode_before = os.environ.get("RAY_AUTH_MODE")
    with ray_session(address, env_vars={"NASBENCH_PROBE": "7"}) as session:
        assert session.owned and not session.local
        _, value = ray.get(_env_of_worker.remote("NASBENCH_PROBE"))
        assert value == "7"
        assert ray.cluster_resources().get("CPU") == 2
    assert not ray.is_initialized()
    assert os.environ.get("RAY_AUTH_MODE") == mode_before  # the token switch is put back


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "token"), [("gcs", "wrong"), ("gcs", None),
                                             ("client", None)])
def test_joining_a_cluster_without_its_token_is_refused_in_one_line(
        ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        kind: str, token: str | None) -> None:
    if token is not None:
        monkeypatch.setenv("RAY_AUTH_TOKEN", token * 8)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    address = ray_cluster.address if kind == "gcs" else ray_cluster.client_address
    start = time.monotonic()
    with pytest.raises(UsageError) as error, ray_session(address, join_timeout=20):
        pass
    assert time.monotonic() - start < 20 + 10
    message = str(error.value)
    assert "\n" not in message
    assert address in message and "refused" in message and "RAY_AUTH_TOKEN" in message
    assert not ray.is_initialized()
