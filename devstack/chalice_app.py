"""app.py loaded the way `chalice local` loads it: by the gateway (for the read routes) and by the
event source (for `handle_messages`), each in its own process or both in one."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from chalice.app import Chalice
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.local import CustomLocalChalice, LocalChalice

from devstack.infra import PROJECT_DIR


def load_app(env: dict[str, str], project_dir: Path = PROJECT_DIR,
             stage: str = "local") -> tuple[Chalice, Config, ModuleType]:
    """Import app.py as `chalice local --stage <stage>` does; `env` wins over the stage's."""
    factory = CLIFactory(str(project_dir), environ=os.environ)
    if (project_dir / ".chalice" / "config.json").exists():
        config = factory.create_config_obj(chalice_stage_name=stage)
        stage_env = dict(config.environment_variables)
    else:
        config = Config(chalice_stage=stage, config_from_disk={"app_name": "sqs-manager"},
                        default_params={"project_dir": str(project_dir)})
        stage_env = {}
    # app.py reads its settings at import (as in Lambda): import it afresh for this env.
    sys.modules.pop("app", None)
    app_obj = factory.load_chalice_app({**stage_env, **env})
    module = importlib.import_module("app")
    if not isinstance(app_obj, LocalChalice):
        # What chalice.local.create_local_server does: a thread-local current_request.
        CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
        app_obj.__class__ = CustomLocalChalice
    return app_obj, config, module

