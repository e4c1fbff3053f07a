"""A real HTTP receiver on 127.0.0.1 for alert sinks: a Slack-style webhook and a Telegram-shaped Bot API."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    """What the server got, per path kind, and what it answers (``status`` per kind)."""

    url: str = ""
    status: dict[str, int] = field(default_factory=lambda: {"webhook": 200, "telegram": 200})
    requests: dict[str, list[dict]] = field(default_factory=lambda: {"webhook": [], "telegram": []})
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def texts(self, kind: str) -> list[str]:
        return [r["text"] for r in self.requests[kind]]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = "telegram" if self.path.endswith("/sendMessage") else "webhook"
            with receiver.lock:
                receiver.paths.append(self.path)
                receiver.requests[kind].append(json.loads(body or b"{}"))
                status = receiver.status[kind]
            answer = {"ok": status == 200, "result": {"message_id": 1}} if kind == "telegram" else {"ok": True}
            data = json.dumps(answer).encode() if kind == "telegram" else b"ok"
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if kind == "telegram" else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # keep test output clean
            return

    return Handler


@contextmanager
def loopback_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
