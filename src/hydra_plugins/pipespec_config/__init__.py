"""Registers pipespec's config schemas with Hydra on plugin discovery.

Hydra imports every module under the ``hydra_plugins`` namespace when it starts. DVC's own
Hydra composition (``dvc exp run -S``) never imports pipespec, so this is how the
``pipespec_schema`` entry that ``configs/config.yaml`` names becomes visible to it.
"""

from pipespec.engine.configstore import register

register()
