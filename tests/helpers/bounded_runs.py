"""Run Python code in a child process under an address-space limit, and measure the child's peak resident memory.

For the reliability tables (hostile files, huge options): each case runs where a bomb can only hurt a child that
``setrlimit(RLIMIT_AS, …)`` bounds, and the child's peak resident memory comes back from ``os.wait4`` (its own
``ru_maxrss``, not the maximum over all children) so a table can print it per case.

* :func:`run_limited` — a fresh interpreter per call (``python ARGV…``, e.g. ``-m srr train …``), the limit set in
  ``preexec_fn``: the pytest process's own mapping plus ``headroom``.
* :class:`ForkServer` — one interpreter imports ``preload`` once (torch costs ~2 s), then forks one child per case;
  the child sets the limit (its mapping at the fork plus ``headroom``) before running the case's code. Same limit,
  same measurement, a fraction of a second per case.

Both return an :class:`Outcome`; :func:`assert_refused` checks the usual promise: exit status 2 and one line on
stderr matching a pattern, with no traceback and no warning printed before it.
"""
from __future__ import annotations

import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from paths import SRC

__all__ = ["Outcome", "run_limited", "ForkServer", "assert_refused", "vm_size", "GiB", "MiB"]

GiB, MiB = 1 << 30, 1 << 20


def vm_size() -> int:
    """This process's mapped address space (``VmSize``), in bytes."""
    with open("/proc/self/status", encoding="ascii") as fh:
        return int(re.search(r"^VmSize:\s+(\d+) kB", fh.read(), re.MULTILINE).group(1)) * 1024


@dataclass
class Outcome:
    returncode: int  # negative: killed by that signal
    stdout: str
    stderr: str
    peak: int  # the child's peak resident memory, bytes
    limit: int  # its RLIMIT_AS, bytes
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


def child_env(**extra) -> dict:
    """The environment of a child: srr's sources first on the path, one torch thread, nothing else changed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS="1")
    env.pop("PYTHONWARNINGS", None)
    env.update(extra)
    return env


def run_limited(argv: list[str], headroom: int = 3 * GiB, timeout: float = 120, env: dict | None = None) -> Outcome:
    """``python ARGV…`` in a fresh process whose address space is limited to this process's mapping + headroom."""
    limit = vm_size() + headroom

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=err, env=env or child_env(),
                                preexec_fn=limit_memory)
        while True:  # os.wait4 rather than proc.wait: the child's own rusage
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return Outcome(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                       usage.ru_maxrss * 1024, limit, seconds)


_SERVER = r'''
import importlib, json, os, re, resource, signal, sys, time, traceback
proto = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
proto.write("{}\n")

def vm_size():
    with open("/proc/self/status") as fh:
        return int(re.search(r"^VmSize:\s+(\d+) kB", fh.read(), re.M).group(1)) * 1024

for line in sys.stdin:
    req = json.loads(line)
    limit = vm_size() + req["headroom"]
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
            signal.alarm(int(req["timeout"]))
            exec(compile(req["code"], "<case>", "exec"), {"__name__": "__main__"})
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    proto.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status), "peak": usage.ru_maxrss * 1024,
                            "limit": limit, "seconds": time.monotonic() - start}) + "\n")
'''


class ForkServer:
    """One interpreter that imports ``preload`` once and forks a child per :meth:`run` (see the module docstring)."""

    def __init__(self, preload=("srr.data",), env: dict | None = None, startup_timeout: float = 120):
        self._dir = tempfile.TemporaryDirectory(prefix="forkserver-")
        self._log = open(Path(self._dir.name) / "server.err", "w+b")
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, json.dumps(list(preload))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     env=env or child_env(), text=True, bufsize=1)
        self._reply(startup_timeout)
        self._count = 0

    def _reply(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self._log.seek(0)
            raise RuntimeError(f"the fork server did not answer: {self._log.read().decode(errors='replace')[-2000:]}")
        return json.loads(line)

    def run(self, code: str, headroom: int = 3 * GiB, timeout: float = 60) -> Outcome:
        """Run ``code`` in a forked child whose address space is its mapping at the fork plus ``headroom``."""
        self._count += 1
        out, err = (Path(self._dir.name) / f"{self._count}.{s}" for s in ("out", "err"))
        self.proc.stdin.write(json.dumps({"code": code, "headroom": int(headroom), "timeout": max(1, int(timeout)),
                                          "stdout": str(out), "stderr": str(err)}) + "\n")
        self.proc.stdin.flush()
        reply = self._reply(timeout + 30)
        read = lambda p: p.read_text(errors="replace") if p.exists() else ""  # noqa: E731
        return Outcome(reply["returncode"], read(out), read(err), reply["peak"], reply["limit"], reply["seconds"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()
        self._log.close()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def assert_refused(outcome: Outcome, pattern: str, returncode: int = 2) -> str:
    """Exit status ``returncode`` and exactly one line on stderr matching ``pattern``: no traceback, no warning."""
    err = outcome.stderr
    assert "Traceback" not in err and "Warning" not in err, f"traceback or warning printed:\n{err}"
    assert len(outcome.lines) == 1, f"not one line (exit {outcome.returncode}):\n{err}\n{outcome.stdout}"
    assert outcome.returncode == returncode, f"exit {outcome.returncode}, not {returncode}: {err}"
    assert re.search(pattern, outcome.lines[0]), f"{outcome.lines[0]!r} does not match {pattern!r}"
    return outcome.lines[0]
