"""The grading kernel manager: ready means ready, a kernel that never gets ready is an error, and
an immediate shutdown leaves no process behind (the sandboxed case: tests/test_sandbox.py)."""

import asyncio
import json
import sys
import time

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from course_tools.kernels import PromptKernelClient, PromptKernelManager


def manager(tmp_path, argv=None):
    """A PromptKernelManager of the ipykernel kernel, or of a kernel that runs `argv`."""
    if argv is None:
        return PromptKernelManager(kernel_name="python3")
    spec = tmp_path / "kernels" / "fake"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "fake", "language": "python"}))
    return PromptKernelManager(
        kernel_name="fake", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))


async def started(km, timeout=30):
    await km.start_kernel()
    kc = km.client()
    assert isinstance(kc, PromptKernelClient)
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=timeout)
    except BaseException:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        raise
    return kc


def test_first_output_after_ready_is_not_lost(tmp_path):
    """Ready means IOPub is subscribed: the output of the very first request arrives, and the
    messages of the kernel_info handshake are not mistaken for it."""
    async def run():
        for i in range(3):
            km = manager(tmp_path)
            kc = await started(km)
            try:
                reply = await kc.execute_interactive(f"print('hello {i}')", timeout=30,
                                                     output_hook=outputs.append)
                assert reply["content"]["status"] == "ok"
            finally:
                kc.stop_channels()
                await km.shutdown_kernel(now=True)
            assert not await km.is_alive()

    outputs = []
    asyncio.run(run())
    streams = [o["content"]["text"] for o in outputs if o["msg_type"] == "stream"]
    assert streams == [f"hello {i}\n" for i in range(3)]


def test_a_kernel_that_dies_at_start_is_an_error(tmp_path):
    km = manager(tmp_path, [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match="died before replying"):
        asyncio.run(started(km))


def test_a_kernel_that_never_answers_times_out(tmp_path):
    km = manager(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(RuntimeError, match="didn't respond in 2 seconds"):
        asyncio.run(started(km, timeout=2))


def test_immediate_shutdown_ends_the_kernel_and_what_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"

    async def run():
        km = manager(tmp_path)
        kc = await started(km)
        code = ("import subprocess\np = subprocess.Popen(['sleep', '600'])\n"
                f"open({str(pid_file)!r}, 'w').write(str(p.pid))")
        await kc.execute_interactive(code, timeout=30)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        return km

    km = asyncio.run(run())
    assert not asyncio.run(km.is_alive())
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5  # killed with the kernel's process group
    while running(child):
        assert time.monotonic() < deadline, f"process {child} started by the kernel outlived it"
        time.sleep(0.05)


def running(pid):
    """Whether `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False
