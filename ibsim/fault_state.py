"""What is broken right now in the simulated gateway (wall-clock based but for the gateway's
own downtimes, which are on the simulated clock). The fault injector (faults.py) sets it;
sessions, handlers, the streamer and the order gate read it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class FaultState:
    refusing: bool = False  # listening socket closed for a while (refuse_connections)
    down_until: float | None = None  # simulated time the gateway is back (restart, outage)
    connectivity_lost: bool = False  # between 1100 and 1101/1102
    farm_broken: bool = False  # between 2103 and 2104
    competing_session: bool = False  # 10197: no market data
    stalled: set[int] = field(default_factory=set)  # conIds with silently stopped data
    pacing_next: bool = False  # the next historical request gets 162
    ack_delay: float = 0.0  # seconds to hold every placeOrder/cancelOrder

    @property
    def port_closed(self) -> bool:
        return self.refusing or self.down_until is not None

    def data_blocked(self, con_id: int) -> bool:
        return (
            self.connectivity_lost
            or self.farm_broken
            or self.competing_session
            or con_id in self.stalled
        )
