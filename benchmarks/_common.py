"""Shared pieces of the rotation benchmarks: a lab, a seeded credential, health pollers."""
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def iso_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


class Poller(threading.Thread):
    """Polls one consumer's health URL every `interval` s (bounded by `limit` s); records (t, ok)."""

    def __init__(self, url, interval=0.05, limit=300):
        super().__init__(daemon=True)
        self.url, self.interval, self.limit = url, interval, limit
        self.samples = []
        self._halt = threading.Event()

    def run(self):
        end = time.monotonic() + self.limit
        while not self._halt.is_set() and time.monotonic() < end:
            t = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    ok = resp.status == 200
            except (urllib.error.URLError, OSError):
                ok = False
            self.samples.append((t, ok))
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(timeout=5)

    def outage(self, since=0.0):
        """The longest stretch of failed polls after ``since``: (first failed, first healthy
        after it), or None when no poll failed. An outage still open at the end has healthy=None."""
        worst, start = None, None
        for t, ok in self.samples:
            if t < since:
                continue
            if not ok and start is None:
                start = t
            elif ok and start is not None:
                if worst is None or (t - start) > (worst[1] - worst[0]):
                    worst = (start, t)
                start = None
        if start is not None:
            return (start, None)
        return worst


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return "median %.2fs, min %.2fs, max %.2fs (n=%d)" % (
        statistics.median(values), min(values), max(values), len(values))


def use_installed_collection(workdir):
    """Build the collection with ansible-galaxy, install it under ``workdir`` and make every
    later run_playbook use that copy with an empty ansible.cfg: what users run, not this
    checkout with its ansible.cfg. Returns the collections path."""
    from tests.integration import _galaxy
    from tests.lab import ansible_runner
    workdir = Path(workdir)
    (workdir / "build").mkdir(parents=True, exist_ok=True)
    tarball = _galaxy.build(workdir / "build")
    path = _galaxy.install(tarball, workdir / "collections", workdir)
    ansible_runner.INSTALLED = str(path)
    return path


def add_collection_argument(parser):
    parser.add_argument("--checkout", action="store_true",
                        help="run the checkout's collection with its ansible.cfg instead of the collection "
                             "as ansible-galaxy installs it with an empty ansible.cfg (the default)")
