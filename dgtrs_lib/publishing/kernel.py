"""How the runner's kernels are started: over IPC (Unix sockets), not TCP.

A Jupyter kernel talks to its client over five ZeroMQ sockets whose transport is set in the
kernel's connection file (jupyter-client.readthedocs.io, "Connection files": ``transport`` is
``tcp`` or ``ipc``). On TCP without CurveZMQ keys, ipykernel 7 warns at start-up that "Kernel is
running over TCP without encryption" -- true, and pointless for a kernel that only this process
on this machine talks to. So the runner's kernel manager writes ``"transport": "ipc"`` into the
connection file, with the socket files in a fresh private temporary folder: nothing listens on a
network port, and the kernel has nothing to warn about. The folder is removed when the kernel is.

Taught in: How to run it (book/how-to-run.md)
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def ipc_kernel_manager_class():
    """A subclass of jupyter_client's ``AsyncKernelManager`` (nbclient's default) whose kernels
    use the ``ipc`` transport with sockets under a private temporary folder."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            self._ipc_dir = tempfile.mkdtemp(prefix="dgtrs-kernel-")
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(Path(self._ipc_dir) / "kernel"))
            super().__init__(**kwargs)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(self._ipc_dir, ignore_errors=True)

        # AsyncKernelManager binds ``cleanup_resources`` to the base method: rebind it here.
        cleanup_resources = _async_cleanup_resources

    return IPCKernelManager
