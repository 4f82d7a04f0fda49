"""Every filter the collection exports is documented: `ansible-doc -t filter credops.rotation.NAME`
shows that filter's own page (plugins/filter/NAME.yml), with examples and a return value, and
its options are the filter's parameters."""
import inspect
import json
import subprocess
import sys
from pathlib import Path

from ansible_collections.credops.rotation.plugins.filter import env_file, plan, rotation

from tests.lab.ansible_runner import ansible_env

ROOT = Path(__file__).resolve().parents[2]
FILTERS = {}
MODULES = (rotation, plan, env_file)
for _module in MODULES:
    FILTERS.update(_module.FilterModule().filters())


def test_every_filter_has_its_own_documentation():
    names = sorted(FILTERS)
    assert len(names) == sum(len(module.FilterModule().filters()) for module in MODULES)
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", "filter", "--json"]
                          + ["credops.rotation." + name for name in names],
                          capture_output=True, text=True, env=ansible_env(), cwd=str(ROOT), timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    missing = [name for name in names if "credops.rotation." + name not in docs]
    assert not missing, "no documentation for: %s (add plugins/filter/NAME.yml)" % missing
    problems = []
    for name in names:
        entry = docs["credops.rotation." + name]
        doc = entry.get("doc") or {}
        if doc.get("name") != name:
            problems.append("%s: shows the page of %r" % (name, doc.get("name")))
        if not doc.get("short_description") or not doc.get("description"):
            problems.append("%s: no short_description or description" % name)
        if not entry.get("examples"):
            problems.append("%s: no EXAMPLES" % name)
        if "_value" not in (entry.get("return") or {}):
            problems.append("%s: no RETURN _value" % name)
        options = set(doc.get("options") or {})
        params = list(inspect.signature(FILTERS[name]).parameters)
        if "_input" not in options:
            problems.append("%s: _input is not documented" % name)
        if options - {"_input"} != set(params[1:]):
            problems.append("%s: options %s, parameters %s" % (name, sorted(options - {"_input"}), params[1:]))
    assert not problems, "\n".join(problems)
