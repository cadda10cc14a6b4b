"""The engine under scale/: importing Ray with a friendly error, checking an address, joining or starting a cluster."""

from __future__ import annotations

import os
import socket
from typing import Any

INSTALL_HINT = 'this needs Ray and pyarrow: pip install "static-embeddings[scale]"'


def import_engine() -> tuple[Any, Any, Any]:
    """``(ray, pyarrow.parquet, pyarrow)``, or an ImportError saying which extra to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        import ray
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ray, pq, pa


def check_address(address: str) -> None:
    """A ConnectionError naming ``address`` unless something listens there (``auto`` is left to Ray)."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"address must be HOST:PORT, auto or ray://HOST:PORT; got {address!r}")
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"address must be HOST:PORT, auto or ray://HOST:PORT; got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(f"no Ray cluster answers at {address}: {exc.strerror or exc}") from exc


def connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Join ``address``, or start a local cluster; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error"}
    if address is None:
        ray.init(num_cpus=workers or os.cpu_count(), _node_ip_address="127.0.0.1", **quiet)
    else:
        ray.init(address=address, **quiet)
    return True


def progress_bar(show: bool, total: int, desc: str = "Encoding") -> Any:
    """A tqdm bar over ``total`` texts when ``show`` and tqdm is installed, else ``None``."""
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="text", desc=desc)
