"""A stand-in for Microsoft.Authorization (2022-04-01) and Graph's directoryObjects/getByIds.

Role assignments are listed per scope with atScope() semantics (the scope and its
ancestors), paged through absolute `nextLink` URLs; knobs give a 429 with Retry-After, a
403 on chosen scopes, and a Graph that refuses.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from support.https import JsonHandler

LIST_SUFFIX = "/providers/microsoft.authorization/roleassignments"
DEFINITION = "/providers/microsoft.authorization/roledefinitions/"


@dataclass
class AuthorizationState:
    assignments: list[dict] = field(default_factory=list)
    definitions: dict[str, dict] = field(default_factory=dict)  # guid → {roleName, actions, notActions}
    names: dict[str, str] = field(default_factory=dict)  # object id → display name
    resources: dict[str, dict] = field(default_factory=dict)  # resource id (lower case) → body
    page_size: int = 100
    throttle_next: int = 0
    denied_scopes: set[str] = field(default_factory=set)
    graph_denied: bool = False
    requests: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def assign(self, scope: str, role_guid: str, principal_id: str, principal_type: str | None,
               subscription_id: str, name: str) -> dict:
        assignment = {
            "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
            "name": name, "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
                                    f"roleDefinitions/{role_guid}",
                "principalId": principal_id, "principalType": principal_type, "scope": scope,
                "createdOn": "2026-11-01T10:00:00Z", "updatedOn": "2026-11-01T10:00:00Z",
            },
        }
        self.assignments.append(assignment)
        return assignment

    def list_requests(self) -> list[str]:
        return [path for method, path, _, _ in self.requests
                if method == "GET" and path.lower().endswith(LIST_SUFFIX)]


def make_handler(state: AuthorizationState):
    class Handler(JsonHandler):
        def _record(self):
            parts = urlsplit(self.path)
            with state.lock:
                seen = (self.command, parts.path, parts.query, self.headers.get("Authorization"))
                state.requests.append(seen)
                throttle = state.throttle_next > 0
                if throttle:
                    state.throttle_next -= 1
            return parts, throttle

        def do_GET(self):
            parts, throttle = self._record()
            if throttle:
                return self.send_json(429, {"error": {"code": "TooManyRequests", "message": "slow down"}},
                                  {"Retry-After": "0.01"})
            path = parts.path
            if path.lower().endswith(LIST_SUFFIX):
                return self._list(path[: -len(LIST_SUFFIX)], parse_qs(parts.query))
            if path.lower() in state.resources:
                return self.send_json(200, state.resources[path.lower()])
            if DEFINITION in path.lower():
                guid = path.rsplit("/", 1)[-1].lower()
                definition = state.definitions.get(guid)
                if definition is None:
                    error = {"code": "RoleDefinitionDoesNotExist", "message": guid}
                    return self.send_json(404, {"error": error})
                return self.send_json(200, {
                    "id": path, "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
                    "properties": {"roleName": definition["roleName"], "type": "CustomRole",
                                   "permissions": [{"actions": definition["actions"],
                                                    "notActions": definition.get("notActions", [])}],
                                   "assignableScopes": ["/"]}})
            return self.send_json(404, {"error": {"code": "NotFound", "message": path}})

        def _list(self, scope: str, query: dict):
            if scope.lower() in {s.lower() for s in state.denied_scopes}:
                return self.send_json(403, {"error": {"code": "AuthorizationFailed", "message":
                                                  f"The client does not have authorization to perform action "
                                                  f"'Microsoft.Authorization/roleAssignments/read' over scope "
                                                  f"'{scope}'."}})
            if query.get("$filter") != ["atScope()"]:
                return self.send_json(400, {"error": {"code": "BadRequest", "message": "expected atScope()"}})
            wanted = scope.lower()
            applying = [a for a in state.assignments
                        if wanted == a["properties"]["scope"].lower()
                        or wanted.startswith(a["properties"]["scope"].lower() + "/")]
            start = int(query.get("$skipToken", ["0"])[0])
            page = applying[start:start + state.page_size]
            body = {"value": page}
            if start + state.page_size < len(applying):
                next_query = {"api-version": query.get("api-version", ["2022-04-01"])[0],
                              "$filter": "atScope()", "$skipToken": str(start + state.page_size)}
                body["nextLink"] = (f"{state.url}{scope}/providers/Microsoft.Authorization/roleAssignments"
                                    f"?{urlencode(next_query)}")
            return self.send_json(200, body)

        def do_POST(self):
            parts, _ = self._record()
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if parts.path == "/v1.0/directoryObjects/getByIds":
                if state.graph_denied:
                    return self.send_json(403, {"error": {"code": "Authorization_RequestDenied"}})
                return self.send_json(200, {"value": [{"id": i, "displayName": state.names[i]}
                                                  for i in body.get("ids", []) if i in state.names]})
            return self.send_json(404, {"error": {"code": "NotFound"}})

    return Handler
