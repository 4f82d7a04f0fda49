"""Run code in a fresh interpreter (the collection on its path, nothing imported yet), as a
forked worker or AnsiballZ starts: for tests of what an import pulls in."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh(code):
    """The code's standard output; fails the test on a non-zero exit."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=str(ROOT), timeout=120, check=False,
                          env={"PYTHONPATH": str(ROOT / ".collections"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
