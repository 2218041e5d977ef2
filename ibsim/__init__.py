"""ibsim: a simulated IB Gateway speaking the TWS socket protocol.

``SimGateway`` is the in-process entry point; ``ibsim.cli.main(argv)`` the standalone one.
ibsim/README.md documents the constructor, faults, hooks, and the control channel: a loopback
TCP port (``--control-port``) taking one JSON object per line, e.g.
``{"cmd": "connectivity_lost", "seconds": 5}``, and answering ``{"ok": true, ...}``.
"""

from .contracts import ContractSpec, build_universe
from .gateway import SimGateway

__all__ = ["ContractSpec", "SimGateway", "build_universe"]
