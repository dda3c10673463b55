"""``manage.py ykc_gateway`` and ``manage.py ocpp_gateway`` share their options, the
open-files limit, the signals and the loop (``protocols.management.gateway_command``):
each builds its own gateway from the same options and runs it until stopped."""

from __future__ import annotations

import asyncio
import io
import resource

import pytest
from django.core.management import call_command

from protocols.management.commands import ocpp_gateway, ykc_gateway
from protocols.management.gateway_command import raise_nofile_limit


@pytest.mark.parametrize(("module", "kind", "banner"), [
    (ykc_gateway, "YkcGateway", "YKC gateway on 127.0.0.1:"),
    (ocpp_gateway, "OcppGateway", "OCPP 1.6J gateway on ws://127.0.0.1:"),
])
def test_each_command_builds_its_gateway_from_the_shared_options(monkeypatch, module, kind,
                                                                 banner):
    ran = []

    async def fake_run(gateway, stop):
        ran.append((gateway, stop))

    monkeypatch.setattr(module.Command, "runner", lambda self: fake_run)
    out = io.StringIO()
    call_command(module.Command(), "--host", "127.0.0.1", "--port", "18533",
                 "--metrics-port", "0", "--gateway-id", "cmd-test", "--db-threads", "2",
                 "--max-piles", "7", "--no-uvloop", stdout=out)
    (gateway, stop), = ran
    assert type(gateway).__name__ == kind
    assert (gateway.host, gateway.port, gateway.gateway_id) == ("127.0.0.1", 18533, "cmd-test")
    assert gateway.metrics_port == 0 and gateway.executor._max_workers == 2
    assert gateway.max_piles == 7
    assert not stop.is_set()
    text = out.getvalue()
    assert text.startswith(banner) and "piles held at most 7" in text
    assert f"open files limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}" in text
    gateway.executor.shutdown()
    gateway.background.shutdown()


@pytest.mark.parametrize("module", [ykc_gateway, ocpp_gateway])
@pytest.mark.parametrize(("options", "loop"), [
    ([], "uvloop"),
    (["--event-loop", "asyncio"], "asyncio"),
    (["--no-uvloop"], "asyncio"),
])
def test_each_command_runs_uvloop_unless_told_otherwise(monkeypatch, module, options, loop):
    ran = []

    async def fake_run(gateway, stop):
        ran.append(type(asyncio.get_running_loop()).__module__.split(".")[0])
        gateway.executor.shutdown()
        gateway.background.shutdown()

    monkeypatch.setattr(module.Command, "runner", lambda self: fake_run)
    call_command(module.Command(), "--host", "127.0.0.1", "--port", "0", "--db-threads", "1",
                 *options, stdout=io.StringIO())
    assert ran == [loop]


def test_the_open_files_limit_is_raised_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
        assert raise_nofile_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
