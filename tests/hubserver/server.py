"""The test Hub server: a ThreadingHTTPServer on 127.0.0.1 in a background thread.

State that must survive a restart lives in ``Storage`` on disk; what lives here (upload tickets,
request counters, the crash switch) is per process, as it would be on a real server.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path

from .routes import Handler
from .storage import Storage

#: The real Hub sends files above 10 MB through LFS even without a .gitattributes pattern.
LFS_THRESHOLD = 10 * 1024 * 1024


class HubServer:
    """``tokens`` maps a token to (user name, "read" | "write")."""

    def __init__(self, root: str | os.PathLike, tokens: dict[str, tuple[str, str]],
                 lfs_threshold: int = LFS_THRESHOLD, port: int = 0):
        self.storage = Storage(root)
        self.tokens = dict(tokens)
        self.lfs_threshold = lfs_threshold
        self.lock = threading.Lock()
        self._stopping = threading.Lock()
        self.tickets: dict = {}
        self.requests: Counter = Counter()
        self.bytes_in: Counter = Counter()
        self.unknown: list[str] = []  # requests no route matched
        self.failures: list[str] = []  # requests a route crashed on
        self._crash: tuple[str, int] | None = None
        self._port = port
        self.httpd = None
        self.dead = False

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "HubServer":
        self.dead = False
        self.tickets.clear()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.app = self
        self._port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="hubserver").start()
        return self

    def stop(self) -> None:
        self.dead = True
        with self._stopping:  # die() stops from a thread; a restart may race with it
            httpd, self.httpd = self.httpd, None
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()

    def restart(self) -> "HubServer":
        """Stop and start again on the same port, from what is on disk."""
        self.stop()
        return self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # ---- failure injection -------------------------------------------------------------------
    def crash_during(self, route: str, after_bytes: int) -> None:
        """Die (drop the connection, stop listening) after reading ``after_bytes`` of the next
        ``route`` request body that is larger than that."""
        self._crash = (route, after_bytes)

    def crash_budget(self, route: str) -> int | None:
        return self._crash[1] if self._crash and self._crash[0] == route else None

    def die(self) -> None:
        self._crash = None
        self.dead = True
        threading.Thread(target=self.stop, daemon=True).start()

    # ---- bookkeeping -------------------------------------------------------------------------
    def log(self, method: str, route: str) -> None:
        self.requests[f"{method} {route}"] += 1

    def count_bytes(self, route: str, n: int) -> None:
        self.bytes_in[route] += n

    def reset_counters(self) -> None:
        self.requests.clear()
        self.bytes_in.clear()

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(root: str | Path, port: int, tokens: dict[str, tuple[str, str]]) -> None:
    """Run in the foreground (``python -m hubserver`` from tests/), for trying the CLI by hand."""
    hub = HubServer(root, tokens, port=port).start()
    print(f"test Hub at {hub.url}, data in {root}; tokens: {', '.join(tokens)}", flush=True)
    threading.Event().wait()
