"""The mock engine behind the offline render: a recording monitor and plausible outputs.

Owns nothing of its own: the names the render engine and the tests use, from
``render.plausible`` (``RenderMocks``, the plausible outputs) and ``render.monitor``
(``RenderMonitor``, the recording monitor, and ``CollectingHandler``).

Does not own: running the program (``engine``) or writing files (``output``).
"""

from components.render.monitor import CollectingHandler, RenderMonitor, _struct_to_py
from components.render.plausible import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    AwsEnv,
    RenderMocks,
    mock_password,
    mock_private_key,
)

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "AwsEnv",
    "CollectingHandler",
    "RenderMocks",
    "RenderMonitor",
    "_struct_to_py",
    "mock_password",
    "mock_private_key",
]
