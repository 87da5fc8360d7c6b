"""Pulumi's own dynamic provider servicer, in-process: proves a provider survives pickling."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any


def _servicer_class():
    """The servicer class, loaded without the server that pulumi.dynamic.__main__ starts."""
    import pulumi.dynamic

    path = Path(pulumi.dynamic.__file__).parent / "__main__.py"
    source = path.read_text().rstrip()
    assert source.endswith("main()")
    namespace = {"__name__": "pulumi_dynamic_servicer"}
    exec(compile(source[: -len("main()")], str(path), "exec"), namespace)
    return namespace["DynamicResourceProviderServicer"]


class _Context:
    def abort(self, code, details):
        raise AssertionError(f"provider failed: {code}: {details}")


def create_through_servicer(provider, inputs: dict[str, Any], urn: str) -> tuple[str, dict[str, Any]]:
    """Pickle `provider` as Pulumi does, send a CreateRequest, return (id, outputs)."""
    from pulumi.dynamic.dynamic import serialize_provider
    from pulumi.runtime import rpc
    from pulumi.runtime.proto import provider_pb2

    properties = {**inputs, "__provider": serialize_provider(provider)}
    loop = asyncio.new_event_loop()
    try:
        request = provider_pb2.CreateRequest(
            urn=urn, properties=loop.run_until_complete(rpc.serialize_properties(properties, {})))
    finally:
        loop.close()
    response = _servicer_class()().Create(request, _Context())
    return response.id, rpc.deserialize_properties(response.properties)
