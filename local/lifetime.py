"""Processes the local runtime starts end with it, even when it is killed without a chance to clean up."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent() -> None:
    """End this process once the process that started it is gone (checked every second)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
