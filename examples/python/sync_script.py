"""The blocking facade, for scripts without an event loop."""

from __future__ import annotations

import os
from datetime import timedelta

from stan_client import StartPosition, sync

URL = os.environ.get("STAN_URL", "nats://127.0.0.1:4222")
CLUSTER = os.environ.get("STAN_CLUSTER", "test-cluster")


def main() -> None:
    """Publish and read back the last message."""
    with sync.connect(CLUSTER, "sync-script", url=URL) as sc:
        for i in range(3):
            sc.publish("readings", f"reading {i}".encode())
        with sc.subscribe("readings", start_at=StartPosition.LAST_RECEIVED) as sub:
            msg = sub.next(timeout=timedelta(seconds=5))
            assert msg is not None
            print("latest:", msg.sequence, msg.data)


if __name__ == "__main__":
    main()
