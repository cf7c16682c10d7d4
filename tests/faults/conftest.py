"""The fault-and-bad-input suite's harness: every case runs in a sandbox and is checked the same way.

A case builds its inputs under ``sandbox.root``, runs one genbench command there (cwd ``work/``,
``$GENBENCH_CACHE`` and ``$HOME`` inside the sandbox) and asserts:

- the exit code (0 success, 1 only a gate's regression, 2 any usage, input or environment error),
- a one-line message naming the file or option (``expect`` substrings, on stderr),
- no traceback anywhere in the output,
- no file that existed before the command changed (unless the case lists it as an output),
- nothing new appeared outside the places the case allows (by default: the feature cache).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from genbench.cli.app import main

REPO = Path(__file__).resolve().parents[2]


def _snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or 'dir' / 'link') of everything under ``root``."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "link"
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Sandbox:
    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def path(self, rel: str) -> Path:
        p = self.work / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def _check(self, before: dict[str, str], outcome: Outcome, code: int, expect: tuple[str, ...],
               outputs: tuple[str, ...], allow_new: tuple[str, ...]) -> Outcome:
        after = _snapshot(self.root)
        text = outcome.output
        assert outcome.code == code, f"exit {outcome.code}, expected {code}:\n{text}"
        assert "Traceback" not in text, text
        for piece in expect:
            assert piece in outcome.stderr, f"{piece!r} not in stderr:\n{outcome.stderr}"
        if code == 2:
            errors = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, f"expected one error line:\n{outcome.stderr}"
        allowed = ("cache",) + allow_new + outputs
        for rel, digest in before.items():
            if any(rel == a or rel.startswith(a + "/") for a in allowed):
                continue
            assert after.get(rel) == digest, f"{rel} changed or vanished"
        for rel in after.keys() - before.keys():
            assert any(rel == a or rel.startswith(a + "/") for a in allowed), f"{rel} appeared"
        return outcome

    def cli(self, *args, code: int, expect: tuple[str, ...] = (), outputs: tuple[str, ...] = (),
            allow_new: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Outcome:
        """Run ``genbench ARGS`` in-process (click's runner) and check the outcome (see the module docstring)."""
        before = _snapshot(self.root)
        old = os.getcwd()
        os.chdir(self.work)
        try:
            result = CliRunner().invoke(main, [str(a) for a in args], env={**self.env, **(env or {})},
                                        catch_exceptions=True)
        finally:
            os.chdir(old)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            raise AssertionError("uncaught exception:\n" + "".join(traceback.format_exception(result.exception)))
        outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        return self._check(before, outcome, code, expect, tuple(f"work/{o}" for o in outputs),
                           tuple(f"work/{o}" for o in allow_new))

    def proc(self, *args, code: int, expect: tuple[str, ...] = (), outputs: tuple[str, ...] = (),
             allow_new: tuple[str, ...] = (), timeout: float = 120) -> Outcome:
        """Run ``python -m genbench ARGS`` as a separate process and check the outcome."""
        before = _snapshot(self.root)
        done = subprocess.run([sys.executable, "-m", "genbench", *map(str, args)], cwd=self.work, env=self.process_env(),
                              capture_output=True, text=True, timeout=timeout)
        outcome = Outcome(done.returncode, done.stdout, done.stderr)
        return self._check(before, outcome, code, expect, tuple(f"work/{o}" for o in outputs),
                           tuple(f"work/{o}" for o in allow_new))

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENBENCH_")}
        env.update(self.env)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        return env


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Sandbox:
    box = Sandbox(tmp_path)
    box.work.mkdir()
    box.cache.mkdir()
    (tmp_path / "home").mkdir()
    box.env = {"GENBENCH_CACHE": str(box.cache), "HOME": str(tmp_path / "home")}
    for key in box.env:
        monkeypatch.setenv(key, box.env[key])
    monkeypatch.delenv("GENBENCH_HISTORY", raising=False)
    return box
