"""The published JSON Schema of rotation_credentials: current, valid, and in step with preflight.

To regenerate the file after changing a declaration (plugins/module_utils/_inventory/fields.py,
an issuer's or store's argspec):

    PYTHONPATH=.collections .venv/bin/python -m tests.unit.test_credentials_schema
"""
import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from ansible_collections.credops.rotation.plugins.module_utils._inventory import fields, schema, validation

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / schema.SCHEMA_PATH
GROUP_VARS = sorted((ROOT / "inventories").glob("*/group_vars/all/credentials.yml"))


def _validator():
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_the_published_schema_is_current():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema.render(), (
        "regenerate it: PYTHONPATH=.collections .venv/bin/python -m tests.unit.test_credentials_schema")


def test_the_published_schema_is_a_valid_draft_2020_12_schema():
    document = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


@pytest.mark.parametrize("path", GROUP_VARS, ids=[p.parts[-4] for p in GROUP_VARS])
def test_the_inventories_validate_against_the_schema(path):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert "rotation_credentials" in document
    errors = ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message) for e in _validator().iter_errors(document)]
    assert errors == []


def test_the_example_inventory_is_there():
    assert any(p.parts[-4] == "example" for p in GROUP_VARS)


def _example():
    path = ROOT / "inventories" / "example" / "group_vars" / "all" / "credentials.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _first(credentials, kind):
    return next(name for name, record in credentials.items() if record["issuer"]["kind"] == kind)


# What the schema refuses, preflight refuses too (the schema is an editor's early warning).
REFUSED = [
    ("unknown-type", lambda r: r.update(type="password"), "type"),
    ("no-consumers", lambda r: r.update(consumers=[]), "consumers"),
    ("store-without-path", lambda r: r["store"].pop("path"), "store"),
    ("store-field-no-module-accepts", lambda r: r["store"].update(ca_path="/x"), "store"),
    ("issuer-unknown-kind", lambda r: r["issuer"].update(kind="ldap"), "issuer"),
    ("create-typo", lambda r: r["issuer"]["create"].update(secret_pth="api_key"), "issuer"),
    ("revoke-mode-choice", lambda r: r["issuer"].update(revoke_mode="remove"), "issuer"),
    ("consumer-without-kind", lambda r: r["consumers"][0].pop("kind"), "consumers"),
    ("max-age-not-a-number", lambda r: r.update(max_age_days="thirty"), "max_age_days"),
]


@pytest.mark.parametrize("case_id, change, where", REFUSED, ids=[case[0] for case in REFUSED])
def test_what_the_schema_refuses_preflight_refuses(case_id, change, where):
    document = _example()
    credentials = document["rotation_credentials"]
    name = _first(credentials, "aws_iam" if case_id == "revoke-mode-choice" else "rest")
    change(credentials[name])
    errors = list(_validator().iter_errors(document))
    assert errors, case_id
    assert all(list(e.absolute_path)[:3] == ["rotation_credentials", name, where] for e in errors), \
        [list(e.absolute_path) for e in errors]
    preflight = validation.validate(copy.deepcopy(credentials), check_secrets=False)[0]
    assert any(e.startswith("%s.%s" % (name, where)) for e in preflight), preflight


def _required_cases():
    """(credential, block path, field) for every field fields.REQUIRED names, on the example's
    records of each kind."""
    credentials = _example()["rotation_credentials"]
    cases = []
    for name, record in credentials.items():
        blocks = [("record", ()), ("issuer." + record["issuer"]["kind"], ("issuer",)),
                  ("store." + record["store"]["kind"], ("store",))]
        blocks += [("consumer." + c["kind"], ("consumers", i)) for i, c in enumerate(record["consumers"])]
        for block, where in blocks:
            for field in fields.REQUIRED.get(block, ()):
                if field != "kind" and (name, block, field) not in [(c[0], c[3], c[2]) for c in cases]:
                    cases.append((name, where, field, block))
    return cases


REQUIRED_CASES = _required_cases()


@pytest.mark.parametrize("name, where, field, block", REQUIRED_CASES,
                         ids=["%s-%s" % (c[3], c[2]) for c in REQUIRED_CASES])
def test_what_the_schema_requires_preflight_requires(name, where, field, block):
    credentials = _example()["rotation_credentials"]
    target = credentials[name]
    for key in where:
        target = target[key]
    if field not in target:
        pytest.skip("%s has no %s in the example" % (block, field))
    del target[field]
    path = ".".join([name] + ["[%d]" % k if isinstance(k, int) else k for k in where] + [field]).replace(".[", "[")
    preflight = validation.validate(credentials, check_secrets=False)[0]
    assert any(e.startswith(path) for e in preflight), (path, preflight)


def test_unknown_record_and_consumer_fields_are_allowed_as_preflight_only_warns():
    document = _example()
    record = next(iter(document["rotation_credentials"].values()))
    record["owner_team"] = "payments"
    record["consumers"][0]["comment"] = "the web tier"
    assert list(_validator().iter_errors(document)) == []


def test_a_template_is_accepted_where_a_number_or_boolean_is_wanted():
    document = _example()
    record = next(iter(document["rotation_credentials"].values()))
    record["max_age_days"] = "{{ payment_max_age }}"
    record["store"]["validate_certs"] = "{{ vault_validate_certs }}"
    assert list(_validator().iter_errors(document)) == []


if __name__ == "__main__":
    SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_FILE.write_text(schema.render(), encoding="utf-8")
    print("wrote %s" % SCHEMA_FILE.relative_to(ROOT))
