"""Each issuer, store and consumer kind owns its knowledge (#15 item 1).

A kind declares, in its own class, its fields (ARGSPEC), what preflight requires and checks, the
credential types it can issue, the facts the store keeps beside a new value and its roll back
order; preflight, the JSON Schema, issue_key and the roles read those declarations through the
registry. A consumer kind declares its fields, required fields, preflight checks, where it is
deployed, what the dependency map shows, its discovery scan and whether it is verified. A dummy
kind registered in a test works everywhere without another file changing, and no role or
playbook branches on a kind's name.
"""
import json
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.credops.rotation.plugins.module_utils._consumers import registry as consumers
from ansible_collections.credops.rotation.plugins.module_utils._issuers import registry
from ansible_collections.credops.rotation.plugins.module_utils._stores import registry as stores
from tests.unit._fresh import fresh

ROOT = Path(__file__).resolve().parents[2]

# One class, its declarations: registered before preflight's tables are built (a fresh interpreter).
DUMMY = '''
import json, sys
from ansible_collections.credops.rotation.plugins.module_utils._issuers import registry
from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer


class DummyIssuer(Issuer):
    kind = "dummy"
    ARGSPEC = dict(endpoint=dict(type="str"), flavour=dict(type="str", choices=["plain", "salted"]))
    TYPES = ("api_key", "webhook_secret")
    REQUIRED = ("kind", "endpoint")
    DEFAULTS = dict(flavour="plain")

    @classmethod
    def preflight(cls, report, path, block, check):
        if check.required_str(report, path + ".endpoint", block.get("endpoint"), "set it, e.g. `endpoint: x`"):
            if not block["endpoint"].startswith("dummy:"):
                report.error(path + ".endpoint", "%s is not a dummy address" % check.show(block["endpoint"]),
                             "write dummy:NAME")

    @classmethod
    def stored_facts(cls, key_id, info):
        return dict(metadata=dict(batch=info.get("batch"), key_serial=key_id), data={})

    @classmethod
    def replaces_in_place(cls, block):
        return True

    def create(self):
        return dict(id="k-1", secret="s3cr3t-value-dummy", info=dict(batch=7))


registry.register_issuer(DummyIssuer)

from ansible_collections.credops.rotation.plugins.filter.kinds import issuer_traits
from ansible_collections.credops.rotation.plugins.module_utils._inventory import fields, normalize, schema, validation
from ansible_collections.credops.rotation.plugins.modules import issue_key

def record(issuer, ctype="api_key"):
    return {"type": ctype, "rotation_contact": "ops@example.org",
            "issuer": issuer, "store": {"kind": "vault_kv2", "path": "apps/x"},
            "consumers": [{"name": "batch-x", "kind": "batch"}]}

def problems(credentials):
    errors, _warnings = validation.validate(credentials, check_secrets=False)
    return sorted(error.split(". Fix: ")[0] for error in errors)

changed, issued = issue_key.issue(DummyIssuer({}, "x"), "x", check_mode=False)
json.dump({
    "good": problems({"x": record({"kind": "dummy", "endpoint": "dummy:a"})}),
    "bad": problems({"x": record({"kind": "dummy", "endpoint": "http://a", "colour": "red"})}),
    "missing": problems({"x": record({"kind": "dummy"})}),
    "incompatible": problems({"x": record({"kind": "dummy", "endpoint": "dummy:a"}, ctype="certificate")}),
    "compatible": list(validation.COMPATIBLE_ISSUERS["webhook_secret"]),
    "normalized": normalize.normalize("x", record({"kind": "dummy", "endpoint": "dummy:a"}))["issuer"],
    "required": list(fields.REQUIRED["issuer.dummy"]),
    "schema": sorted(schema.credentials_schema()["$defs"]["issuer.dummy"]["properties"]),
    "stored": issued["stored"],
    "traits": issuer_traits({"kind": "dummy", "endpoint": "dummy:a"}, "k-0"),
}, sys.stdout)
'''


def _fresh(code):
    return json.loads(fresh(code))


@pytest.fixture(scope="module")
def dummy():
    return _fresh(DUMMY)


def test_a_registered_kind_passes_preflight_with_its_own_checks(dummy):
    assert dummy["good"] == []
    assert any(p.startswith("x.issuer.endpoint: ") and p.endswith("is not a dummy address") for p in dummy["bad"])
    assert any(p.startswith("x.issuer.colour") for p in dummy["bad"])  # no kind has it
    assert dummy["missing"] == ["x.issuer.endpoint: missing or empty"]
    assert dummy["required"] == ["kind", "endpoint"]
    assert {"endpoint", "flavour", "kind"} <= set(dummy["schema"])


def test_a_registered_kind_declares_the_types_it_issues(dummy):
    assert dummy["incompatible"] == ["x.issuer.kind: type certificate cannot be issued by dummy"]
    assert dummy["compatible"] == ["generated", "dummy"]


def test_a_registered_kind_declares_its_defaults_stored_facts_and_rollback_order(dummy):
    assert dummy["normalized"] == {"kind": "dummy", "endpoint": "dummy:a", "flavour": "plain"}
    assert dummy["stored"] == {"metadata": {"batch": 7, "key_serial": "k-1"}, "data": {}}
    assert dummy["traits"] == {"kind": "dummy", "replaces_in_place": True, "previous_record": None}


@pytest.mark.parametrize("kind, block, in_place, record_read", [
    ("rest", {"kind": "rest"}, False, False),
    ("aws_iam", {"kind": "aws_iam"}, False, False),
    ("postgres", {"kind": "postgres", "role": "app"}, True, False),
    ("postgres", {"kind": "postgres", "roles": ["a", "b"]}, False, False),
    ("vault_pki", {"kind": "vault_pki", "url": "https://pki.example.org:8200", "mount": "pki"}, False, True),
    ("generated", {"kind": "generated"}, False, False),
])
def test_the_built_in_kinds_traits(kind, block, in_place, record_read):
    traits = registry.issuer_traits(block, "1a:2b")
    assert traits["kind"] == kind
    assert traits["replaces_in_place"] is in_place
    assert (traits["previous_record"] is not None) is record_read
    assert registry.issuer_traits(block)["previous_record"] is None  # no key id, nothing to read


def test_the_pki_previous_record_is_the_unauthenticated_read_by_serial():
    block = {"kind": "vault_pki", "url": "https://pki.example.org:8200/", "mount": "pki_int", "namespace": "team",
             "validate_certs": False, "ca_path": "/etc/ca.pem"}
    assert registry.issuer_traits(block, "1a:2b")["previous_record"] == {
        "url": "https://pki.example.org:8200/v1/pki_int/cert/1a-2b", "headers": {"X-Vault-Namespace": "team"},
        "validate_certs": False, "ca_path": "/etc/ca.pem"}


def test_the_pki_stored_facts_are_what_the_issue_step_wrote():
    cls = registry.ISSUERS["vault_pki"]
    info = {"not_before": "2026-01-01T00:00:00Z", "not_after": "2026-04-01T00:00:00Z", "certificate": "PEM",
            "ca_chain": ["CA1", "CA2"]}
    assert cls.stored_facts("1a:2b", info) == {
        "metadata": {"not_before": "2026-01-01T00:00:00Z", "not_after": "2026-04-01T00:00:00Z",
                     "certificate_serial": "1a:2b"},
        "data": {"not_before": "2026-01-01T00:00:00Z", "not_after": "2026-04-01T00:00:00Z", "certificate": "PEM",
                 "issuing_ca": "CA1\nCA2"}}
    assert cls.public_values(info) == {"cert": "PEM", "ca": "CA1\nCA2"}
    # check mode (no facts): the same keys, empty
    assert cls.stored_facts(None, {})["data"]["issuing_ca"] == ""
    assert cls.public_values({}) == {"cert": None, "ca": None}
    for kind in ("rest", "aws_iam", "postgres", "generated"):
        assert registry.ISSUERS[kind].stored_facts("id", info) == {"metadata": {}, "data": {}}
        assert registry.ISSUERS[kind].public_values(info) == {}


def test_every_kind_declares_what_preflight_reads():
    for kind, cls in registry.ISSUERS.items():
        assert cls.kind == kind and cls.TYPES and cls.REQUIRED[0] == "kind"
        assert set(cls.REQUIRED[1:]) <= set(cls.ARGSPEC)
    for kind, cls in stores.STORES.items():
        assert cls.kind == kind and set(cls.FIELDS) <= set(stores.STORE_ARGSPEC) and set(cls.REQUIRED) <= set(cls.FIELDS)


KINDS = tuple(registry.ISSUERS) + tuple(stores.STORES)
# a kind's name as a value in an expression ('vault_pki', "postgres"), or a test on issuer.kind / store.kind
_BRANCH = re.compile(r"""(['"])(%s)\1|\b(issuer|store)\.kind\s*(==|!=|\bin\b|\bnot\s+in\b|\bis\b)|'equalto',\s*'(%s)'"""
                     % ("|".join(KINDS), "|".join(KINDS)))


def _yaml_files():
    files = sorted((ROOT / "roles").glob("*/tasks/*.yml")) + sorted((ROOT / "roles").glob("*/handlers/*.yml"))
    files += sorted((ROOT / "playbooks").glob("*.yml"))
    assert len(files) > 10
    return files


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_role_or_playbook_branches_on_an_issuer_or_store_kind(path):
    text = path.read_text()
    yaml.safe_load_all(text)
    hits = [line.strip() for line in text.splitlines() if _BRANCH.search(line) and not line.strip().startswith("#")]
    assert hits == [], "%s names an issuer or store kind (ask credops.rotation.issuer_traits or the module): %s" % (
        path.relative_to(ROOT), hits)


# --- consumer kinds ---------------------------------------------------------------------------

# A consumer kind, its declarations: registered before preflight's tables are built (a fresh interpreter).
DUMMY_CONSUMER = '''
import json, sys
from ansible_collections.credops.rotation.plugins.module_utils._consumers import registry
from ansible_collections.credops.rotation.plugins.module_utils._consumers._base import VERIFY, Consumer


class PigeonConsumer(Consumer):
    kind = "pigeon"
    FIELDS = dict(name=dict(type="str"), kind=dict(type="str"), loft=dict(type="raw"), ring=dict(type="str"),
                  verify=dict(type="dict", options=VERIFY))
    REQUIRED = ("name", "kind", "loft", "ring")
    TARGET = "loft"
    MAP_FIELDS = ("ring",)
    VERIFIED = False

    @classmethod
    def preflight(cls, report, path, consumer, inventory, claims, check):
        check.host_ref(report, path + ".loft", consumer.get("loft"), inventory, what="loft")
        if check.required_str(report, path + ".ring", consumer.get("ring"), "set it, e.g. `ring: r-1`"):
            if not consumer["ring"].startswith("r-"):
                report.error(path + ".ring", "%s is not a ring" % check.show(consumer["ring"]), "write r-NUMBER")


registry.register_consumer(PigeonConsumer)

from ansible_collections.credops.rotation.plugins.filter.consumer_kinds import consumer_traits
from ansible_collections.credops.rotation.plugins.filter.plan import rotation_plan
from ansible_collections.credops.rotation.plugins.module_utils._inventory import depmap, fields, schema, validation

GROUPS = {"lofts": ["coop1", "coop2"]}
HOSTS = ["coop1", "coop2"]

def credentials(consumer):
    return {"x": {"type": "api_key", "rotation_contact": "ops@example.org", "issuer": {"kind": "generated"},
                  "store": {"kind": "vault_kv2", "path": "apps/x"}, "consumers": [dict(consumer, kind="pigeon")]}}

def problems(consumer):
    errors, warnings = validation.validate(credentials(consumer), GROUPS, HOSTS, check_secrets=False)
    return sorted(error.split(". Fix: ")[0] for error in errors), sorted(w.split(":")[0] for w in warnings)

good = {"name": "post", "loft": "lofts", "ring": "r-7"}
defs = schema.credentials_schema()["$defs"]
json.dump({
    "good": problems(good),
    "bad": problems({"name": "post", "loft": "nowhere", "ring": "7", "colour": "grey"}),
    "missing": problems({"name": "post"}),
    "required": list(fields.REQUIRED["consumer.pigeon"]),
    "map": depmap.dependency_map(credentials(good), GROUPS, HOSTS)["credentials"]["x"],
    "schema": sorted(defs["consumer.pigeon"]["properties"]),
    "schema_required": defs["consumer.pigeon"]["required"],
    "kinds": defs["consumer"]["properties"]["kind"]["enum"],
    "plan": rotation_plan(credentials(good), ["x"], GROUPS),
    "traits": consumer_traits(good.get("kind", "pigeon")),
}, sys.stdout)
'''


@pytest.fixture(scope="module")
def pigeon():
    return _fresh(DUMMY_CONSUMER)


def test_a_registered_consumer_kind_passes_preflight_with_its_own_checks(pigeon):
    assert pigeon["good"] == [[], []]
    errors, warnings = pigeon["bad"]
    assert errors == ["x.consumers[0].loft: 'nowhere' is neither a host nor a group of the inventory",
                      "x.consumers[0].ring: '7' is not a ring"]
    assert warnings == ["x.consumers[0].colour"]  # a field its kind does not declare
    assert pigeon["missing"][0] == ["x.consumers[0].loft: missing", "x.consumers[0].ring: missing or empty"]
    assert pigeon["required"] == ["name", "kind", "loft", "ring"]


def test_a_registered_consumer_kind_is_in_the_dependency_map_schema_and_plan(pigeon):
    assert pigeon["map"]["consumers"] == [{"name": "post", "kind": "pigeon", "hosts": ["coop1", "coop2"], "ring": "r-7"}]
    assert pigeon["map"]["hosts"] == ["coop1", "coop2"]
    assert pigeon["schema"] == ["kind", "loft", "name", "ring", "verify"]
    assert pigeon["schema_required"] == ["name", "kind", "loft", "ring"]
    assert pigeon["kinds"] == ["systemd", "kubernetes", "batch", "pigeon"]
    assert sorted(pigeon["plan"]) == ["coop1", "coop2"]
    assert pigeon["plan"]["coop1"] == [{"credential": "x", "consumer": "post", "index": 0, "kind": "pigeon"}]
    assert pigeon["traits"] == {"kind": "pigeon", "verified": False, "target": "loft"}


@pytest.mark.parametrize("kind, verified, target, scanned", [
    ("systemd", True, "hosts", True),
    ("kubernetes", True, "cluster", True),
    ("batch", False, "hosts", False),
])
def test_the_built_in_consumer_kinds_traits(kind, verified, target, scanned):
    assert consumers.consumer_traits(kind) == {"kind": kind, "verified": verified, "target": target}
    assert consumers.CONSUMERS[kind].SCANNED is scanned
    assert consumers.consumer_traits("pigeon") is None and consumers.consumer_traits(["systemd"]) is None


def test_every_consumer_kind_declares_what_preflight_reads():
    for kind, cls in consumers.CONSUMERS.items():
        assert cls.kind == kind and "kind" in cls.FIELDS and "name" in cls.FIELDS
        assert set(cls.REQUIRED) <= set(cls.FIELDS) and cls.TARGET in cls.FIELDS
        assert set(cls.MAP_FIELDS) <= set(cls.FIELDS) and set(cls.BLOCKS) <= set(cls.FIELDS)
        assert all(set(group) <= set(cls.FIELDS) for group in cls.REQUIRED_ONE_OF)


def test_inventory_code_names_no_consumer_kind():
    """_inventory asks the registry; it compares no consumer kind (drift's filter-facing names,
    e.g. systemd_found, are the filters' options, not comparisons)."""
    kinds = "|".join(consumers.CONSUMERS)
    pattern = re.compile(r"""(['"])(%s)\1\s*(==|!=|:|,|\)|\bin\b)|(==|!=)\s*(['"])(%s)\5""" % (kinds, kinds))
    for path in sorted((ROOT / "plugins" / "module_utils" / "_inventory").glob("*.py")):
        hits = [line.strip() for line in path.read_text().splitlines()
                if pattern.search(line) and "_found" not in line]
        assert hits == [], "%s names a consumer kind: %s" % (path.name, hits)


# A consumer kind compared in a role or playbook: 'batch' / "systemd" as a value, or a test on a
# consumer's kind. Including `{{ kind }}.yml` (one task file per kind) is how the deploy role
# dispatches, and is allowed.
_CONSUMER_BRANCH = re.compile(r"""(['"])(%s)\1|\bkind\s*(==|!=|\bin\b|\bnot\s+in\b|\bis\b)"""
                              % "|".join(consumers.CONSUMERS))
# The webhook handshake (webhook_rotate.yml) puts systemd receivers in dual-accept only, and its
# preflight says so by name; giving that a declared trait is left to the webhook roles' owner.
_CONSUMER_BRANCH_KNOWN = ("roles/webhook_preflight/tasks/main.yml",)


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_role_or_playbook_branches_on_a_consumer_kind(path):
    text = path.read_text()
    hits = [line.strip() for line in text.splitlines()
            if _CONSUMER_BRANCH.search(line) and not line.strip().startswith("#")]
    if str(path.relative_to(ROOT)) in _CONSUMER_BRANCH_KNOWN:
        assert hits, "%s no longer compares a consumer kind: drop it from _CONSUMER_BRANCH_KNOWN" % path.name
        return
    assert hits == [], "%s compares a consumer kind (ask credops.rotation.consumer_traits): %s" % (
        path.relative_to(ROOT), hits)
