"""docs/self-hosting.md as written: its nginx block passes `nginx -t` and serves a relay,
websockets and X-Forwarded-For included. Skipped where nginx is not installed
(`dev.py test` installs it with apt-get when it can)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from carnet.relay.pg_cluster import free_port
from tests.relay.helpers import Api, Device, new_keys
from tests.support.relay_process import RelayProcess, start_relay

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "self-hosting.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(
    not (os.access(NGINX, os.X_OK) and shutil.which("openssl")), reason="nginx not installed"
)


def guide_block() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) == 1, "the guide has one nginx block, the one tested here"
    return blocks[0]


def nginx_config(root: Path, port: int, relay_port: int) -> Path:
    """The guide's block inside a minimal nginx.conf, on test ports and a test certificate."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(root / "key.pem"),
         "-out", str(root / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    block = guide_block()
    for old, new in {
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "listen [::]:443 ssl;": "",
        "/etc/letsencrypt/live/relay.example.org/fullchain.pem": str(root / "cert.pem"),
        "/etc/letsencrypt/live/relay.example.org/privkey.pem": str(root / "key.pem"),
        "server 127.0.0.1:8470;": f"server 127.0.0.1:{relay_port};",
    }.items():
        assert old in block, old
        block = block.replace(old, new)
    temp = "\n".join(f"{kind}_temp_path {root}/{kind};" for kind in ("client_body", "proxy"))
    conf = root / "nginx.conf"
    conf.write_text(
        f"daemon off;\n{'user root;' if os.geteuid() == 0 else ''}\nworker_processes 1;\n"
        f"pid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n"
        f"events {{ worker_connections 128; }}\n"
        f"http {{\n{temp}\nfastcgi_temp_path {root}/f;\nuwsgi_temp_path {root}/u;\n"
        f"scgi_temp_path {root}/s;\n{block}\n}}\n"
    )
    return conf


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    args = ("--trusted-proxy", "127.0.0.1", "--rate-per-address", "1")
    with start_relay(tmp_path / "relay", *args, "--burst-per-address", "6") as process:
        yield process


@pytest.fixture
def proxy(tmp_path: Path, relay: RelayProcess) -> Iterator[str]:
    port = free_port()
    conf = nginx_config(tmp_path, port, relay.port)
    prefix = ["-p", str(tmp_path), "-e", str(tmp_path / "startup.log"), "-c", str(conf)]
    checked = subprocess.run([NGINX, "-t", *prefix], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    server = subprocess.Popen([NGINX, *prefix], stderr=subprocess.DEVNULL)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


async def test_the_guides_nginx_block_proxies_the_relay(proxy: str) -> None:
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    connector = aiohttp.TCPConnector(ssl=insecure)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = Api(session, proxy)
        for _ in range(50):  # nginx may take a moment to listen
            try:
                if (await api.call("GET", "/healthz")).status == 200:
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        keys = new_keys()
        assert (await api.create(keys)).status == 201
        async with await api.subscribe(keys) as ws:  # the upgrade passes through
            assert (await asyncio.wait_for(ws.receive_json(), 5)) == {"cursor": 0}
            assert (await api.append(keys, Device(keys).batch(1))).status == 200
            assert (await asyncio.wait_for(ws.receive_json(), 5)) == {"cursor": 1}
        # nginx replaces X-Forwarded-For: a client cannot pose as many addresses to
        # escape its rate limit (burst 6 here, already partly spent).
        statuses = []
        for n in range(8):
            reply = await api.call("GET", "/nowhere", headers={"X-Forwarded-For": f"10.1.1.{n}"})
            statuses.append(reply.status)
        assert 429 in statuses
