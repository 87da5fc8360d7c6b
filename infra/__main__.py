"""Pulumi program: one imaging environment, described by stacks/Pulumi.<stack>.yaml."""

import pulumi

from hdsctl.components.environment import ImagingEnvironment
from hdsctl.environment.load import environment_from_pulumi_config
from hdsctl.errors import SpecError

try:
    environment = environment_from_pulumi_config()
except SpecError as err:
    raise pulumi.RunError(str(err)) from None

for name, value in ImagingEnvironment(environment).outputs.items():
    pulumi.export(name, value)
