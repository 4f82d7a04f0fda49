"""awx/: the AWX / AAP configuration as code, checked without an AWX (none can run here).

What AWX itself would reject, or what would break at launch time: YAML/JSON that does not parse,
an awx.awx option that does not exist, a job template naming a playbook the project does not
have, a survey variable the playbook never reads, a credential type injecting a variable the
collection never reads, a schedule whose rrule AWX refuses. The injectors are also rendered and
used for real by tests/integration/test_ansible_runner.py.
"""
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from dateutil.rrule import rrulestr
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[2]
AWX = ROOT / "awx"
PLAYBOOKS = {"rotate", "emergency", "webhook_rotate", "check_expiry", "rollback", "discover_consumers"}

# The options configure.yml may use: those of the awx.awx modules (a subset of each module's).
MODULE_OPTIONS = {
    "awx.awx.credential_type": {"name", "new_name", "description", "kind", "inputs", "injectors", "state"},
    "awx.awx.execution_environment": {"name", "new_name", "description", "image", "organization", "credential",
                                      "pull", "state"},
    "awx.awx.project": {"name", "new_name", "description", "organization", "scm_type", "scm_url", "scm_branch",
                        "scm_refspec", "credential", "scm_clean", "scm_update_on_launch", "allow_override",
                        "default_environment", "timeout", "state", "wait"},
    "awx.awx.job_template": {"name", "new_name", "description", "job_type", "organization", "inventory", "project",
                             "playbook", "credentials", "execution_environment", "forks", "limit", "verbosity",
                             "extra_vars", "job_tags", "skip_tags", "timeout", "use_fact_cache",
                             "ask_variables_on_launch", "ask_tags_on_launch", "ask_limit_on_launch",
                             "ask_credential_on_launch", "survey_enabled", "survey_spec", "become_enabled",
                             "diff_mode", "allow_simultaneous", "labels", "state"},
    "awx.awx.schedule": {"name", "new_name", "description", "unified_job_template", "organization", "rrule",
                         "extra_data", "inventory", "credentials", "enabled", "state"},
}
TASK_KEYWORDS = {"name", "loop", "loop_control", "when", "register", "tags", "vars", "no_log"}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def load(name):
    return yaml.safe_load((AWX / name).read_text())


def configure():
    return load("configure.yml")


def vars_files():
    merged = {}
    for name in configure()[0]["vars_files"]:
        merged.update(load(name))
    return merged


def job_templates():
    return {jt["name"]: jt for jt in vars_files()["credops_job_templates"]}


def surveys():
    return {name: json.loads((AWX / jt["survey"]).read_text())
            for name, jt in job_templates().items() if "survey" in jt}


def test_every_file_parses():
    files = sorted(AWX.rglob("*"))
    expected = {"configure.yml", "credential_types.yml", "job_templates.yml", "schedules.yml", "vars.yml",
                "README.md", "emergency.json"}
    assert {p.name for p in files} >= expected
    for path in files:
        if path.suffix in (".yml", ".yaml"):
            assert yaml.safe_load(path.read_text()) is not None, path
        elif path.suffix == ".json":
            assert isinstance(json.loads(path.read_text()), dict), path


def test_configure_uses_awx_modules_and_their_options():
    plays = configure()
    assert len(plays) == 1 and plays[0]["hosts"] == "localhost"
    for name in plays[0]["vars_files"]:
        assert (AWX / name).is_file()
    used = set()
    for task in plays[0]["tasks"]:
        (module,) = set(task) - TASK_KEYWORDS
        assert module in MODULE_OPTIONS, module
        assert set(task[module]) <= MODULE_OPTIONS[module], (module, set(task[module]) - MODULE_OPTIONS[module])
        used.add(module)
    assert used == set(MODULE_OPTIONS)
    assert "NOT run against a live AWX" in (AWX / "configure.yml").read_text()
    assert "not" in (AWX / "README.md").read_text().lower()


def test_job_templates_run_the_collections_playbooks():
    jts = job_templates()
    creds = vars_files()["credops_awx_credentials"]
    playbooks = set()
    for name, jt in jts.items():
        playbook = jt["playbook"]
        assert re.fullmatch(r"playbooks/[a-z_]+\.yml", playbook), playbook
        assert (ROOT / playbook).is_file(), playbook
        playbooks.add(Path(playbook).stem)
        assert set(jt["credentials"]) <= set(creds), name
        if "survey" in jt:
            assert (AWX / jt["survey"]).is_file()
    assert playbooks == PLAYBOOKS


@pytest.mark.parametrize("template, required", [
    ("credops emergency", {"credential", "incident", "compromised_since"}),
    ("credops rollback", {"credential"}),
    ("credops webhook rotate", {"credential"}),
])
def test_surveys_ask_what_the_playbooks_read(template, required):
    survey = surveys()[template]
    assert set(survey) == {"name", "description", "spec"} and survey["name"]
    variables = [q["variable"] for q in survey["spec"]]
    assert len(variables) == len(set(variables))
    assert {q["variable"] for q in survey["spec"] if q["required"]} == required
    # the playbook, and the roles it calls, read the variable as an extra var (in Jinja or a
    # task's arguments, not only in a comment)
    playbook = (ROOT / job_templates()[template]["playbook"]).read_text()
    texts = [playbook] + [path.read_text() for role in set(re.findall(r"credops\.rotation\.([a-z_]+)", playbook))
                          if (ROOT / "roles" / role).is_dir() for path in (ROOT / "roles" / role).rglob("*.yml")]
    code = "\n".join(line for text in texts for line in text.splitlines() if not line.lstrip().startswith("#"))
    for question in survey["spec"]:
        assert question["type"] in SURVEY_TYPES and isinstance(question["required"], bool)
        assert question["question_name"] and re.fullmatch(r"[a-z_][a-z0-9_]*", question["variable"])
        if question["type"] == "text":
            assert 0 <= question["min"] <= question["max"]
        assert re.search(r"\b%s\b" % question["variable"], code), question["variable"]


def test_only_surveyed_templates_get_survey_answers():
    for name, jt in job_templates().items():
        if name in ("credops emergency", "credops rollback", "credops webhook rotate"):
            assert "survey" in jt
        else:
            assert "survey" not in jt


def _env_names_the_collection_reads():
    """Environment variables the collection's code reads, and those the contract's inventory
    records read through lookup('ansible.builtin.env', NAME) (issuer/sender auth)."""
    code, inventory = set(), set()
    for path in (ROOT / "plugins").rglob("*.py"):
        text = path.read_text()
        code.update(re.findall(r"os\.environ\.get\(\s*[\"']([A-Z0-9_]+)[\"']", text))
        for names in re.findall(r"env_fallback,\s*\[([^\]]*)\]", text):
            code.update(re.findall(r"[\"']([A-Z0-9_]+)[\"']", names))
    docs = [ROOT / "README.md", ROOT.parent / "shared" / "spec" / "inventory.md"] + list((ROOT / "docs").rglob("*.md"))
    for path in docs + list((ROOT / "plugins").rglob("*.py")):
        if path.exists():
            inventory.update(re.findall(r"lookup\('ansible\.builtin\.env',\s*'([A-Z0-9_]+)'\)", path.read_text()))
    return code, inventory


def test_credential_types_inject_what_the_collection_reads():
    code, inventory = _env_names_the_collection_reads()
    types = {t["name"]: t for t in load("credential_types.yml")["credops_credential_types"]}
    jinja = ImmutableSandboxedEnvironment()
    injected = {}
    for name, ctype in types.items():
        assert ctype["kind"] in ("cloud", "net"), name      # the kinds AWX allows for custom types
        fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
        assert all(f["type"] in ("string", "boolean") and f["label"] for f in fields.values())
        assert set(ctype["inputs"]["required"]) <= set(fields)
        assert set(ctype["injectors"]) <= {"env", "extra_vars", "file"}
        for var, template in ctype["injectors"]["env"].items():
            # only the type's own inputs, and every one of them required (no empty variable injected)
            refs = meta.find_undeclared_variables(jinja.parse(template))
            assert refs and refs <= set(ctype["inputs"]["required"]), (name, var)
            injected[var] = name
        # a secret input is marked secret (AWX encrypts and masks it)
        for field_id in ("token", "secret_id"):
            if field_id in fields:
                assert fields[field_id].get("secret") is True
    vault = {"VAULT_ADDR", "VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID"}
    assert vault <= set(injected) and vault <= code
    assert {"PROVIDER_ADMIN_TOKEN", "SENDER_ADMIN_TOKEN"} <= set(injected)
    for var in injected:
        assert var in code or var in inventory, var


def test_schedules_are_valid_awx_rrules():
    jts = job_templates()
    schedules = vars_files()["credops_schedules"]
    by_template = {s["job_template"]: s for s in schedules}
    assert set(by_template) == {"credops check expiry", "credops rotate"}
    gaps = {"credops check expiry": timedelta(days=1), "credops rotate": timedelta(days=7)}
    for sched in schedules:
        rule = sched["rrule"]
        # AWX: one DTSTART (with TZID or in UTC), one RRULE with INTERVAL, no COUNT > 999,
        # no SECONDLY, no numeric BYDAY prefix, no BYYEARDAY or BYWEEKNO
        assert rule.count("DTSTART") == 1 and rule.count("RRULE:") == 1
        assert re.match(r"DTSTART(;TZID=[A-Za-z_/+-]+:\d{8}T\d{6}|:\d{8}T\d{6}Z) RRULE:", rule), rule
        assert re.search(r"INTERVAL=\d+", rule)
        assert not any(word in rule for word in ("SECONDLY", "BYYEARDAY", "BYWEEKNO"))
        assert not re.search(r"BYDAY=[^;]*[+-]?\d", rule)
        count = re.search(r"COUNT=(\d+)", rule)
        assert not count or int(count.group(1)) <= 999
        parsed = rrulestr(rule)
        first = parsed[0]
        assert parsed.after(first) - first == gaps[sched["job_template"]]
        jt = jts[sched["job_template"]]
        if sched["extra_data"]:
            assert jt.get("ask_variables_on_launch"), "AWX refuses extra_data the template does not prompt for"
    assert "BYDAY=TU" in by_template["credops rotate"]["rrule"]
    assert by_template["credops rotate"]["extra_data"] == {}   # due credentials only: no names, no force
