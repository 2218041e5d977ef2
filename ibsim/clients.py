"""The connected clients: every open socket, the ready ones by clientId, and the index of which
client is subscribed to which contract's market data (rebuilt after subscriptions change)."""

from __future__ import annotations

from collections.abc import Callable

from .session import ClientSession, KeepUpSub, MktDataSub, RealTimeSub

# (session, kind "mkt" / "rt" / "keep", reqId, subscription)
Subscriber = tuple[ClientSession, str, int, MktDataSub | RealTimeSub | KeepUpSub]


class Clients:
    def __init__(self) -> None:
        self._open: set[ClientSession] = set()
        self._by_id: dict[int, ClientSession] = {}
        self._index: dict[int, list[Subscriber]] | None = None
        self._holding = False

    # --- registry ----------------------------------------------------------------------------

    def opened(self, session: ClientSession) -> None:
        self._open.add(session)
        if self._holding:
            session.hold()

    def ready(self, session: ClientSession) -> None:
        """The session has a clientId (after startApi)."""
        assert session.client_id is not None
        self._by_id[session.client_id] = session

    def closed(self, session: ClientSession) -> bool:
        """Forget a closed socket; True when it was a ready client (now gone)."""
        self._open.discard(session)
        if session.client_id is None or self._by_id.get(session.client_id) is not session:
            return False
        del self._by_id[session.client_id]
        self.subscriptions_changed()
        return True

    def in_use(self, client_id: int) -> bool:
        return client_id in self._by_id

    def get(self, client_id: int) -> ClientSession | None:
        return self._by_id.get(client_id)

    def ids(self) -> list[int]:
        return sorted(self._by_id)

    def sessions(self) -> list[ClientSession]:
        """The ready clients."""
        return list(self._by_id.values())

    def sockets(self) -> list[ClientSession]:
        """Every open socket, ready or still in the handshake."""
        return list(self._open)

    def broadcast(self, fields: list[str] | Callable[[ClientSession], list[str]]) -> None:
        """One message to every ready client (built per client when ``fields`` is callable)."""
        for s in self.sessions():
            s.write(fields(s) if callable(fields) else fields)

    def hold(self) -> None:
        """Hold every socket's output (sockets opened meanwhile too) until `release`."""
        self._holding = True
        for s in self._open:
            s.hold()

    def release(self) -> None:
        self._holding = False
        for s in list(self._open):
            s.release()

    # --- market-data subscriptions -------------------------------------------------------------

    def subscriptions_changed(self) -> None:
        self._index = None

    def market_subscribers(self) -> dict[int, list[Subscriber]]:
        """conId -> every live market-data subscription on it."""
        if self._index is None:
            index: dict[int, list[Subscriber]] = {}
            for s in self.sessions():
                subs: tuple[tuple[str, dict], ...] = (
                    ("mkt", s.subs.mkt_data),
                    ("rt", s.subs.realtime),
                    ("keep", s.subs.keep_up),
                )
                for kind, by_req in subs:
                    for req_id, sub in by_req.items():
                        index.setdefault(sub.spec.con_id, []).append((s, kind, req_id, sub))
            self._index = index
        return self._index
