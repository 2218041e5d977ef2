"""ibsim: a simulated IB Gateway speaking the TWS socket protocol.

See ibsim/README.md for the public API, the control channel and the simulated market.
"""

from .contracts import ContractSpec, build_universe
from .gateway import SimGateway

__all__ = ["ContractSpec", "SimGateway", "build_universe"]
