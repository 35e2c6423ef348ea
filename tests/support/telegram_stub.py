"""Local stand-ins for notification endpoints: a Telegram Bot API server (POST /bot<token>/sendMessage with
Telegram's JSON answers, including flood control's 429 with `parameters.retry_after`) and a JSON webhook
receiver. Both are real HTTP servers on a free loopback port, run in a thread, and can be scripted:
answer 429 / 5xx to matching requests, or hold matching requests until released."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.support.ports import free_port

Match = Callable[[str], bool]


@dataclass
class Rule:
    """Answer requests whose text matches with `status` (429: retry_after) `times` times (None: always)."""

    match: Match
    status: int
    retry_after: float = 0
    times: int | None = 1
    hits: int = 0


@dataclass
class Hold:
    match: Match
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a held request (a timeout test) is expected, not an error


class _ScriptedServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.rules: list[Rule] = []
        self.holds: list[Hold] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._server: _QuietServer | None = None

    def respond(
        self, status: int, *, match: Match = lambda _t: True, retry_after: float = 0, times: int | None = 1
    ) -> Rule:
        rule = Rule(match, status, retry_after, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def hold(self, match: Match) -> Hold:
        """Keep matching requests waiting (a slow endpoint) until `hold.release.set()`."""
        hold = Hold(match)
        with self._lock:
            self.holds.append(hold)
        return hold

    def _scripted(self, text: str) -> Rule | None:
        with self._lock:
            self.requests += 1
            for rule in self.rules:
                if (rule.times is None or rule.hits < rule.times) and rule.match(text):
                    rule.hits += 1
                    return rule
        return None

    def _wait_holds(self, text: str) -> None:
        for hold in list(self.holds):
            if hold.match(text):
                hold.arrived.set()
                hold.release.wait(30)

    def start(self) -> _ScriptedServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body, headers = owner.handle(self.path, self.headers.get("Content-Type", ""), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def handle(self, path: str, content_type: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def stop(self) -> None:
        for hold in self.holds:
            hold.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramStub(_ScriptedServer):
    """The subset of the Bot API the notifier uses: sendMessage, with Telegram's JSON answers."""

    def __init__(self, token: str = "123456789:stub-TOKEN_abcdefghijklmnop", chat_id: str = "-1001234567890") -> None:
        super().__init__()
        self.token = token
        self.chat_id = chat_id
        self.messages: list[dict[str, Any]] = []  # accepted sendMessage calls: chat_id, text, message_id

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def texts(self) -> list[str]:
        with self._lock:
            return [m["text"] for m in self.messages]

    def env(self) -> dict[str, str]:
        return {
            "HFT_TELEGRAM_ENABLED": "1",
            "HFT_TELEGRAM_BOT_TOKEN": self.token,
            "HFT_TELEGRAM_CHAT_ID": self.chat_id,
            "HFT_NOTIFY__TELEGRAM__BASE_URL": self.base_url,
        }

    @staticmethod
    def _error(code: int, description: str, **extra: Any) -> tuple[int, Any, dict[str, str]]:
        return code, {"ok": False, "error_code": code, "description": description, **extra}, {}

    def handle(self, path: str, content_type: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        prefix, _, method = path.lstrip("/").partition("/")
        if not prefix.startswith("bot") or prefix[3:] != self.token:
            return self._error(401, "Unauthorized")
        if method != "sendMessage":
            return self._error(404, "Not Found")
        if "json" in content_type:
            params = json.loads(raw or b"{}")
        else:
            params = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        text = str(params.get("text", ""))
        self._wait_holds(text)
        rule = self._scripted(text)
        if rule is not None and rule.status == 429:
            wait = rule.retry_after
            return self._error(429, f"Too Many Requests: retry after {wait:g}", parameters={"retry_after": wait})
        if rule is not None:
            return self._error(rule.status, "Internal Server Error" if rule.status >= 500 else "Bad Request")
        if str(params.get("chat_id")) != self.chat_id:
            return self._error(400, "Bad Request: chat not found")
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if _utf16_len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        with self._lock:
            message_id = len(self.messages) + 1
            self.messages.append({"chat_id": params["chat_id"], "text": text, "message_id": message_id})
        result = {
            "message_id": message_id,
            "date": int(time.time()),
            "text": text,
            "from": {
                "id": int(self.token.split(":")[0]),
                "is_bot": True,
                "first_name": "hftops stub",
                "username": "hftops_stub_bot",
            },
            "chat": {
                "id": int(self.chat_id) if self.chat_id.lstrip("-").isdigit() else self.chat_id,
                "type": "supergroup",
            },
        }
        return 200, {"ok": True, "result": result}, {}


class WebhookReceiver(_ScriptedServer):
    """Accepts JSON POSTs on `path`; records each body."""

    def __init__(self, path: str = "/hooks/hftops-secret-path") -> None:
        super().__init__()
        self.path = path
        self.bodies: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def texts(self) -> list[str]:
        with self._lock:
            return [b["text"] for b in self.bodies]

    def handle(self, path: str, content_type: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        if path != self.path:
            return 404, {"error": "no such hook"}, {}
        body = json.loads(raw or b"{}")
        text = str(body.get("text", ""))
        self._wait_holds(text)
        rule = self._scripted(text)
        if rule is not None:
            headers = {"Retry-After": f"{rule.retry_after:g}"} if rule.status == 429 else {}
            return rule.status, {"error": "scripted"}, headers
        with self._lock:
            self.bodies.append(body)
        return 200, {"ok": True}, {}
