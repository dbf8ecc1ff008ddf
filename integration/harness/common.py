"""What every part of the suite shares: paths, languages, the cluster ID, the step error."""

from __future__ import annotations

import base64
from pathlib import Path

INTEGRATION_DIR = Path(__file__).resolve().parent.parent
"""``integration/``."""

ROOT = INTEGRATION_DIR.parent
"""The repository root."""

LANGS = ["rust", "python", "node", "kotlin"]
"""Every language, in the order of the report."""

SHORT = {"rust": "rs", "python": "py", "node": "js", "kotlin": "kt"}
"""Short language names, used in client IDs."""

CLUSTER = "integration-cluster"
"""The cluster ID of the broker the suite starts."""


class StepError(Exception):
    """A scenario step did not go as expected (the scenario fails with this message)."""


def b64(data: bytes) -> str:
    """Encode a payload for the runner protocol."""
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    """Decode a payload of the runner protocol."""
    return base64.b64decode(text)
