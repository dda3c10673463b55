"""Test helpers shared by the end-to-end tests: the ASGI app under uvicorn in a thread."""

from __future__ import annotations

import os
import socket
import threading
import time


def free_port() -> int:
    """A free loopback port: the first free one of ``EVP_TEST_PORT_RANGE`` ("18400-18499")
    when set (machines where each engineer owns a range), else one the OS picks."""
    span = os.environ.get("EVP_TEST_PORT_RANGE")
    if span:
        low, high = (int(p) for p in span.split("-"))
        for port in range(low, high + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError(f"no free port in {span}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Uvicorn:
    """``evplatform.asgi:application`` served on a loopback port until ``stop()``."""

    def __init__(self) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            "evplatform.asgi:application", host="127.0.0.1", port=self.port,
            log_level="warning", lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def export_form_data(model, file_format=None) -> dict:
    """The POST of an admin's import-export form for ``model``: its first resource with
    every field ticked, in ``file_format`` (a base_formats class; CSV by default)."""
    from django.contrib import admin
    from django.test import RequestFactory
    from import_export.formats.base_formats import CSV
    from import_export.forms import SelectableFieldsExportForm

    model_admin = admin.site._registry[model]
    formats = model_admin.get_export_formats()
    wanted = file_format or CSV
    data = {"format": str(next(i for i, f in enumerate(formats) if f is wanted)), "resource": "0"}
    resource = model_admin.get_export_resource_classes(RequestFactory().get("/"))[0]
    for field in resource().get_export_order():
        data[SelectableFieldsExportForm.create_boolean_field_name(resource, field)] = "on"
    return data
