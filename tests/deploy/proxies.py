"""Debian's nginx and caddy in front of a gateway, from the shipped configs in
deploy/, each on free loopback ports with a certificate the client trusts."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20.0


@dataclass
class Proxy:
    kind: str
    proc: subprocess.Popen[bytes]
    https_port: int
    http_port: int
    ca_file: Path
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _need(binary: str) -> str:
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if not found:
        pytest.skip(f"Debian's {binary} is not installed (scripts/test installs it)")
    return found


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the proxy did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _replace(text: str, old: str, new: str) -> str:
    """Replace a piece the test relies on; fail loudly if the shipped file lost it."""
    assert old in text, f"deploy config no longer contains {old!r}"
    return text.replace(old, new)


def start_nginx(
    work: Path,
    upstream_port: int,
    host: str = "127.0.0.1",
    *,
    also: tuple[str, ...] = (),
    prefix: tuple[str, ...] = (),
) -> Proxy:
    """nginx for clients at `host` (and the `also` addresses), run under `prefix`
    (e.g. `ip netns exec app`)."""
    nginx = _need("nginx")
    work.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(host, *also, "localhost")
    listen = "0.0.0.0" if also else host
    cert.cert_chain_pems[0].write_to_path(str(work / "fullchain.pem"))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(work / "fullchain.pem"), append=True)
    cert.private_key_pem.write_to_path(str(work / "privkey.pem"))
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    https_port, http_port = free_port(), free_port()

    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = _replace(site, "listen 80;", f"listen {listen}:{http_port};")
    site = _replace(site, "listen [::]:80;", "")
    site = _replace(site, "listen 443 ssl http2;", f"listen {listen}:{https_port} ssl http2;")
    site = _replace(site, "listen [::]:443 ssl http2;", "")
    site = _replace(
        site,
        "/etc/letsencrypt/live/workshop.example.org/fullchain.pem",
        str(work / "fullchain.pem"),
    )
    site = _replace(
        site, "/etc/letsencrypt/live/workshop.example.org/privkey.pem", str(work / "privkey.pem")
    )
    site = _replace(site, "server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};")
    (work / "site.conf").write_text(site)
    temp = work / "temp"
    temp.mkdir(exist_ok=True)
    (work / "nginx.conf").write_text(f"""
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {work}/site.conf;
}}
""")
    log = work / "nginx.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*prefix, nginx, "-c", str(work / "nginx.conf"), "-p", str(work)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_port(host, https_port, proc, log)
    return Proxy("nginx", proc, https_port, http_port, work / "ca.pem", host)


def start_caddy(work: Path, upstream_port: int, host: str = "127.0.0.1") -> Proxy:
    caddy = _need("caddy")
    work.mkdir(parents=True, exist_ok=True)
    https_port, http_port = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "XDG_DATA_HOME": str(work / "data"),
        "XDG_CONFIG_HOME": str(work / "config"),
        "COMFY_MULTI_DOMAIN": host,
        "COMFY_MULTI_UPSTREAM": f"127.0.0.1:{upstream_port}",
        "CADDY_HTTPS_PORT": str(https_port),
        "CADDY_HTTP_PORT": str(http_port),
        "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
    }
    log = work / "caddy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                caddy,
                "run",
                "--config",
                str(ROOT / "deploy" / "Caddyfile"),
                "--adapter",
                "caddyfile",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work,
        )
    _wait_port(host, https_port, proc, log)
    root = work / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not root.exists():  # `tls internal`: Caddy's own CA, made at first start
        if time.monotonic() > deadline:
            raise RuntimeError(f"caddy made no local CA:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return Proxy("caddy", proc, https_port, http_port, root, host)
