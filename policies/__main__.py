"""The policy pack's entry point for `pulumi preview --policy-pack policies`.

The rules live in hdsctl.policies.rules so they can be tested and evaluated offline
(`hdsctl preview --policy`); this file only serves them. Levels per tier come from
--policy-pack-config policies/config/<tier>.json.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from hdsctl.policies.evaluate import PACK_NAME
from hdsctl.policies.rules import POLICIES

PolicyPack(PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
