"""Run one watched script and a live server inside a new network namespace that has only the
loopback interface, and write what the server recorded as JSON (tests/client/test_ray_train.py).

Why: Ray's start-up asks the cloud metadata address (169.254.169.254) which cloud it runs on,
with no public switch to stop it, and our tests make no traffic beyond 127.0.0.1. Inside the
namespace there is no route anywhere else, so such a request fails at once and nothing leaves
the machine. Run as `unshare --net python -m tests.client.netns_run SCRIPT OUT` (Linux, root or
a user namespace).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import ROOT, LiveServer

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1  # from <linux/sockios.h>, <net/if.h>


def loopback_up() -> None:
    """A new network namespace starts with lo down: bring it up (what `ip link set lo up` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def main(script: Path, out: Path) -> None:
    loopback_up()
    live = LiveServer(out.parent / "netns-data").start(timeout=60.0)
    try:
        env = {**os.environ, "BACKPROP_LENS_URL": live.url, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            cwd=script.parent,
            capture_output=True,
            text=True,
            timeout=280,
        )
        sessions = httpx.get(live.url + "/api/sessions", timeout=30).json()["sessions"]
        metrics = [
            httpx.get(live.url + f"/api/sessions/{s['id']}/metrics", timeout=30).json()
            for s in sessions
        ]
    finally:
        live.stop()
    record = {
        "interfaces": sorted(name for _index, name in socket.if_nameindex()),
        "returncode": done.returncode,
        "output": done.stdout + done.stderr,
        "sessions": sessions,
        "metrics": metrics,
    }
    out.write_text(json.dumps(record), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
