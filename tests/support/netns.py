"""Another host on this machine: a network namespace joined to the host by a veth pair, and forwarders between them.

The namespace has its loopback and its end of the pair, nothing else: no route, no other address. A process inside
reaches a host service only through a forwarder listening on the host's end of the pair. `Relay` runs forwarders
inside the namespace (a unix socket or a port on the namespace's own loopback, to the host's end), for clients that
insist on a local address. Run as a script (`python netns.py SPEC...`) this module is that relay; it imports only the
standard library.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

Connect = Callable[[], socket.socket]
RELAY_READY = "relay ready"
RELAY_START_TIMEOUT_S = 30.0


class NamespaceNotPermitted(RuntimeError):
    """This machine does not let us create network namespaces (no CAP_NET_ADMIN, or a sandbox forbids it)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def tcp_connect(host: str, port: int) -> Connect:
    return lambda: socket.create_connection((host, port), timeout=10)


def unix_connect(path: str) -> Connect:
    def connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return sock

    return connect


class Forwarder:
    """Accepts on `listener` and pipes each connection, both ways with half-closes, to a fresh `connect()`."""

    def __init__(self, listener: socket.socket, connect: Connect) -> None:
        self._listener = listener
        self._connect = connect
        self._closed = False
        self.accepted = 0  # connections forwarded so far
        threading.Thread(target=self._accept, name="forwarder", daemon=True).start()

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = self._connect()
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.accepted += 1
            pair = _Pair(client, upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=pair.pump, args=(src, dst), daemon=True).start()


class _Pair:
    """Two connected sockets; each direction ends with a half-close, both close once both directions ended."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self._sockets = (a, b)
        self._lock = threading.Lock()
        self._open = 2

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self._lock:
                self._open -= 1
                last = self._open == 0
            if last:
                for sock in self._sockets:
                    sock.close()


def tcp_listener(host: str, port: int = 0) -> socket.socket:
    return socket.create_server((host, port), backlog=64)


def unix_listener(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock


@dataclass
class Namespace:
    """A network namespace and its veth pair: `host_ip` on the host's end, `ns_ip` on the namespace's."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str
    forwarders: list[Forwarder] = field(default_factory=list)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def forward(self, connect: Connect) -> Forwarder:
        """A forwarder on the host's end of the pair (a free port) to a host service."""
        forwarder = Forwarder(tcp_listener(self.host_ip), connect)
        self.forwarders.append(forwarder)
        return forwarder

    @property
    def inode(self) -> int:
        """The namespace's identity: /proc/PID/ns/net of a process inside it has this inode."""
        return os.stat(f"/run/netns/{self.name}").st_ino

    def addresses(self) -> list[str]:
        out = subprocess.run(["ip", "-n", self.name, "-o", "addr"], check=True, capture_output=True, text=True)
        return [line.split()[3] for line in out.stdout.splitlines()]


def _free_subnet() -> int:
    """A third octet of 10.213.X.0/30 no interface of the host uses yet."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], check=True, capture_output=True, text=True).stdout
    candidates = [x for x in range(256) if f"10.213.{x}." not in used]
    return random.choice(candidates)


@contextmanager
def namespace() -> Iterator[Namespace]:
    """Create a namespace with a veth pair on a private /30; everything is removed on exit."""
    tag = secrets.token_hex(3)
    octet = _free_subnet()
    ns = Namespace(f"sf-{tag}", f"sfh{tag}", f"sfn{tag}", f"10.213.{octet}.1", f"10.213.{octet}.2")
    try:
        _ip("netns", "add", ns.name)
    except subprocess.CalledProcessError as exc:
        raise NamespaceNotPermitted(exc.stderr.strip()) from exc
    try:
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        _ip("-n", ns.name, "addr", "add", f"{ns.ns_ip}/30", "dev", ns.ns_if)
        _ip("-n", ns.name, "link", "set", ns.ns_if, "up")
        _ip("-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        for forwarder in ns.forwarders:
            forwarder.close()
        subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)


class Relay:
    """Forwarders inside the namespace: each spec `LISTEN=HOST:PORT`, LISTEN a unix path or `tcp:HOST:PORT`."""

    def __init__(self, ns: Namespace, specs: Sequence[str]) -> None:
        argv = ns.argv([sys.executable, str(Path(__file__).resolve()), *specs])
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        timer = threading.Timer(RELAY_START_TIMEOUT_S, self.process.kill)
        timer.start()
        try:
            first = self.process.stdout.readline().strip()
        finally:
            timer.cancel()
        if first != RELAY_READY:
            self.close()
            raise RuntimeError(f"the relay in {ns.name} did not start: {first!r}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _relay(specs: Sequence[str]) -> None:
    forwarders = []
    for spec in specs:
        listen, _, upstream = spec.rpartition("=")
        host, _, port = upstream.rpartition(":")
        connect = tcp_connect(host, int(port))
        if listen.startswith("tcp:"):
            listen_host, _, listen_port = listen.removeprefix("tcp:").rpartition(":")
            forwarders.append(Forwarder(tcp_listener(listen_host, int(listen_port)), connect))
        else:
            forwarders.append(Forwarder(unix_listener(listen), connect))
    print(RELAY_READY, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    _relay(sys.argv[1:])
