"""A Hugging Face Hub-compatible server for tests: writes, tags, branches, PR refs, LFS, on disk.

Independent of fib_data; stdlib only. ``HubServer(root, tokens).start()``; see server.py.
"""

from .server import HubServer

__all__ = ["HubServer"]
