"""Module runs import only the libraries of the kind they use.

An emergency revocation through a rest issuer must not wait for boto3, psycopg and hvac to
load (about half a second together); those come in when an aws_iam, postgres or vault kind
is actually constructed. Checked in a fresh interpreter, as AnsiballZ runs a module.
"""
from pathlib import Path

import pytest

from ansible_collections.credops.rotation.plugins.module_utils._lazy import LazyModule
from tests.unit._fresh import fresh

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "psycopg", "hvac", "requests", "kubernetes", "cryptography")


def _fresh(code):
    return fresh(code).split()


def test_loading_the_issuer_and_store_registries_imports_no_heavy_library():
    loaded = _fresh("""
        import sys
        from ansible_collections.credops.rotation.plugins.module_utils._issuers import registry
        from ansible_collections.credops.rotation.plugins.module_utils._stores import registry as stores
        print(" ".join(m for m in sys.modules if m.split(".")[0] in %r or m == "ansible.module_utils.urls"))
    """ % (HEAVY,))
    assert loaded == []


def test_preflight_validation_imports_no_http_library():
    loaded = _fresh("""
        import sys
        from ansible_collections.credops.rotation.plugins.module_utils._inventory import validation
        print(" ".join(m for m in ("ansible.module_utils.urls", "cryptography", "jmespath") if m in sys.modules))
    """)
    assert loaded == ["jmespath"]


@pytest.mark.parametrize("kind, config, wanted, unwanted", [
    ("aws_iam", {"kind": "aws_iam", "user_name": "svc"}, "boto3", ("psycopg", "hvac")),
    ("postgres", {"kind": "postgres", "role": "app"}, "psycopg", ("boto3", "hvac")),
    ("vault_pki", {"kind": "vault_pki", "url": "http://127.0.0.1:1", "mount": "pki", "role": "r", "token": "t",
                   "common_name": "a.example.org"}, "hvac", ("boto3", "psycopg")),
])
def test_constructing_a_kind_imports_its_library_and_no_other(kind, config, wanted, unwanted):
    loaded = _fresh("""
        import sys
        from ansible_collections.credops.rotation.plugins.module_utils._issuers import registry
        registry.get_issuer(%r, "cred-x")
        print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
    """ % (config,))
    assert wanted in loaded
    assert not set(unwanted) & set(loaded)


def test_lazy_module_imports_on_first_attribute_and_reports_a_missing_library():
    json_mod = LazyModule("json")
    assert "(imported)" not in repr(json_mod)
    assert json_mod.dumps({"a": 1}) == '{"a": 1}'
    assert json_mod.import_error() is None
    assert "(imported)" in repr(json_mod)
    missing = LazyModule("credops_no_such_library_here")
    error = missing.import_error()
    assert error and "ModuleNotFoundError" in error
    with pytest.raises(ImportError):
        missing.anything  # noqa: B018 - the attribute access is the test
