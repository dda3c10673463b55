"""Commands from the bus run on a pile's connection (platform → pile frames)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from urllib.parse import unquote, urlsplit

from django.conf import settings

from charging import port
from protocols import adapters

from .. import codes
from .. import messages as m
from ..commands import YKC_COMMANDS, YkcPushBillingModel, YkcReboot, YkcTimeSync, YkcWorkParams
from ..errors import EncodeError
from ..fields import PILE_TZ
from .common import ZERO_CARD, adapters_call, connector_status, logger
from .connection import PileConnection

FIRMWARE_REPLY_WAIT_S = 5.0  # 0x93 may come at once or only after the download


class CommandRunner:
    """Bus commands on a pile's connection (mixed into :class:`YkcGateway`)."""

    async def execute(self, schema: str, data: dict) -> port.CommandResult:
        """Run one bus command on the pile's connection; the bus applies the deadline."""
        try:
            kind = data["type"]
            if kind in port.COMMANDS:
                command = port.command_from_dict(data)
            else:
                command = YKC_COMMANDS[kind](**data["fields"])
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return port.CommandResult(ok=False, error="unsupported",
                                      detail={"type": str(data.get("type"))})
        conn = self.sessions.get(command.pile_code)
        if conn is None or conn.schema != schema or conn.closed:
            return port.CommandResult(ok=False, error="pile_offline")
        try:
            return await self._run_command(conn, command)
        except EncodeError as exc:
            return port.CommandResult(ok=False, error="invalid", detail={"message": str(exc)})
        except RuntimeError:
            return port.CommandResult(ok=False, error="busy")
        except ConnectionError:
            return port.CommandResult(ok=False, error="pile_offline")

    async def _ask(self, conn: PileConnection, message, reply_type: int,
                   connector_no: int | None = None):
        future = conn.expect(reply_type, connector_no)
        try:
            conn.send(message)
            return await future
        finally:
            if conn.pending.get((reply_type, connector_no)) is future:
                del conn.pending[(reply_type, connector_no)]

    async def _run_command(self, conn: PileConnection, command) -> port.CommandResult:
        pile = conn.pile_code
        command = _ykc_command(command)
        if isinstance(command, port.RemoteStart):
            reply = await self._ask(conn, m.RemoteStart(
                command.trade_no, pile, command.connector_no,
                command.logical_card_no or ZERO_CARD, command.physical_card_no or ZERO_CARD,
                command.balance_yuan), 0x33, command.connector_no)
            detail = {"trade_no": reply.trade_no, "connector_no": reply.connector_no}
            if reply.started:
                return port.CommandResult(ok=True, detail=detail)
            return port.CommandResult(ok=False, error="refused",
                                      detail={**detail, "reason_code": int(reply.failure_reason)})
        if isinstance(command, port.RemoteStop):
            # 0x36 names no session: never stop one the command was not meant for.
            state = conn.connectors.get(command.connector_no)
            running = state.trade_no if state is not None else None
            if command.trade_no and running and running != command.trade_no:
                self.metrics.error("stop_session_mismatch")
                return port.CommandResult(ok=False, error="session_mismatch",
                                          detail={"running": running})
            reply = await self._ask(conn, m.RemoteStop(pile, command.connector_no), 0x35,
                                    command.connector_no)
            if reply.stopped:
                return port.CommandResult(ok=True)
            return port.CommandResult(ok=False, error="refused", detail={
                "refusal": str(codes.stop_refusal(int(reply.failure_reason))),
                "reason_code": int(reply.failure_reason)})
        if isinstance(command, port.BalanceUpdate):
            reply = await self._ask(conn, m.BalanceUpdate(
                pile, command.connector_no, command.card_no or ZERO_CARD,
                command.balance_yuan), 0x41)
            if int(reply.result) == 0:
                return port.CommandResult(ok=True)
            return port.CommandResult(ok=False, error="refused",
                                      detail={"reason_code": int(reply.result)})
        if isinstance(command, port.ReadRealtime):
            reply = await self._ask(conn, m.ReadRealtimeData(pile, command.connector_no), 0x13,
                                    command.connector_no)
            return port.CommandResult(ok=True, detail={
                "status": connector_status(reply), "energy_kwh": str(reply.energy),
                "amount_yuan": str(reply.amount), "soc_percent": reply.soc,
                "voltage_v": str(reply.output_voltage), "current_a": str(reply.output_current)})
        if isinstance(command, port.PowerLimit):
            # 0x52 carries both the permission to work and the cap (percent of the rating).
            if command.percent is not None:
                percent = command.percent if 30 <= command.percent <= 100 else None
            elif command.max_power_kw is not None and command.rated_power_kw is not None:
                percent = codes.power_limit_percent(command.max_power_kw, command.rated_power_kw)
            else:
                percent = None
            if percent is None:
                return port.CommandResult(ok=False, error="invalid", detail={
                    "message": "a cap of 30–100 % of the pile's rating is needed"})
            reply = await self._ask(conn, m.WorkParams(pile, command.enabled is not False,
                                                       percent), 0x51)
            if not reply.success:
                return port.CommandResult(ok=False, error="refused")
            detail: dict = {"percent": percent}
            if command.rated_power_kw is not None:
                detail["applied_kw"] = str((command.rated_power_kw * percent / 100).quantize(
                    Decimal("0.1"), ROUND_DOWN))
            return port.CommandResult(ok=True, detail=detail)
        if isinstance(command, YkcTimeSync):
            reply = await self._ask(conn, m.TimeSync(pile, datetime.now(PILE_TZ)), 0x55)
            clock = reply.current_time.isoformat() if reply.current_time else None
            return port.CommandResult(ok=True, detail={"pile_time": clock})
        if isinstance(command, YkcReboot):
            reply = await self._ask(conn, m.Reboot(pile, command.when), 0x91)
            return port.CommandResult(ok=reply.success, error="" if reply.success else "refused")
        if isinstance(command, YkcWorkParams):
            reply = await self._ask(conn, m.WorkParams(pile, command.enabled,
                                                       command.max_power_percent), 0x51)
            return port.CommandResult(ok=reply.success, error="" if reply.success else "refused")
        if isinstance(command, YkcPushBillingModel):
            return await self.push_billing_model(conn)
        if isinstance(command, port.FirmwareUpdate):
            return await self._firmware_update(conn, command)
        return port.CommandResult(ok=False, error="unsupported")

    async def _firmware_update(self, conn: PileConnection,
                               command: port.FirmwareUpdate) -> port.CommandResult:
        """0x94 远程更新 from an ``ftp://`` URL; the 0x93 answer is awaited a few seconds
        (a pile may answer only once the download is done: then its 0x93 is reported as a
        ``port.FirmwareStatus`` by ``on_update_reply``)."""
        url = urlsplit(command.url)
        try:
            port_no = url.port or 21
        except ValueError:
            port_no = -1
        if url.scheme != "ftp" or not url.hostname or not 0 < port_no < 65536:
            return port.CommandResult(ok=False, error="invalid", detail={
                "message": "YKC 0x94 downloads over FTP: an ftp:// URL is needed"})
        message = m.RemoteUpdate(
            conn.pile_code, command.pile_model, max(0, min(command.power_kw, 0xFFFF)),
            url.hostname, port_no, unquote(url.username or ""), unquote(url.password or ""),
            unquote(url.path.lstrip("/")), 2 if command.when_idle else 1,
            max(1, min(command.download_timeout_min, 255)))
        try:
            async with asyncio.timeout(FIRMWARE_REPLY_WAIT_S):
                reply = await self._ask(conn, message, 0x93)
        except TimeoutError:
            return port.CommandResult(ok=True, detail={"status": "sent"})
        ok = int(reply.status) == 0
        return port.CommandResult(ok=ok, error="" if ok else "refused",
                                  detail={"reason_code": int(reply.status)})

    async def push_billing_model(self, conn: PileConnection) -> port.CommandResult:
        """0x58 with the pile's current model; the 0x57 answer is recorded."""
        model = await self.run_db(adapters_call, adapters.billing_model_for, conn.schema,
                                  conn.pile_code)
        if model is None:
            return port.CommandResult(ok=False, error="no_billing_model")
        conn.job(adapters_call, adapters.billing_model_sent, conn.schema, conn.pile_code,
                 model.model_no)
        reply = await self._ask(conn, m.SetBillingModel(conn.pile_code, model), 0x57)
        conn.job(adapters_call, adapters.billing_model_acked, conn.schema, conn.pile_code,
                 model.model_no, reply.success)
        return port.CommandResult(ok=reply.success, error="" if reply.success else "refused",
                                  detail={"model_no": model.model_no})

    async def _push_due_models(self, interval: float = 60.0) -> None:
        """Every minute: push 0x58 to connected idle piles whose model is due (§3.5: only
        while idle)."""
        while True:
            await asyncio.sleep(interval)
            for schema in {c.schema for c in self.sessions.values()}:
                try:
                    due = await self.run_db(adapters_call, adapters.piles_due_billing_model,
                                            schema)
                except Exception:
                    logger.exception("due billing models of %s", schema)
                    continue
                for pile_code in due:
                    conn = self.sessions.get(pile_code)
                    if conn is None or conn.schema != schema or any(
                            s.status == "charging" for s in conn.connectors.values()):
                        continue
                    try:
                        async with asyncio.timeout(settings.YKC_COMMAND_TIMEOUT_S):
                            await self.push_billing_model(conn)
                    except (TimeoutError, RuntimeError, ConnectionError):
                        self.metrics.error("billing_push_failed")


def _ykc_command(command):
    """The port's pile-level commands as this protocol's own (same frames)."""
    if isinstance(command, port.Reboot):
        return YkcReboot(command.pile_code, 2 if command.when_idle else 1)
    if isinstance(command, port.TimeSync):
        return YkcTimeSync(command.pile_code)
    if isinstance(command, port.PushTariff):
        return YkcPushBillingModel(command.pile_code)
    return command
