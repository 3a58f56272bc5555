"""Polite stopping: Ctrl-C / SIGTERM finish the current step, let the loop write a
checkpoint and stop; a second Ctrl-C stops at once. Shared by every training loop."""
from __future__ import annotations

import signal
import threading
from typing import Callable


def install_stop_handlers() -> tuple[list[int], Callable[[], None]]:
    """Catch SIGINT and SIGTERM for a training loop.

    Returns:
        ``(received, restore)``: ``received`` fills with the signal numbers that arrived
        (the loop checks it after each step); ``restore()`` puts the old handlers back.
        Off the main thread (where Python allows no handlers) nothing is installed.
    """
    received: list[int] = []
    old: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, frame):
            if received:
                raise KeyboardInterrupt
            received.append(signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return received, restore
