"""Two hosts on one machine: network namespaces joined by veth pairs.

    test (root ns) ──client link── app host (gateway + TLS proxy) ──gpu link── GPU host
    10.214.N.2                     10.214.N.1 / 10.213.N.1                     10.213.N.2

The GPU host can reach nothing but the app host's proxy; the test cuts and
restores the gpu link with `ip link set ... down/up`.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class TwoHosts:
    app: str
    gpu: str
    gpu_link: str  # the GPU host's end of the link to the app host
    app_addr_for_client: str
    app_addr_for_gpu: str

    def on(self, ns: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", ns)

    def cut(self) -> None:
        ip("netns", "exec", self.gpu, "ip", "link", "set", self.gpu_link, "down")

    def restore(self) -> None:
        ip("netns", "exec", self.gpu, "ip", "link", "set", self.gpu_link, "up")


def can_make_namespaces() -> str | None:
    """None when this machine lets the tests make namespaces, else why not."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"cm-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` is not allowed here: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@contextmanager
def two_hosts() -> Iterator[TwoHosts]:
    why = can_make_namespaces()
    if why:
        pytest.skip(f"two-host test skipped: {why}")
    n = random.randrange(1, 250)
    tag = f"{os.getpid() % 10000}{n}"
    app, gpu = f"cm-app-{tag}", f"cm-gpu-{tag}"
    client_root, client_app = f"cmr{tag}", f"cmc{tag}"
    gpu_app, gpu_gpu = f"cma{tag}", f"cmg{tag}"
    hosts = TwoHosts(app, gpu, gpu_gpu, f"10.214.{n}.1", f"10.213.{n}.1")
    try:
        ip("netns", "add", app)
        ip("netns", "add", gpu)
        for ns in (app, gpu):
            ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        # the test's own link to the app host
        ip("link", "add", client_root, "type", "veth", "peer", "name", client_app)
        ip("link", "set", client_app, "netns", app)
        ip("addr", "add", f"10.214.{n}.2/30", "dev", client_root)
        ip("link", "set", client_root, "up")
        ip("netns", "exec", app, "ip", "addr", "add", f"10.214.{n}.1/30", "dev", client_app)
        ip("netns", "exec", app, "ip", "link", "set", client_app, "up")
        # the GPU host's only link: to the app host
        ip("link", "add", gpu_app, "type", "veth", "peer", "name", gpu_gpu)
        ip("link", "set", gpu_app, "netns", app)
        ip("link", "set", gpu_gpu, "netns", gpu)
        ip("netns", "exec", app, "ip", "addr", "add", f"10.213.{n}.1/30", "dev", gpu_app)
        ip("netns", "exec", app, "ip", "link", "set", gpu_app, "up")
        ip("netns", "exec", gpu, "ip", "addr", "add", f"10.213.{n}.2/30", "dev", gpu_gpu)
        ip("netns", "exec", gpu, "ip", "link", "set", gpu_gpu, "up")
        yield hosts
    finally:
        for ns in (app, gpu):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", client_root], capture_output=True)
