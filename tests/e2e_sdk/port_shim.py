"""Runs an unmodified SDK example on the port in $PORT although its code pins another one.

`swaig_features_agent.py`, `simple_agent.py` and `receptionist_agent_example.py` pass
`port=3000` to their constructors, which wins over $PORT in the SDK. The example's code runs
as it is (`runpy`, as `__main__`); only the port uvicorn binds is taken from $PORT, so several
agents (and other tests) never fight over 3000. Webhook URLs come from SWML_PROXY_URL_BASE.

    python port_shim.py <example.py> [args…]
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

import uvicorn

_uvicorn_run = uvicorn.run


def _run_on_env_port(app: Any, *args: Any, **kwargs: Any) -> None:
    kwargs["port"] = int(os.environ["PORT"])
    _uvicorn_run(app, *args, **kwargs)


if __name__ == "__main__":
    uvicorn.run = _run_on_env_port
    example = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(example))
    runpy.run_path(example, run_name="__main__")
