"""What the tests and the benchmarks share: a real uvicorn server in a subprocess on 127.0.0.1, the
system Chromium, and probes (process memory, percentiles, TCP states, a stalled WebSocket client)."""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.security import TOKEN_HEADER

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_chromium() -> str | None:
    """$CHROMIUM if set, else `chromium` (or `chromium-browser`) on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return shutil.which("chromium") or shutil.which("chromium-browser")


class LiveServer:
    """The real app under uvicorn in a child process, so tests can stop, kill -9 and restart it.

    `host` is what --host binds (tests connect to 127.0.0.1 whatever it is). `token` is passed
    as --token; a server bound beyond loopback without one makes one up and prints it, and
    `start` reads it from that line. Either way `token` then holds it, and `headers()` carries it.
    """

    def __init__(
        self,
        data_dir: Path,
        extra_args: list[str] | None = None,
        host: str = "127.0.0.1",
        token: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args or [])
        self.host = host
        self.token = token
        self._token_given = token is not None
        self.port = 0
        self.log_start = 0  # where this start's output begins in the log file
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:43211."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The base WebSocket URL, e.g. ws://127.0.0.1:43211."""
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, same_port: bool = False) -> LiveServer:
        """Start the server and wait until /api/health answers (on the port it had before, with
        same_port: a page that was open on it finds it again)."""
        if not (same_port and self.port):
            self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            *(["--token", self.token] if self._token_given and self.token else []),
            *self.extra_args,
        ]
        if not self._token_given:
            self.token = None  # a made-up token is new at every start
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            if self.token is None:
                self.token = self.printed_token()
            try:
                answer = httpx.get(self.url + "/api/health", headers=self.headers(), timeout=1.0)
                if answer.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s: {self.log()}")

    def headers(self) -> dict[str, str]:
        """The token header when the server requires a token, else nothing."""
        return {TOKEN_HEADER: self.token} if self.token else {}

    def printed_url(self) -> str | None:
        """The address the server printed at this start ("... serving on <url>"), if yet."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_start)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return None
        match = re.search(r"serving on (\S+)", text)
        return match.group(1) if match else None

    def printed_token(self) -> str | None:
        """The ?token= of the printed address, if it has one."""
        url = self.printed_url()
        match = re.search(r"[?&]token=([^&\s]+)", url or "")
        return match.group(1) if match else None

    def stop(self, timeout: float = 15.0) -> None:
        """Ctrl-C the server (SIGINT) and wait for a clean exit; kill it if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        """What the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""


# ------------------------------------------------------------------------------------ probes

TCP_STATES = {
    "01": "ESTABLISHED",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0B": "CLOSING",
}
TCP_ESTABLISHED = "ESTABLISHED"  # what server_side_tcp reports for an open connection


def rss_mb(pid: int) -> float:
    """VmRSS of a process in MB."""
    return _status_mb(pid, "VmRSS")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process in MB: the most resident memory it has had (since the last reset)."""
    return _status_mb(pid, "VmHWM")


def address_space_mb(pid: int) -> float:
    """VmSize of a process in MB: what an RLIMIT_AS limit is compared with."""
    return _status_mb(pid, "VmSize")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current VmRSS (Linux /proc/<pid>/clear_refs "5"); False if refused,
    and then VmHWM keeps the peak since the process started."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _status_mb(pid: int, key: str) -> float:
    """A kB field of /proc/<pid>/status in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def stalled_websocket(port: int, session_id: str) -> socket.socket:
    """A WebSocket handshake on a raw socket with a 4 KiB receive buffer, then never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/sessions/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    if not response.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {response[:200]!r}")
    return sock


def server_side_tcp(server_port: int, client_port: int) -> tuple[str, int] | None:
    """(state, bytes queued to send) of the server's end of a loopback connection."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == server_port and (
                int(remote.split(":")[1], 16) == client_port
            ):
                state = TCP_STATES.get(fields[3], fields[3])
                return state, int(fields[4].split(":")[0], 16)
    return None


def drain(sock: socket.socket, limit: float) -> tuple[int, bool, tuple[int, str] | None]:
    """Read for at most `limit` seconds (or until EOF or 1 s of silence): (bytes, EOF, close
    frame (code, reason) if one came)."""
    data = bytearray()
    eof = False
    deadline = time.monotonic() + limit
    sock.settimeout(1.0)
    with contextlib.suppress(TimeoutError, OSError):
        while time.monotonic() < deadline:
            chunk = sock.recv(1 << 20)
            if not chunk:
                eof = True
                break
            data.extend(chunk)
    return len(data), eof, close_frame(bytes(data))


def close_frame(data: bytes) -> tuple[int, str] | None:
    """(code, reason) of the first close frame in a server-to-client byte stream."""
    at = 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, at)
            at += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, at)
            at += 8
        payload = data[at : at + length]
        at += length
        if opcode == 0x8:
            code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
            return code, payload[2:].decode(errors="replace")
    return None


# ------------------------------------------------------------------------------------ a small disk


def mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` ("4m") on the directory `path` (created); None when mounted, else
    why it cannot be (not root, no mount command, no permission in this container)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    mount = shutil.which("mount")
    if mount is None:
        return "no mount command"
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        return f"mount -t tmpfs failed: {(done.stderr or done.stdout).strip()}"
    return None


def unmount(path: Path) -> None:
    """Unmount what mount_tmpfs mounted (lazily, so an open file cannot keep it)."""
    umount = shutil.which("umount") or "umount"
    subprocess.run([umount, "-l", str(path)], capture_output=True, timeout=30)


def fill_disk(directory: Path) -> Path:
    """Write zeros into a new file in `directory` until its file system is full; the file."""
    filler = directory / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = bytes(64 * 1024)
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 512:
                    break  # not even 512 bytes fit: full
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    return filler
