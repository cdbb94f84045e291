"""One place that starts or joins Ray for the suite, safe by default.

Why this module exists (the "Safe by default" issue): a plain ``ray.init()`` on Linux
serves the GCS, the raylet, the object manager and every worker on all interfaces (Ray
turns ``127.0.0.1`` into the machine's address), so anyone on the network could submit work
to a researcher's laptop; and when the driver is killed, Ray's agents linger for about a
minute (they try to report the raylet's death to a GCS that is already gone). Joining a
cluster had its own traps: Ray sends no token to an explicit address unless
``RAY_AUTH_MODE=token`` is set, it rewrites ``127.0.0.1:PORT`` to the machine's address,
and an address that does not answer makes ``ray.init`` retry for minutes.

:func:`ray_session` handles all of it:

* **local** (no address): every Ray process serves on 127.0.0.1 only, without a dashboard,
  and a small watchdog process kills whatever is left of the session once the driver
  ends, however it ends (normal exit, exception, SIGKILL);
* **join** (``HOST:PORT``, ``auto``, ``ray://HOST:PORT``): the cluster's token is sent when
  one is given (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``) or when the cluster is on this
  machine (``~/.ray/auth_token``); an address that refuses, stays silent or rejects the
  token fails within ``join_timeout`` seconds as one :class:`UsageError` line.

Ray is imported only inside :func:`ray_session`; the helpers below it use the standard
library only (the watchdog runs them in a bare ``python -I``).
"""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasbench_suite.errors import UsageError

#: Ray's switch for "this platform has no multi-node clusters" (read at ``import ray``);
#: off, Ray keeps 127.0.0.1 as the node's address instead of the machine's.
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_AUTH_MODE = "RAY_AUTH_MODE"
_AUTH_TOKEN = "RAY_AUTH_TOKEN"
_AUTH_TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
_CLIENT_SCHEME = "ray://"
_CLIENT_PORT = 10001
#: how the user can give Ray the cluster's token (the end of every refusal message)
TOKEN_HOWTO = ("pass the cluster's token as RAY_AUTH_TOKEN=<token> or "
               "RAY_AUTH_TOKEN_PATH=<file> (`ray get-auth-token` on the head node prints it)")
#: seconds the driver waits for the watchdog to finish its sweep after a normal shutdown
_WATCHDOG_WAIT_S = 15.0


@dataclass(frozen=True)
class RaySession:
    """What :func:`ray_session` yields: where Ray runs and whether this call owns it."""

    #: the GCS address (``host:port``) or the ``ray://`` address joined
    address: str
    #: True for a session started here on loopback, False for a joined cluster
    local: bool
    #: False when the process already had a Ray session (left running on exit)
    owned: bool


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses, IPv4-mapped IPv6 ones included."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _one_line(exc: BaseException | str, limit: int = 300) -> str:
    """Ray's errors span lines and paragraphs; the CLI prints one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- process bookkeeping (standard library only: the watchdog runs this source) ---------------
def _session_pids(session_dir: str, programs: tuple[str, ...],
                  exclude: frozenset[int] = frozenset()) -> set[int]:
    """Live processes of one Ray session: they run one of ``programs`` (path prefixes of
    this Python and of Ray's binaries) and name ``session_dir`` on their command line or
    hold a file under it open. The second test is needed because Ray's agents and workers
    retitle themselves (``ray::IDLE``) and lose their parent when the raylet dies."""
    prefix = session_dir.rstrip("/") + "/"
    needle = session_dir.rstrip("/").encode()
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        base = f"/proc/{entry}"
        try:
            if not os.readlink(f"{base}/exe").startswith(programs):
                continue
            with open(f"{base}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                    continue
            with open(f"{base}/cmdline", "rb") as f:
                if needle in f.read():
                    found.add(int(entry))
                    continue
            fds = os.listdir(f"{base}/fd")
        except (OSError, IndexError):
            continue
        for fd in fds:
            try:
                if os.readlink(f"{base}/fd/{fd}").startswith(prefix):
                    found.add(int(entry))
                    break
            except OSError:
                continue
    return found


def _watchdog(driver_pid: int, session_dir: str, programs: tuple[str, ...]) -> None:
    """Body of the watchdog process: wait until the driver writes to our stdin or closes
    it (its shutdown) or dies (we are re-parented: the pipe alone could be held open by a
    child it forked), then SIGKILL what is left of the session, scanning again until two
    scans in a row find nothing (at most 10 s)."""
    import os
    import select
    import signal
    import time

    while os.getppid() == driver_pid:
        readable, _, _ = select.select([0], [], [], 0.25)
        if readable:
            os.read(0, 4096)
            break
    deadline = time.monotonic() + 10.0
    empty = 0
    while empty < 2 and time.monotonic() < deadline:
        pids = _session_pids(session_dir, programs, frozenset({os.getpid(), driver_pid}))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        empty = 0 if pids else empty + 1
        time.sleep(0.2)


def ray_programs() -> tuple[str, ...]:
    """Executables of Ray processes: this Python (workers, agents, monitors) and the
    binaries inside the ray package (gcs_server, raylet)."""
    import importlib.util

    spec = importlib.util.find_spec("ray")
    programs = [os.path.realpath(sys.executable)]
    if spec is not None and spec.origin:
        programs.append(os.path.dirname(os.path.realpath(spec.origin)) + os.sep)
    return tuple(programs)


def _start_watchdog(session_dir: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start the watchdog in its own session (a Ctrl-C or a closing terminal must not end
    it before the driver); return it and the pipe end whose closing tells it to sweep."""
    source = "\n".join(["import os", inspect.getsource(_session_pids),
                        inspect.getsource(_watchdog),
                        f"_watchdog({os.getpid()}, {session_dir!r}, {ray_programs()!r})"])
    read_end, write_end = os.pipe()
    errors = Path(session_dir) / "logs" / "nasbench_watchdog.err"
    try:
        with open(errors, "ab") as stderr:
            proc = subprocess.Popen([sys.executable, "-I", "-c", source], stdin=read_end,
                                    stdout=subprocess.DEVNULL, stderr=stderr,
                                    start_new_session=True)
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return proc, write_end


def _stop_watchdog(proc: subprocess.Popen[bytes], write_end: int) -> None:
    """Tell the watchdog that Ray was shut down and wait for its sweep."""
    try:
        os.write(write_end, b"shutdown\n")
    except OSError:  # it is gone already
        pass
    os.close(write_end)
    try:
        proc.wait(timeout=_WATCHDOG_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- environment switches --------------------------------------------------------------------
@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set one environment variable for the block, then restore it."""
    with _restoring_env(name):
        os.environ[name] = value
        yield


@contextlib.contextmanager
def _loopback_node() -> Iterator[None]:
    """Let 127.0.0.1 stay this node's address. Ray rewrites 127.0.0.1 and localhost to the
    machine's address (``services.resolve_ip_for_localhost``) unless its multi-node switch
    is off, which is how it keeps macOS and Windows sessions on loopback; with the node at
    127.0.0.1 the GCS, raylet, object manager, workers and agents bind 127.0.0.1 only. The
    switch's only other use is ``ray start`` refusing to add worker nodes, so it is turned
    off for the block only: in the environment (for the processes Ray starts) and in
    ``ray_constants`` (read once, at import)."""
    import ray._private.ray_constants as ray_constants

    old = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        with _env(_CLUSTER_SWITCH, "0"):
            yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old


def _reload_ray_auth() -> None:
    """Ray caches the auth mode and the token in C++; make it read the environment again
    (as ``ray.init`` itself does when it turns token auth on)."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # an older Ray without token authentication
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _token_source() -> str | None:
    """Where Ray would read a token from, in its own order of precedence."""
    if os.environ.get(_AUTH_TOKEN):
        return _AUTH_TOKEN
    if os.environ.get(_AUTH_TOKEN_PATH):
        return f"{_AUTH_TOKEN_PATH} ({os.environ[_AUTH_TOKEN_PATH]})"
    if (Path.home() / ".ray" / "auth_token").is_file():
        return "~/.ray/auth_token"
    return None


def _use_token(host: str, same_machine: bool) -> str | None:
    """Send the cluster's token when there is one to send; return where it comes from.

    Ray itself sends no token to an explicit address unless ``RAY_AUTH_MODE=token`` is set.
    Here a token given in ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH`` is meant for the
    cluster being joined, so it is sent; the default ``~/.ray/auth_token`` is sent only to
    a cluster on this machine (``auto`` or a loopback address), never to a remote one that
    could collect it. An explicit ``RAY_AUTH_MODE`` is left as it is. Changes the
    environment: the caller restores it (:func:`_restoring_env`)."""
    mode = os.environ.get(_AUTH_MODE)
    source = _token_source()
    if mode is not None:
        return source if mode.lower() == "token" else None
    given = source is not None and source.startswith(_AUTH_TOKEN)
    if source is None or not (given or same_machine or is_loopback(host)):
        return None
    os.environ[_AUTH_MODE] = "token"
    _reload_ray_auth()
    return source


@contextlib.contextmanager
def _restoring_env(*names: str) -> Iterator[None]:
    """Put these environment variables back as they were (and Ray's auth cache with them)."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        changed = [name for name, value in saved.items() if os.environ.get(name) != value]
        for name in changed:
            value = saved[name]
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if _AUTH_MODE in changed:
            _reload_ray_auth()


# -- joining ---------------------------------------------------------------------------------
def _split_address(address: str) -> tuple[str, int, bool]:
    """``HOST:PORT`` / ``[V6]:PORT`` / ``ray://HOST[:PORT]`` -> (host, port, is_client)."""
    client = address.startswith(_CLIENT_SCHEME)
    rest = address[len(_CLIENT_SCHEME):] if client else address
    host, sep, port = rest.rpartition(":")
    if client and (not sep or "]" in port):
        host, port = rest, str(_CLIENT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"Ray address {address!r} must look like HOST:PORT, "
                         "ray://HOST:PORT or auto")
    return host.strip("[]"), int(port), client


def _auto_address() -> str:
    """The cluster ``ray start`` left on this machine (or RAY_ADDRESS), as Ray finds it."""
    from ray._private import services

    try:
        found = services.get_ray_address_from_environment("auto", None)
    except Exception:  # Ray raises ConnectionError or others when it finds none
        found = None
    if not found or found == "auto":
        raise UsageError("--address auto: no running Ray cluster found on this machine "
                         "(start one with `ray start --head`, or give HOST:PORT)")
    return str(found)


def _check_reachable(address: str, host: str, port: int, deadline: float,
                     join_timeout: float) -> None:
    """Fail fast where Ray would retry for minutes: nothing listens, or no answer."""
    remaining = max(0.1, deadline - time.monotonic())
    try:
        with socket.create_connection((host, port), timeout=remaining):
            pass
    except TimeoutError:
        raise UsageError(f"cannot join the Ray cluster at {address}: {host}:{port} did not "
                         f"answer within {join_timeout:g} s") from None
    except OSError as exc:
        reason = exc.strerror or _one_line(exc)
        raise UsageError(f"cannot join the Ray cluster at {address}: nothing accepts "
                         f"connections at {host}:{port} ({reason})") from None


#: run in a subprocess so that a server that never answers can be abandoned: one call that
#: needs the token (to the GCS, or a Ray Client server's ping); exit 3 when it is refused
_PROBE = """\
import sys
target, client = sys.argv[1], sys.argv[2] == "client"
try:
    if client:
        import grpc
        from ray._private.grpc_utils import init_grpc_channel
        from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc
        channel = init_grpc_channel(target, asynchronous=False)
        request = ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING)
        try:
            ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(
                request, timeout=60, metadata=[("client_id", "nasbench-probe")])
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                sys.exit(3)
            raise RuntimeError(f"{exc.code().name}: {exc.details()}") from None
    else:
        from ray._raylet import GcsClient
        GcsClient(address=target).internal_kv_get(b"nasbench-probe", None, timeout=60)
except Exception as exc:
    print(type(exc).__name__ + ": " + " ".join(str(exc).split()), flush=True)
    sys.exit(3 if type(exc).__name__ == "AuthenticationError" else 4)
"""


def _refusal(address: str, token: str | None) -> UsageError:
    if token is None:
        unsent = _token_source()
        note = (f" ({unsent} is sent only to a cluster on this machine; set "
                f"{_AUTH_MODE}=token to send it anyway)") if unsent else ""
        return UsageError(f"the Ray cluster at {address} refused this client: it requires "
                          f"token authentication and no token was sent{note}; {TOKEN_HOWTO}")
    return UsageError(f"the Ray cluster at {address} refused the token from {token}; "
                      f"{TOKEN_HOWTO}")


def _probe(address: str, target: str, client: bool, deadline: float, join_timeout: float,
           token: str | None) -> None:
    """Ask the cluster one question that needs the token, within the time left: Ray's
    own connect would retry a refused token or a silent server for minutes."""
    proc = subprocess.Popen([sys.executable, "-c", _PROBE, target,
                             "client" if client else "gcs"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        out, _ = proc.communicate(timeout=max(0.5, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise UsageError(f"cannot join the Ray cluster at {address}: {target} accepts "
                         f"connections but did not answer as a Ray cluster within "
                         f"{join_timeout:g} s") from None
    if proc.returncode == 3:
        raise _refusal(address, token)
    if proc.returncode != 0:
        lines = out.strip().splitlines()
        raise UsageError(f"cannot join the Ray cluster at {address}: "
                         f"{_one_line(lines[-1] if lines else f'exit {proc.returncode}')}")


def _join(address: str, runtime_env: dict[str, Any] | None, join_timeout: float,
          stack: contextlib.ExitStack) -> str:
    """Join a running cluster within ``join_timeout`` seconds; return the address joined.
    The token and loopback settings stay in place until ``stack`` closes, after the
    session: Ray reads them again for every new connection (other nodes, reconnects)."""
    import ray

    deadline = time.monotonic() + join_timeout
    same_machine = address == "auto"
    target = _auto_address() if same_machine else address
    host, port, client = _split_address(target)
    stack.enter_context(_restoring_env(_AUTH_MODE))
    token = _use_token(host, same_machine)
    if is_loopback(host):
        stack.enter_context(_loopback_node())
    _check_reachable(address, host, port, deadline, join_timeout)
    endpoint = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    gcs = target if client else endpoint
    _probe(address, endpoint, client, deadline, join_timeout, token)
    try:
        ray.init(address=gcs, runtime_env=runtime_env, log_to_driver=False,
                 logging_level="ERROR")
    except ray.exceptions.AuthenticationError:
        raise _refusal(address, token) from None
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        # Always: a failed ray:// join leaves the process in client mode without a
        # connection (ray.is_initialized() is False), and every later ray.init of this
        # process would then be sent to the missing client; shutdown turns client mode off.
        ray.shutdown()
        raise UsageError(f"cannot join the Ray cluster at {address}: "
                         f"{_one_line(exc)}") from None
    return gcs


# -- the session -----------------------------------------------------------------------------
def _start_local(num_cpus: int | None, runtime_env: dict[str, Any] | None) -> tuple[str, str]:
    """A new single-machine Ray on 127.0.0.1, without a dashboard; return its GCS address
    and its session directory (from the ``address_info`` ``ray.init`` returns, the public
    record of the processes it started)."""
    import ray

    with _loopback_node():
        # _node_ip_address: ray.init's only way to choose the node's address (no public
        # argument or variable does it; see the Ray pin in pyproject.toml)
        context = ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                           _node_ip_address="127.0.0.1", runtime_env=runtime_env,
                           log_to_driver=False, logging_level="ERROR")
    info = context.address_info
    node_ip = info.get("node_ip_address")
    if not node_ip or not is_loopback(node_ip):
        ray.shutdown()
        raise RuntimeError("Ray did not keep its local session on 127.0.0.1 (node address "
                           f"{node_ip}); refusing to run")
    return str(info["gcs_address"]), str(info["session_dir"])


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None,
                env_vars: Mapping[str, str] | None = None,
                join_timeout: float = 30.0) -> Iterator[RaySession]:
    """Start a local Ray (``address`` None) or join a cluster; shut down or leave on exit.

    ``address``: None for a new local session on 127.0.0.1 (or the cluster in
    ``RAY_ADDRESS``, as for ``ray.init``), ``"local"`` for a local session whatever
    ``RAY_ADDRESS`` says, ``"auto"`` for the cluster ``ray start`` runs on this machine,
    ``"HOST:PORT"`` for a cluster's GCS, ``"ray://HOST:PORT"`` for a Ray Client server.
    ``num_cpus``: CPUs of a local session (default: all). ``env_vars``: set in every
    worker of the session (thread settings, ``OMP_WAIT_POLICY``...): inherited from this
    process's environment by a local session, through the job's runtime environment in a
    joined cluster. ``join_timeout``: seconds before an address that refuses or does
    not answer is reported.

    If this process already has a Ray session (a test's, a caller's), it is used as it
    is: nothing is started, ``env_vars`` are not applied, and it is not shut down.
    Problems the user can fix raise :class:`UsageError` with one line.
    """
    import ray

    if ray.is_initialized():
        try:
            current = str(ray.get_runtime_context().gcs_address)
        except Exception:  # a Ray Client connection has no GCS address of its own
            current = ""
        yield RaySession(address=current, local=False, owned=False)
        return
    if address is None and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
    variables = {str(k): str(v) for k, v in (env_vars or {}).items()}
    runtime_env = {"env_vars": variables} if variables else None
    if address in (None, "local"):
        # ray.init turns token auth on for a new local cluster by setting RAY_AUTH_MODE in
        # this process's environment for good; put it back when the session ends.
        with _restoring_env(_AUTH_MODE):
            _reload_ray_auth()  # a token cached by an earlier session may be gone since
            # The local session's processes inherit this environment, and so every worker:
            # a runtime_env instead costs every new worker ~3 s on 2 loaded cores (the
            # runtime env agent is asked, the prestarted idle workers cannot serve it).
            with _restoring_env(*variables):
                os.environ.update(variables)
                gcs, session_dir = _start_local(num_cpus, None)
            watchdog = None
            if os.path.isdir("/proc"):  # it finds Ray's processes there (Linux)
                try:
                    watchdog = _start_watchdog(session_dir)
                except BaseException:
                    ray.shutdown()
                    raise
            try:
                yield RaySession(address=gcs, local=True, owned=True)
            finally:
                try:
                    ray.shutdown()
                finally:
                    if watchdog is not None:
                        _stop_watchdog(*watchdog)
        return
    if num_cpus is not None:
        raise UsageError("the number of CPUs is set by the cluster being joined, not by "
                         "this process; leave it out with --address")
    if join_timeout <= 0:
        raise ValueError("join_timeout must be positive")
    with contextlib.ExitStack() as stack:
        gcs = _join(address, runtime_env, join_timeout, stack)
        try:
            yield RaySession(address=gcs, local=False, owned=True)
        finally:
            ray.shutdown()
