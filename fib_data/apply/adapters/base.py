"""What an adapter is: the flashinfer paths it patches, the definition family it serves, and a
wrapper factory. Wrappers keep the original's signature, convert its arguments to definition
inputs by name, and call the original whenever anything does not fit."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..routes import Site


@dataclass
class Adapter:
    entry: str                                   # name shown in the log and explain()
    prefixes: tuple[str, ...]                    # definition names it may serve
    targets: Mapping[str, tuple[str, ...]]       # role -> dotted paths under the root module
    make: Callable[[str, Callable, Site], Callable]
    slots: tuple[str, ...]                       # definition input names, in the wrapper's order
    aliases: Mapping[str, str] = field(default_factory=dict)     # other input names -> slot
    weights: Mapping[str, float] = field(default_factory=dict)   # var-axis weights (nearest.py)

    def site(self, runtime) -> Site:
        site = Site(runtime, self.entry, self.prefixes, self.slots, self.aliases, self.weights)
        if "plan" in self.targets:
            from .paged import Plans

            # Per apply() session: a plan recorded in an earlier session must never serve a run.
            site.plans = Plans()
        return site

    def wrap(self, role: str, original: Callable, site: Site) -> Callable:
        wrapper = self.make(role, original, site)
        functools.update_wrapper(wrapper, original)
        wrapper.__fib_apply__ = site.entry
        return wrapper


def write_back(result, buffer):
    """Copy into the caller's ``out=`` buffer when it gave one, as the original would."""
    if buffer is None:
        return result
    buffer.copy_(result)
    return buffer
