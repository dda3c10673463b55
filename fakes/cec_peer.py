"""A fake T/CEC 102 partner platform (aggregator, infrastructure partner or regulator).

DEVELOPMENT STAND-IN ONLY. Its crypto is written here from the standard, independently of
``protocols.cec.codec`` (AES-128-CBC/PKCS#7 with the ASCII DataSecret/IV, HMAC-MD5 upper
hex), so tests that pass against it check our codec against a second implementation.

As the partner we push to (``{prefix}`` default ``/evcs/v1/``):

- ``query_token``: checks the envelope's Sig and our OperatorID/OperatorSecret, issues a
  token (``token_ttl`` s).
- ``notification_stationStatus``, ``notification_stationInfo`` (a regulator profile's
  extension), ``notification_start_charge_result``,
  ``notification_equip_charge_status``, ``notification_stop_charge_result``,
  ``notification_charge_order_info``, ``check_charge_orders``: need a current Bearer token
  (4002 otherwise), a good Sig (4001) and decryptable Data (4004); each message received is
  kept in ``received`` (interface, data) and answered with the standard's success fields.
- As an infrastructure partner: ``query_stations_info`` (paged) and ``query_station_status``
  over ``stations`` (one demo station, two connectors) and ``statuses``;
  ``query_start_charge`` / ``query_stop_charge`` / ``query_equip_charge_status`` over
  ``sessions`` (a start on an idle connector is accepted, ``refuse_starts`` refuses all).
  :meth:`CecPeer.push` sends the platform what an infrastructure partner pushes (start and
  stop results, charge status, the final order, check_charge_orders) with the set the
  platform issued to it (:meth:`CecPeer.push_target`); :meth:`CecPeer.charge_status` and
  :meth:`CecPeer.order_info` build the payloads.
- ``/_fake/failures`` as the other fakes (timeouts, resets, errors); ``revoke_tokens()``
  forgets every token (the next call gets 4002); ``GET /_fake/received`` lists messages.

As the aggregator calling us: :meth:`CecPeer.request` builds a signed, encrypted request
envelope with a given secret set; :meth:`CecPeer.open` reads our signed answer.

Run: ``python -m fakes.cec_peer --port 8805 --operator-id MA1FAKE01 --secret 1234567890abcdef``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._server import FakeServer, Handler, Reply, Request, control_failures, json_reply, route

ACKS = {
    "notification_stationStatus": lambda d: {"Status": 0},
    "notification_stationInfo": lambda d: {"Status": 0},
    "notification_start_charge_result": lambda d: {
        "StartChargeSeq": d.get("StartChargeSeq"), "SuccStat": 0, "FailReason": 0},
    "notification_equip_charge_status": lambda d: {
        "StartChargeSeq": d.get("StartChargeSeq"), "SuccStat": 0},
    "notification_stop_charge_result": lambda d: {
        "StartChargeSeq": d.get("StartChargeSeq"), "SuccStat": 0, "FailReason": 0},
    "notification_charge_order_info": lambda d: {
        "StartChargeSeq": d.get("StartChargeSeq"), "ConnectorID": d.get("ConnectorID"),
        "ConfirmResult": 0},
    "check_charge_orders": lambda d: {
        "CheckOrderSeq": d.get("CheckOrderSeq"), "StartTime": d.get("StartTime"),
        "EndTime": d.get("EndTime"), "TotalDisputeOrder": 0, "TotalDisputePower": 0,
        "TotalDisputeMoney": 0, "DisputeOrders": []},
}


DEMO_STATION = {
    "StationID": "FAKE001", "OperatorID": "MA1FAKE01", "EquipmentOwnerID": "MA1FAKE01",
    "StationName": "互联伙伴·科技园站", "CountryCode": "CN", "AreaCode": "440305",
    "Address": "深圳市南山区科技园", "ServiceTel": "4000000000", "StationType": 1,
    "StationStatus": 50, "ParkNums": 0, "StationLng": 113.953, "StationLat": 22.54,
    "Construction": 255, "ElectricityFee": "000000:0.9000+0.6000",
    "EquipmentInfos": [{"EquipmentID": "MA1FAKE01P00001", "EquipmentType": 1, "Power": 120.0,
                        "ConnectorInfos": [
                            {"ConnectorID": "MA1FAKE01P0000101", "ConnectorType": 4,
                             "VoltageUpperLimits": 750, "VoltageLowerLimits": 200, "Current": 250,
                             "Power": 60.0, "NationalStandard": 2},
                            {"ConnectorID": "MA1FAKE01P0000102", "ConnectorType": 4,
                             "VoltageUpperLimits": 750, "VoltageLowerLimits": 200, "Current": 250,
                             "Power": 60.0, "NationalStandard": 2}]}],
}


def _urllib_post(url: str, body: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    import urllib.request

    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a local fake
        return response.status, json.loads(response.read())


def _start(peer: CecPeer, d: dict[str, Any]) -> dict[str, Any]:
    """query_start_charge on one of its connectors: FailReason 1 unknown connector, 4 busy,
    or ``refuse_starts``; a repeated StartChargeSeq gets the same answer."""
    seq, cid = d.get("StartChargeSeq", ""), d.get("ConnectorID", "")
    answer = {"StartChargeSeq": seq, "ConnectorID": cid}
    if seq in peer.sessions:
        return answer | {"StartChargeSeqStat": 1, "SuccStat": 0, "FailReason": 0}
    if cid not in peer.statuses:
        return answer | {"StartChargeSeqStat": 5, "SuccStat": 1, "FailReason": 1}
    if peer.refuse_starts or peer.statuses[cid] not in (1, 2):
        return answer | {"StartChargeSeqStat": 5, "SuccStat": 1, "FailReason": peer.refuse_starts or 4}
    peer.statuses[cid] = 3
    peer.sessions[seq] = {"ConnectorID": cid, "state": "charging",
                          "StartTime": datetime.now().strftime("%Y-%m-%d %H:%M:%S")}
    return answer | {"StartChargeSeqStat": 1, "SuccStat": 0, "FailReason": 0}


def _stop(peer: CecPeer, d: dict[str, Any]) -> dict[str, Any]:
    seq = d.get("StartChargeSeq", "")
    session = peer.sessions.get(seq)
    if session is None:
        return {"StartChargeSeq": seq, "StartChargeSeqStat": 5, "SuccStat": 1, "FailReason": 1}
    if session["state"] != "charging":
        return {"StartChargeSeq": seq, "StartChargeSeqStat": 4, "SuccStat": 1, "FailReason": 3}
    session["state"] = "stopping"
    peer.statuses[session["ConnectorID"]] = 2
    return {"StartChargeSeq": seq, "StartChargeSeqStat": 3, "SuccStat": 0, "FailReason": 0}


def _status(peer: CecPeer, d: dict[str, Any]) -> dict[str, Any]:
    seq = d.get("StartChargeSeq", "")
    if seq not in peer.sessions:
        return {"StartChargeSeq": seq, "StartChargeSeqStat": 5}
    return peer.charge_status(seq, kwh=0, elec=0, service=0)


# As an infrastructure partner: the platform starts, stops and follows its members' orders.
INFRA = {"query_start_charge": _start, "query_stop_charge": _stop, "query_equip_charge_status": _status}


def encrypt(plain: str, key: str, iv: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(key.encode("ascii")), modes.CBC(iv.encode("ascii"))).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


def decrypt(text: str, key: str, iv: str) -> str:
    dec = Cipher(algorithms.AES(key.encode("ascii")), modes.CBC(iv.encode("ascii"))).decryptor()
    data = dec.update(base64.b64decode(text)) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode("utf-8")


def sig(message: str, key: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.md5).hexdigest().upper()


class CecPeer(FakeServer):
    """The fake platform. ``operator_id``: its own OperatorID; ``secret``: the one string
    it uses as OperatorSecret, DataSecret, DataSecretIV and SigSecret for the set it issued
    to us (our calls to it); ``our_id``: the OperatorID it expects from us."""

    def __init__(self, address, *, operator_id: str = "MA1FAKE01", our_id: str = "",
                 secret: str = "1234567890abcdef", prefix: str = "/evcs/v1/",
                 token_ttl: int = 7200) -> None:
        super().__init__(address, Handler)
        self.operator_id = operator_id
        self.our_id = our_id
        self.secret = secret
        self.prefix = "/" + prefix.strip("/") + "/"
        self.token_ttl = token_ttl
        self.tokens: dict[str, float] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        # As an infrastructure partner: its stations (StationInfo) and connector statuses.
        self.stations: list[dict[str, Any]] = [DEMO_STATION]
        self.statuses: dict[str, int] = {"MA1FAKE01P0000101": 1, "MA1FAKE01P0000102": 3}
        # Sessions the platform started on its connectors: StartChargeSeq → session.
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refuse_starts = 0  # FailReason to refuse every query_start_charge with (0: accept)
        self.target: dict[str, str] = {}
        self.transport = _urllib_post
        self.platform_token = ""
        self.lock = threading.RLock()  # the infrastructure handlers read sessions under it

    # --- as the partner we push to -------------------------------------------------------
    def _answer(self, ret: int, msg: str, data: Any = None) -> Reply:
        cipher = "" if data is None else encrypt(json.dumps(data, ensure_ascii=False),
                                                 self.secret, self.secret)
        return json_reply(200, {"Ret": ret, "Msg": msg, "Data": cipher,
                                "Sig": sig(f"{ret}{msg}{cipher}", self.secret)})

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def messages(self, interface: str) -> list[dict[str, Any]]:
        with self.lock:
            return [d for name, d in self.received if name == interface]

    def handle(self, request: Request) -> Reply:
        interface = request.params["name"]
        try:
            env = json.loads(request.body)
            fields = [env[k] for k in ("OperatorID", "Data", "TimeStamp", "Seq", "Sig")]
        except (ValueError, KeyError, TypeError):
            return self._answer(4003, "bad envelope")
        if any(f in ("", None) for f in fields) or len(env["TimeStamp"]) != 14:
            return self._answer(4003, "bad envelope")
        if self.our_id and env["OperatorID"] != self.our_id:
            return self._answer(4003, "unknown operator")
        if sig("".join(fields[:4]), self.secret) != env["Sig"]:
            return self._answer(4001, "bad signature")
        if interface != "query_token":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            with self.lock:
                ok = self.tokens.get(token, 0) > time.time()
            if not ok:
                return self._answer(4002, "bad token")
        try:
            data = json.loads(decrypt(env["Data"], self.secret, self.secret))
        except Exception:  # noqa: BLE001 - any failure is the standard's 4004
            return self._answer(4004, "cannot decrypt")
        if interface == "query_token":
            if data.get("OperatorSecret") != self.secret or data.get("OperatorID") != env["OperatorID"]:
                return self._answer(0, "", {"OperatorID": env["OperatorID"], "SuccStat": 1,
                                            "AccessToken": "", "TokenAvailableTime": 0,
                                            "FailReason": 2})
            token = secrets.token_hex(16).upper()
            with self.lock:
                self.tokens[token] = time.time() + self.token_ttl
            return self._answer(0, "", {"OperatorID": env["OperatorID"], "SuccStat": 0,
                                        "AccessToken": token, "TokenAvailableTime": self.token_ttl,
                                        "FailReason": 0})
        if interface == "query_stations_info":
            size = int(data.get("PageSize") or 10)
            page = int(data.get("PageNo") or 1)
            pages = max(1, -(-len(self.stations) // size))
            return self._answer(0, "", {"PageNo": page, "PageCount": pages,
                                        "ItemSize": len(self.stations),
                                        "StationInfos": self.stations[(page - 1) * size:page * size]})
        if interface == "query_station_status":
            wanted = set(data.get("StationIDs") or [])
            infos = [{"StationID": st["StationID"], "ConnectorStatusInfos": [
                {"ConnectorID": c["ConnectorID"], "Status": self.statuses.get(c["ConnectorID"], 0)}
                for e in st["EquipmentInfos"] for c in e["ConnectorInfos"]]}
                for st in self.stations if st["StationID"] in wanted]
            return self._answer(0, "", {"Total": len(infos), "StationStatusInfos": infos})
        if interface in INFRA:
            with self.lock:
                self.received.append((interface, data))
                return self._answer(0, "", INFRA[interface](self, data))
        ack = ACKS.get(interface)
        if ack is None:
            return self._answer(4004, f"unknown interface {interface}")
        with self.lock:
            self.received.append((interface, data))
        return self._answer(0, "", ack(data))

    def routes(self):
        prefix = self.prefix.replace(".", r"\.")
        return [
            route("POST", rf"^{prefix}(?P<name>[A-Za-z_]+)$", self.handle),
            route("GET", r"^/_fake/received$", lambda r: json_reply(
                200, {"received": [{"interface": n, "data": d} for n, d in self.received]})),
            route("GET", r"^/_fake/failures$", lambda r: control_failures(self, r)),
            route("POST", r"^/_fake/failures$", lambda r: control_failures(self, r)),
            route("DELETE", r"^/_fake/failures$", lambda r: control_failures(self, r)),
        ]

    # --- as the infrastructure partner pushing to the platform -------------------------
    def push_target(self, *, url: str, operator_secret: str, data_secret: str, data_iv: str,
                    sig_secret: str, transport=None, host: str = "") -> None:
        """Where and how this peer pushes to the platform: ``url`` up to and including the
        platform's prefix (``http://host/evcs/v1/``), the set the platform issued to it;
        ``host``: a ``Host`` header to send instead of the URL's (the operator's host when
        the platform listens on a bare loopback port); ``transport(url, body_text, headers)
        -> (status, json)`` replaces real HTTP (a test client), default urllib."""
        self.target = {"url": url, "operator_secret": operator_secret, "data_secret": data_secret,
                       "data_iv": data_iv, "sig_secret": sig_secret, "host": host}
        self.transport = transport or _urllib_post
        self.platform_token = ""

    def _post(self, interface: str, data: Any) -> dict[str, Any]:
        t = self.target
        body = self.request(data, data_secret=t["data_secret"], data_iv=t["data_iv"],
                            sig_secret=t["sig_secret"])
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if t.get("host"):
            headers["Host"] = t["host"]
        if interface != "query_token":
            headers["Authorization"] = f"Bearer {self.platform_token}"
        _status, answer = self.transport(t["url"] + interface, json.dumps(body, ensure_ascii=False), headers)
        return answer

    def push(self, interface: str, data: Any) -> tuple[int, str, Any]:
        """Push ``data`` to the platform's ``interface`` (a token fetched first, and again
        once on Ret 4002); returns (Ret, Msg, data) of its signed answer."""
        t = self.target
        keys = {"data_secret": t["data_secret"], "data_iv": t["data_iv"], "sig_secret": t["sig_secret"]}
        for _attempt in range(2):
            if not self.platform_token:
                ret, msg, tok = self.open(self._post("query_token", {
                    "OperatorID": self.operator_id, "OperatorSecret": t["operator_secret"]}), **keys)
                if ret != 0 or not tok or tok.get("SuccStat") != 0:
                    return ret, msg, tok
                self.platform_token = tok["AccessToken"]
            answer = self._post(interface, data)
            if answer.get("Ret") == 4002:
                self.platform_token = ""
                continue
            if answer.get("Ret") != 0:
                return answer["Ret"], answer.get("Msg", ""), None
            return self.open(answer, **keys)
        return 4002, "token refused", None

    def session(self, seq: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.sessions[seq])

    def charge_status(self, seq: str, *, kwh: float, elec: float, service: float, soc: int = 50,
                      ended: bool = False) -> dict[str, Any]:
        """The ChargeStatus of session ``seq`` with these running figures (kWh, yuan)."""
        s = self.session(seq)
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        return {"StartChargeSeq": seq, "StartChargeSeqStat": 4 if ended else 2,
                "ConnectorID": s["ConnectorID"], "ConnectorStatus": 2 if ended else 3,
                "CurrentA": 100.0, "VoltageA": 400.0, "Soc": soc, "StartTime": s["StartTime"],
                "EndTime": now, "TotalPower": round(kwh, 2), "ElecMoney": round(elec, 2),
                "SeviceMoney": round(service, 2), "TotalMoney": round(elec + service, 2),
                "SumPeriod": 0, "ChargeDetails": []}

    def order_info(self, seq: str, *, kwh: float, elec: float, service: float,
                   stop_reason: int = 1) -> dict[str, Any]:
        """The ChargeOrderInfo of session ``seq`` (one flat-price period)."""
        s = self.session(seq)
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        return {"StartChargeSeq": seq, "ConnectorID": s["ConnectorID"], "StartTime": s["StartTime"],
                "EndTime": now, "TotalPower": round(kwh, 2), "TotalElecMoney": round(elec, 2),
                "TotalSeviceMoney": round(service, 2), "TotalMoney": round(elec + service, 2),
                "StopReason": stop_reason, "SumPeriod": 1,
                "ChargeDetails": [{"DetailStartTime": s["StartTime"], "DetailEndTime": now,
                                   "ElecPrice": 0.9, "SevicePrice": 0.6, "DetailPower": round(kwh, 2),
                                   "DetailElecMoney": round(elec, 2),
                                   "DetailSeviceMoney": round(service, 2)}]}

    # --- as the aggregator calling the platform ----------------------------------------
    def request(self, data: Any, *, data_secret: str, data_iv: str, sig_secret: str,
                operator_id: str | None = None, seq: str = "0001") -> dict[str, str]:
        """A request envelope from this peer (or ``operator_id``) with the platform's set."""
        op = operator_id or self.operator_id
        cipher = encrypt(json.dumps(data, ensure_ascii=False), data_secret, data_iv)
        stamp = datetime.now().strftime("%Y%m%d%H%M%S")
        return {"OperatorID": op, "Data": cipher, "TimeStamp": stamp, "Seq": seq,
                "Sig": sig(op + cipher + stamp + seq, sig_secret)}

    @staticmethod
    def open(body: dict[str, Any], *, data_secret: str, data_iv: str, sig_secret: str):
        """(Ret, Msg, data) of the platform's answer; AssertionError on a bad signature."""
        ret, msg, cipher = body["Ret"], body["Msg"], body["Data"]
        if cipher or body.get("Sig"):
            assert body["Sig"] == sig(f"{ret}{msg}{cipher}", sig_secret), "bad answer signature"
        return ret, msg, json.loads(decrypt(cipher, data_secret, data_iv)) if cipher else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8805)
    parser.add_argument("--operator-id", default="MA1FAKE01")
    parser.add_argument("--our-id", default="")
    parser.add_argument("--secret", default="1234567890abcdef")
    parser.add_argument("--prefix", default="/evcs/v1/")
    args = parser.parse_args()
    server = CecPeer((args.host, args.port), operator_id=args.operator_id, our_id=args.our_id,
                     secret=args.secret, prefix=args.prefix)
    server.verbose = True
    print(f"fake CEC peer {args.operator_id} on {server.url}{server.prefix}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
