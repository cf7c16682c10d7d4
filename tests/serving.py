"""A real HTTP server on 127.0.0.1 for download tests, with faults on demand.

``Server.files[path] = bytes`` serves a file; ``Server.faults[path]`` makes that path misbehave:

- ``("status", 404)``: answer with that status;
- ``("truncate", k)``: promise the whole length, send the first ``k`` bytes, close the connection;
- ``("stall", k)``: send the headers and ``k`` bytes, then wait (until the server stops);
- ``("dribble", seconds)``: send the body in 64 KiB pieces, ``seconds`` apart.

A fault applies to every request until it is removed (``del server.faults[path]``); ``server.requests`` lists
the paths asked for.
"""
from __future__ import annotations

import http.server
import threading
from typing import Any


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        owner = self.server.owner
        owner.requests.append(self.path)
        fault = owner.faults.get(self.path)
        body = owner.files.get(self.path)
        if fault is not None and fault[0] == "status":
            self.send_error(fault[1])
            return
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if fault is None:
                self.wfile.write(body)
            elif fault[0] == "truncate":
                self.wfile.write(body[: fault[1]])
                self.wfile.flush()
                self.close_connection = True
            elif fault[0] == "stall":
                self.wfile.write(body[: fault[1]])
                self.wfile.flush()
                owner.stop_event.wait(30)
                self.close_connection = True
            elif fault[0] == "dribble":
                for start in range(0, len(body), 1 << 16):
                    self.wfile.write(body[start:start + (1 << 16)])
                    self.wfile.flush()
                    if owner.stop_event.wait(fault[1]):
                        break
        except (BrokenPipeError, ConnectionResetError):
            pass


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: Server


class Server:
    """Serves ``files`` on http://127.0.0.1:PORT until :meth:`stop`."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, tuple[str, Any]] = {}
        self.requests: list[str] = []
        self.stop_event = threading.Event()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.stop_event.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
