"""``cd tests && python -m hubserver DIR [PORT]``: a test Hub with token hf_write (write) and hf_read."""

import sys

from .server import serve

serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0,
      {"hf_write": ("writer", "write"), "hf_read": ("reader", "read")})
