"""The one seam from the core to the composition root.

``DecentroService()`` with no ports (the integration guide's usage) needs real ports built
from settings, which only ``decentro_adapters.bootstrap`` can do. This module is the only
place the core names the adapters package, imported plainly, inside the function, so
importing the core loads no adapter or driver (a test checks both).
"""

from __future__ import annotations

from collections.abc import Callable

from .ports import Ports
from .settings import Settings

__all__ = ["default_ports"]


def default_ports(settings: Settings) -> tuple[Ports, Callable[[], None]]:
    """Every port built from ``settings``, and the one function that closes what was opened."""
    from decentro_adapters.bootstrap import build_ports  # the composition root

    return build_ports(settings)
