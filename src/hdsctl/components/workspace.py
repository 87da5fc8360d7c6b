"""The Health Data Services workspace, its lock and workspace-scoped role assignments."""

from __future__ import annotations

import pulumi

from hdsctl.components.azure import package
from hdsctl.components.shared import Binding, assign_roles

authorization = package("authorization", "management_lock_by_scope")
healthcareapis = package("healthcareapis", "workspace")


class HealthWorkspace(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        *,
        resource_group_name: pulumi.Input[str],
        location: str,
        tags: dict[str, str],
        locked: bool,
        bindings: list[Binding],
        subscription_id: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("hdsctl:health:Workspace", name, None, opts)
        self.workspace = healthcareapis.Workspace(
            name,
            workspace_name=name,
            resource_group_name=resource_group_name,
            location=location,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id = self.workspace.id
        self.name = self.workspace.name
        if locked:
            # Protects every service under the workspace from deletion, whoever asks.
            authorization.ManagementLockByScope(
                f"{name}-lock",
                lock_name="hdsctl-do-not-delete",
                level="CanNotDelete",
                scope=self.workspace.id,
                notes="Imaging data lives here. Remove the lock through hdsctl:lock in the stack file.",
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.role_assignments = assign_roles(self, name, self.id, bindings, subscription_id)
        self.register_outputs({"id": self.id})
