"""The supervisor client (stdlib http.client over the control socket), against a real HTTP server on a unix socket."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from hftops.config.paths import DataPaths
from hftops.control.client import SupervisorClient, SupervisorUnavailable
from hftops.control.instance_lock import CONTROL_SOCKET


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"a": ', b"[1, 2, 3]", b"}"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.startswith("/garbage"):
            self.wfile.write(b"SPDY/9 nonsense\r\n\r\n")
            self.close_connection = True
        elif self.path.startswith("/hang-up"):
            self.close_connection = True
        else:
            self._json(200, {"path": self.path, "connection": self.headers.get("Connection")})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._json(202, {"echo": json.loads(body) if body else None, "type": self.headers.get("Content-Type")})

    def _json(self, status: int, payload: object) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def paths(tmp_path: Path) -> Iterator[DataPaths]:
    paths = DataPaths(tmp_path / "var")
    paths.run.mkdir(parents=True)
    server = _Server(str(paths.run / CONTROL_SOCKET), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield paths
    server.shutdown()
    server.server_close()


def test_get_with_query_and_post_with_a_json_body(paths: DataPaths) -> None:
    client = SupervisorClient(paths)
    status, body = client.request("GET", "/api/status", params={"ledger": "false"})
    assert (status, body) == (200, {"path": "/api/status?ledger=false", "connection": None})
    status, body = client.request("POST", "/local/shutdown", json={"drain": True})
    assert (status, body) == (202, {"echo": {"drain": True}, "type": "application/json"})
    status, body = client.request("POST", "/local/ping")  # no body: Content-Length 0, not a hang
    assert (status, body) == (202, {"echo": None, "type": None})


def test_a_chunked_answer_is_joined(paths: DataPaths) -> None:
    assert SupervisorClient(paths).request("GET", "/chunked") == (200, {"a": [1, 2, 3]})


@pytest.mark.parametrize("path", ["/garbage", "/hang-up"])
def test_what_is_not_an_http_answer_says_so(paths: DataPaths, path: str) -> None:
    with pytest.raises(SupervisorUnavailable, match="supervisor not answering"):
        SupervisorClient(paths).request("GET", path)


def test_no_socket_means_no_supervisor(tmp_path: Path) -> None:
    client = SupervisorClient(DataPaths(tmp_path / "nothing"))
    with pytest.raises(SupervisorUnavailable, match="no control socket"):
        client.request("GET", "/api/status")
    assert not client.running()
