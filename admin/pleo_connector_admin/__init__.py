"""`pleo-connector-admin`: the operator's tool for one installation at a time, against the local
world or a deployed stack. It is not Lambda code and never ships in the layer; it drives the
layer's own stores and services, so each action happens exactly as the functions do it.

Importing the package puts the clone's layer (and, for `--local`, the clone itself) on the import
path after what is there already, so the tool runs the code of the clone it was installed from.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared"

for _path in (str(LAYER), str(ROOT)):
    if _path not in sys.path:
        sys.path.append(_path)
