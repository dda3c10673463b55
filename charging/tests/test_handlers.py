"""The port's door: every event and query a gateway may send has a handler."""

from __future__ import annotations

import pytest

from charging import handlers, port

GATEWAY_MESSAGES = (
    port.PileTakeoverRefused, port.FaultsReported, port.FirmwareStatus,
    port.PileLogin, port.PileLogins, port.PileOnline, port.PilesOnline, port.PileOffline,
    port.PilesOffline, port.ConnectorReports,
    port.ConnectorStatusChanged, port.PileTariffQuery, port.Progress, port.ProgressBatch,
    port.ReadingsSampled, port.StartResult,
    port.StopResult, port.TransactionRecord, port.CardStartRequest, port.PileTariffsQuery,
    port.PilesQuery, port.VisiblePilesQuery, port.OperatorQuery, port.CredentialQuery,
    port.RecordReviewQuery,
    # interconnection (T/CEC): partners' queries and requests
    port.StationsQuery, port.OrdersQuery, port.PartnerStart, port.PartnerStop,
    port.PartnerBalanceQuery,
    # interconnection the other way: partners' stations, our members' orders on their piles
    port.PartnerStationsPulled, port.PartnerConnectorChanged, port.RoamingOrdersQuery,
    port.RoamingStarted, port.RoamingProgress, port.RoamingStopped, port.RoamingBill,
    port.RoamingReconcile,
)


def test_every_gateway_message_has_a_handler():
    assert set(handlers.HANDLERS) == set(GATEWAY_MESSAGES)


def test_anything_else_is_refused():
    with pytest.raises(TypeError):
        handlers.handle(port.RemoteStop(pile_code="44010600000101", connector_no=1))
    with pytest.raises(TypeError):
        handlers.handle({"type": "Progress"})
