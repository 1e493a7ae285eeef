"""TCP ports on this machine: is one free, pick free ones, can an address be reached."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable

LOCALHOST = "127.0.0.1"


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """True if a server could listen on host:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option uvicorn and Tansu use, so a port with only TIME_WAIT leftovers counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def any_free_port(host: str = LOCALHOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pick_ports(count: int, preferred: Iterable[int], *, exclude: Iterable[int] = ()) -> list[int]:
    """`count` distinct free ports, taken from `preferred` in order first, then anywhere."""
    taken = set(exclude)
    chosen: list[int] = []
    for port in preferred:
        if len(chosen) == count:
            break
        if port not in taken and port_is_free(port):
            chosen.append(port)
            taken.add(port)
    while len(chosen) < count:
        port = any_free_port()
        if port not in taken:
            chosen.append(port)
            taken.add(port)
    return chosen


def tcp_reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_listening(host: str, port: int, timeout: float, *, alive: Callable[[], bool] | None = None) -> bool:
    """Poll until something accepts connections on host:port, or `timeout` seconds pass.

    `alive` is an optional callable; when it returns False the wait gives up early (the process that was
    meant to listen has died).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tcp_reachable(host, port, timeout=0.5):
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.05)
    return False


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """'host:port', '[v6]:port' or 'host' → (host, port)."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else default_port
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host, int(port)
