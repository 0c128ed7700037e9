"""Load a function's handler module the way Lambda does (its own folder as the code root), under
a unique module name, since every function's module is called `app`."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pleo_connector.config import clear_settings_cache

if TYPE_CHECKING:
    from types import ModuleType

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def load_handler_module(function_dir: str) -> ModuleType:
    """A fresh import of functions/<function_dir>/app.py with the settings cache cleared."""
    clear_settings_cache()
    name = f"handler_{function_dir}"
    spec = importlib.util.spec_from_file_location(name, FUNCTIONS / function_dir / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from Lambda's context object."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
