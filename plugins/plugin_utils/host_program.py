# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One Python program, built from module_utils files that use the standard library only, that an
action plugin sends on the connection's stdin (as pipelining sends a module) and whose JSON answer
it reads back: the host's work in one round trip, without the AnsiballZ wrapper and
ansible.module_utils.basic, whose start costs about 0.15 s of CPU per host.

The program loads the files under their own module names (so their ``from ansible_collections...
import`` lines work), calls ``CALL`` with the arguments and prints its result as JSON. The
arguments ride in the program base64-encoded, never on a command line; a program read from stdin
shows no source line in a traceback."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import shlex

_HEAD = '''\
import base64, json, sys, types


def _load(name, source):
    parts = name.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if parent not in sys.modules:
            package = types.ModuleType(parent)
            package.__path__ = []
            sys.modules[parent] = package
    module = types.ModuleType(name)
    module.__file__ = "<%s>" % name
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)
    return module


'''

_TAIL = '''
_args = json.loads(base64.b64decode(%r).decode("utf-8"))
try:
    _result = getattr(sys.modules[%r], %r)(**_args)
except Exception as exc:
    _result = dict(failed=True, msg="the host step stopped: %%s" %% type(exc).__name__)
sys.stdout.write(json.dumps(_result))
sys.stdout.flush()
'''

# Where no interpreter is set or known: the first of these that the host has.
FALLBACK_INTERPRETERS = ("python3", "/usr/bin/python3", "/usr/libexec/platform-python", "/usr/bin/python")


def source(module):
    """The text of an imported module's file."""
    with open(module.__file__) as handle:
        return handle.read()


def program(modules, call, args):
    """The program: ``modules`` (imported module objects, each loaded before the next) and a call
    of ``call`` ("function" of the last module) with ``args`` (keyword arguments) whose result it
    prints as JSON."""
    parts = [_HEAD]
    for module in modules:
        parts.append("_load(%r, %r)\n" % (module.__name__, source(module)))
    payload = base64.b64encode(json.dumps(args).encode("utf-8")).decode("ascii")
    parts.append(_TAIL % (payload, modules[-1].__name__, call))
    return "".join(parts)


def command(interpreter=None):
    """The shell command that runs a program read from stdin: ``interpreter -`` when it is known,
    else the first of FALLBACK_INTERPRETERS the host has."""
    if interpreter:
        return "%s -" % shlex.quote(interpreter)
    tries = " ".join(shlex.quote(p) for p in FALLBACK_INTERPRETERS)
    return ('for p in %s; do if command -v "$p" >/dev/null 2>&1; then exec "$p" -; fi; done; '
            'echo "no python interpreter found (tried: %s)" >&2; exit 127' % (tries, " ".join(FALLBACK_INTERPRETERS)))


def answer(result):
    """The program's result from a _low_level_execute_command result: (dict, None), or (None, why)."""
    out = (result.get("stdout") or "").strip()
    try:
        value = json.loads(out) if out else None
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value, None
    why = "rc %s" % result.get("rc")
    err = (result.get("stderr") or "").strip()
    return None, "%s%s" % (why, ": " + err.splitlines()[-1] if err else "")
