"""A stand-in for the Microsoft.HealthcareApis Resource Manager API (2024-03-31).

It answers GET and PUT on workspaces, DICOM and FHIR services the way ARM does, including
the long-running-operation dance azure-mgmt-core follows for a PUT: 201 with an
Azure-AsyncOperation URL, that URL answering InProgress and then Succeeded, then a final
GET of the resource. Every request is recorded so tests can see what was sent.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from support.https import JsonHandler

RESOURCE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.HealthcareApis/workspaces/(?P<ws>[^/]+)(?:/(?P<kind>dicomservices|fhirservices)/(?P<svc>[^/]+))?$",
    re.IGNORECASE,
)
OPERATION = re.compile(r"^/operations/(?P<id>[0-9a-f]+)$")
# ARM sends Retry-After in seconds; azure-core treats 0 as "none given" and falls back to its
# 30 s default, so the stand-in asks for a hundredth of a second instead.
RETRY_AFTER = "0.01"
READ_ONLY = {"provisioningState", "privateEndpointConnections", "serviceUrl", "eventState"}


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class ArmState:
    resources: dict[str, dict] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    operations: dict[str, int] = field(default_factory=dict)
    # How many InProgress answers an operation gives before Succeeded.
    polls_before_done: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method in {"PUT", "PATCH", "DELETE"}]

    def seed(self, path: str, body: dict) -> None:
        self.resources[path.lower()] = {"id": path, **body}


def make_handler(state: ArmState, base_url_holder: list[str]):
    class Handler(JsonHandler):
        def _record(self, body):
            with state.lock:
                state.requests.append(Recorded(
                    self.command, urlsplit(self.path).path, body, self.headers.get("Authorization")))

        def do_GET(self):
            path = urlsplit(self.path).path
            self._record(None)
            if match := OPERATION.match(path):
                with state.lock:
                    state.operations[match["id"]] += 1
                    done = state.operations[match["id"]] > state.polls_before_done
                return self.send_json(200, {"status": "Succeeded" if done else "InProgress"},
                                  {"Retry-After": RETRY_AFTER})
            resource = state.resources.get(path.lower())
            if resource is None:
                return self.send_json(404, {"error": {"code": "ResourceNotFound",
                                                  "message": f"{path} was not found"}})
            return self.send_json(200, resource)

        def do_PUT(self):
            path = urlsplit(self.path).path
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            self._record(body)
            if not RESOURCE.match(path):
                return self.send_json(400, {"error": {"code": "InvalidResource", "message": path}})
            leaked = READ_ONLY & set(body.get("properties", {}))
            if leaked:
                return self.send_json(400, {"error": {"code": "BadRequest",
                                                  "message": f"read-only properties sent: {leaked}"}})
            with state.lock:
                previous = state.resources.get(path.lower(), {})
                properties = {**previous.get("properties", {}), **body.get("properties", {}),
                              "provisioningState": "Accepted"}
                stored = {**previous, **body, "id": path, "properties": properties}
                state.resources[path.lower()] = stored
                operation = uuid.uuid4().hex
                state.operations[operation] = 0
            stored["properties"]["provisioningState"] = "Succeeded"
            return self.send_json(201, {**stored, "properties": {**properties}}, {
                "Azure-AsyncOperation": f"{base_url_holder[0]}/operations/{operation}",
                "Retry-After": RETRY_AFTER,
            })

    return Handler
