"""A kernel manager for grading: starts and stops a kernel without jupyter_client's idle waits.

Stock jupyter_client, per notebook graded, idles about 0.3 s with nothing to do:
- `wait_for_ready` ends by draining IOPub until 0.2 s pass without a message. nbclient matches
  every IOPub message to its request by parent id, so the leftovers of the `kernel_info` request
  are harmless; `PromptKernelClient` drains only what has already arrived.
- Waiting for a kernel to end polls every 0.1 s; `PromptKernelManager` polls every 0.01 s.
A graded notebook's kernel has nothing left to do after its last cell, so the course's Execute
also kills it (`shutdown_kernel = "immediate"`) rather than letting Python finalize torch and
matplotlib (up to 0.8 s of CPU per notebook). The timings are in README "Benchmarks".
"""

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type


class PromptKernelClient(AsyncKernelClient):
    """AsyncKernelClient whose `wait_for_ready` returns as soon as the kernel is ready."""

    async def wait_for_ready(self, timeout=None):
        """Return once a `kernel_info` request is answered on shell and IOPub (so IOPub is
        subscribed); raise RuntimeError if the kernel dies or `timeout` seconds pass first."""
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
                if reply["msg_type"] == "kernel_info_reply":
                    await self.iopub_channel.get_msg(timeout=0.2)
                    self._handle_kernel_info_reply(reply)
                    break
            except Empty:
                pass
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        while await self.iopub_channel.msg_ready():  # (the async get_msgs() would block)
            await self.iopub_channel.get_msg()


class PromptKernelManager(AsyncKernelManager):
    """AsyncKernelManager with `PromptKernelClient`s, noticing a kernel's end within 0.01 s."""

    client_class = DottedObjectName("course_tools.kernels.PromptKernelClient")
    client_factory = Type(klass=PromptKernelClient)

    async def _async_wait(self, pollinterval=0.01):
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))
