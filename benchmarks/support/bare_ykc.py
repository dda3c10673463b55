"""A bare YKC responder: the floor under the load benchmark's heartbeat round trip.

    python -m benchmarks.support.bare_ykc PORT

Accepts every login 0x01 (0x02 success), answers each heartbeat 0x03 (0x04) and says every
billing model 0x05 is current (0x06), with the project's codec; nothing else is answered,
stored or checked. The same simulated piles measured against it and then against the
gateway give the gateway's share of the round trip: what is left against this is the
clients' and the machine's (loopback, scheduling on shared cores). Prints ``ready`` once
listening.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocols.ykc import encode_frame  # noqa: E402 (after the path)
from protocols.ykc import messages as m  # noqa: E402
from protocols.ykc.splitter import FrameSplitter  # noqa: E402


class BareResponder(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.splitter = FrameSplitter()

    def data_received(self, data: bytes) -> None:
        frames, _errors = self.splitter.feed(data)
        out = []
        for frame in frames:
            message = frame.message
            if isinstance(message, m.Login):
                reply = m.LoginReply(message.pile_code, True)
            elif isinstance(message, m.Heartbeat):
                reply = m.HeartbeatReply(message.pile_code, message.connector_no, 0)
            elif isinstance(message, m.BillingModelVerify):
                reply = m.BillingModelVerifyReply(message.pile_code,
                                                  message.billing_model_no, False)
            else:
                continue
            out.append(encode_frame(reply, bytes(frame.sequence)))
        if out:
            self.transport.write(b"".join(out))


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        BareResponder, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    import uvloop

    uvloop.run(serve(int(sys.argv[1])))
