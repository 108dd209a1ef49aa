"""Network partitions for cluster tests: a node in its own network namespace reaches
PostgreSQL through a veth pair and a TCP forwarder in the test process, and the test cuts
the link (packets are dropped: connections hang, nothing is refused or reset) and brings
it back.

Needs root and ``ip`` (iproute2). PostgreSQL may listen on 127.0.0.1 only: the namespace
cannot reach that address, hence the forwarder on the veth's address in the root namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests import server_process
from tests.server_process import ServerProcess, running_server

_TCP_RTO_MAX_MS = 44
"""Linux (6.15+) socket option: the longest wait between retransmissions."""

_RTO_MAX_MS = 1000
"""Retransmissions every second at most, on both ends of a partitioned link, so that the
connections carry on within about a second once it is back (the default backoff grows
to two minutes, which would make the tests slow and their timing erratic)."""


class NetnsUnavailableError(Exception):
    """This machine cannot make network namespaces (not root, no ``ip``, no permission)."""


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 of the benchmarking range 198.18.0.0/15 that no address or route here uses."""
    taken = [
        ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}").network
        for link in json.loads(_ip("-j", "-4", "addr", "show") or "[]")
        for a in link.get("addr_info", [])
    ]
    for route in json.loads(_ip("-j", "-4", "route", "show", "table", "all") or "[]"):
        with contextlib.suppress(ValueError):
            taken.append(ipaddress.ip_network(route.get("dst", ""), strict=False))
    pool = ipaddress.ip_network("198.18.0.0/15")
    for _ in range(100):
        start = int(pool.network_address) + 4 * random.randrange(pool.num_addresses // 4)
        subnet = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(start)}/30")
        if not any(subnet.overlaps(other) for other in taken if other.prefixlen > 0):
            return subnet
    raise RuntimeError("no free /30 in 198.18.0.0/15")


class Netns:
    """A network namespace joined to the root one by a veth pair on a private /30.

    ``outer`` (root side, ``outer_address``) and ``inner`` (namespace side,
    ``inner_address``) have unique names; :meth:`close` deletes both and the namespace.
    """

    def __init__(self) -> None:
        suffix = secrets.token_hex(4)
        self.name = f"tiercel-{suffix}"
        self.outer = f"tco{suffix}"  # interface names: at most 15 characters
        self.inner = f"tci{suffix}"
        self.outer_address = self.inner_address = ""
        self.cut_off = False

    def open(self) -> None:
        """Create the namespace and the link (all of it is undone by :meth:`close`).

        :raises NetnsUnavailableError: if this machine cannot make namespaces.
        """
        if os.geteuid() != 0:
            raise NetnsUnavailableError("network namespaces need root")
        if shutil.which("ip") is None:
            raise NetnsUnavailableError("the ip command (iproute2) is not installed")
        try:
            _ip("netns", "add", self.name)
        except RuntimeError as exc:
            raise NetnsUnavailableError(str(exc)) from None
        try:
            subnet = _free_subnet()
            self.outer_address, self.inner_address = (str(h) for h in subnet.hosts())
            prefix = subnet.prefixlen
            _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
            _ip("link", "set", self.inner, "netns", self.name)
            _ip("addr", "add", f"{self.outer_address}/{prefix}", "dev", self.outer)
            _ip("link", "set", self.outer, "up")
            inside = ("-n", self.name)
            _ip(*inside, "addr", "add", f"{self.inner_address}/{prefix}", "dev", self.inner)
            _ip(*inside, "link", "set", self.inner, "up")
            _ip(*inside, "link", "set", "lo", "up")
            # A permanent neighbour entry: with the link down, packets from the namespace
            # vanish silently (with ARP, connecting would fail fast: "no route to host").
            mac = Path(f"/sys/class/net/{self.outer}/address").read_text().strip()
            neighbour = (self.outer_address, "lladdr", mac, "dev", self.inner, "nud", "permanent")
            _ip(*inside, "neigh", "replace", *neighbour)
            rto = "/proc/sys/net/ipv4/tcp_rto_max_ms"
            if Path(rto).exists():
                self.run("sh", "-c", f"echo {_RTO_MAX_MS} > {rto}")
        except BaseException:
            self.close()
            raise

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace (it must succeed)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *command],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )

    def try_connect(self, host: str, port: int, timeout: float = 0.5) -> str:
        """Connect to ``host:port`` from the namespace: "connected", or why not."""
        code = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(({host!r}, {port}), timeout={timeout})\n"
            "except OSError as exc:\n"
            "    sys.exit(repr(exc))\n"
            "print('connected')\n"
        )
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=10 + timeout,
            check=False,
        )
        return (done.stdout + done.stderr).strip()

    def cut(self) -> None:
        """Take the root side of the link down: a partition, not a refusal."""
        _ip("link", "set", self.outer, "down")
        self.cut_off = True

    def heal(self) -> None:
        """Bring the link back (the kernel restores its route)."""
        if self.cut_off:
            _ip("link", "set", self.outer, "up")
            self.cut_off = False

    def inode(self) -> str:
        """The namespace as ``readlink /proc/PID/ns/net`` names it for its processes."""
        return f"net:[{os.stat(f'/run/netns/{self.name}').st_ino}]"

    def close(self) -> None:
        """Delete the link (both ends go) and the namespace, whatever exists of them."""
        with contextlib.suppress(RuntimeError):
            _ip("link", "del", self.outer)
        with contextlib.suppress(RuntimeError):
            _ip("netns", "del", self.name)


class Forwarder:
    """Forwards TCP connections from ``listen`` (any free port) to ``target``, in a thread.

    It can also stop relaying at the very moment a client sends a given statement (see
    :meth:`freeze_at`): a partition that begins just as that statement leaves the client.
    """

    def __init__(self, listen: str, target: tuple[str, int]) -> None:
        self.listen = listen
        self.target = target
        self.port = 0
        self.frozen = threading.Event()
        """Set once :meth:`freeze_at`'s statement was seen."""
        self._marker: bytes | None = None
        self._flowing: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="tcp-forwarder", daemon=True)

    def __enter__(self) -> Forwarder:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or not self.port:
            self._thread.join(5)
            raise RuntimeError(f"the forwarder did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)

    def freeze_at(self, marker: bytes) -> None:
        """Relay nothing more, either way, from the next message a client sends that holds
        ``marker``: that message and all that follows stays in flight (undelivered) until
        :meth:`thaw`, as packets do in a partition until it heals. Cut the link at once
        after :attr:`frozen` is set, so that new connections do not get through either."""
        self._marker = marker

    def thaw(self) -> None:
        """Deliver what was held, and relay again."""
        flowing = self._flowing
        if flowing is not None:
            self._loop.call_soon_threadsafe(flowing.set)

    def _main(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._flowing = flowing = asyncio.Event()
        flowing.set()
        transports: set[asyncio.WriteTransport] = set()
        handlers: set[asyncio.Task[Any]] = set()

        async def pipe(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
        ) -> None:
            try:
                while data := await reader.read(65536):
                    # A statement is one message, at the start of what a client sends
                    # (statements are not split across reads in practice).
                    marker = self._marker
                    if upstream and marker is not None and marker in data:
                        self._marker = None
                        flowing.clear()
                        self.frozen.set()
                    await flowing.wait()
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handler = asyncio.current_task()
            assert handler is not None
            handlers.add(handler)
            transports.add(writer.transport)
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.close()
                return
            transports.add(up_writer.transport)
            _short_backoff(writer)
            await asyncio.gather(
                pipe(reader, up_writer, upstream=True), pipe(up_reader, writer, upstream=False)
            )

        server = await asyncio.start_server(connected, self.listen, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for transport in transports:  # the pipes see the end of their streams
                transport.abort()
            flowing.set()
            if handlers:
                await asyncio.wait(handlers, timeout=5)

    def url(self, url: str) -> str:
        """``url`` (a PostgreSQL URL) through this forwarder."""
        parts = urlsplit(url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@{self.listen}:{self.port}" if user else f"{self.listen}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))


def _short_backoff(writer: asyncio.StreamWriter) -> None:
    """Retransmit at most every :data:`_RTO_MAX_MS` on ``writer``'s socket."""
    connection = writer.get_extra_info("socket")
    if connection is not None:
        with contextlib.suppress(OSError):  # an older kernel: the default backoff
            connection.setsockopt(socket.IPPROTO_TCP, _TCP_RTO_MAX_MS, _RTO_MAX_MS)


@contextmanager
def running_server_in(
    netns: Netns, data: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """:func:`running_server` in ``netns`` (``ip netns exec`` execs it: the pid is the
    server's). On exit the link comes back first, so that the server can stop gracefully."""
    # running_server takes no command prefix: its command is swapped while it starts.
    plain = server_process.TIERCEL
    with ExitStack() as stack:
        server_process.TIERCEL = ["ip", "netns", "exec", netns.name, *plain]
        try:
            server = stack.enter_context(running_server(data, *args, env=env))
        finally:
            server_process.TIERCEL = plain
        stack.callback(netns.heal)
        yield server
