"""credops.rotation.secret_store (and the store lookup) against real OpenBao and moto.

Every case is checked with an independent client (hvac, boto3), never with the code under
test. To stay fast, cases run in batches, each case on its own secret and its own inventory host
(local connection, so the hosts of a batch run in parallel):

* one playbook runs every case in check mode: the stores must be byte-for-byte unchanged;
* one playbook runs every case for real and then again: changed, then not changed, and the
  store holds exactly the layout of the inventory contract (KV v2 data, versions and
  custom_metadata; AWS staging labels AWSCURRENT / AWSPENDING / AWSPREVIOUS and tags);
* one playbook walks whole rotations on both kinds at -vvv with --diff (pending -> deployed
  -> verified -> promote -> finished, then pending -> refused second value -> rollback), reads
  the values back (module with return_values under no_log, and the lookup), and its output
  must not contain any planted value;
* one playbook provokes the errors a person must be able to act on.
"""
import json
import sys
import tempfile
import uuid
from pathlib import Path

import hvac
import pytest

from tests.lab.ansible_runner import run_playbook

pytestmark = pytest.mark.lab

MODULE = "credops.rotation.secret_store"
RUN = uuid.uuid4().hex[:8]
PLANTED = []  # every secret value a test writes: none may appear in any output


def planted(label):
    value = "planted-%s-%s-%s" % (label, RUN, uuid.uuid4().hex[:12])
    PLANTED.append(value)
    return value


def run_hosts(hosts, tasks, env, verbosity=0, diff=False, timeout=600):
    """One playbook over local inventory hosts running in parallel (one host per case).

    ``hosts``: {name: host vars}; ``tasks``: task bodies, templated per host (e.g.
    ``"{{ store }}"``), each registered with ignore_errors. Results are saved per host with
    no_log. Returns ({host: [result per task]}, completed process).
    """
    with tempfile.TemporaryDirectory(prefix="credops-store-") as tmp:
        inventory = {"all": {"hosts": dict(
            (name, dict(hostvars, ansible_connection="local", ansible_python_interpreter=sys.executable))
            for name, hostvars in hosts.items())}}
        (Path(tmp) / "inventory.json").write_text(json.dumps(inventory))
        body = []
        for i, spec in enumerate(tasks):
            task = dict(spec)
            task.setdefault("name", "task %d" % i)
            task.update({"register": "r%d" % i, "ignore_errors": True, "diff": diff})
            body.append(task)
        body.append({"name": "Save", "ansible.builtin.copy": {
            "content": "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks))),
            "dest": "%s/{{ inventory_hostname }}.json" % tmp}, "check_mode": False, "no_log": True})
        play = Path(tmp) / "play.yml"
        play.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": body}]))
        proc = run_playbook(play, inventory=Path(tmp) / "inventory.json", verbosity=verbosity,
                            timeout=timeout, env=dict(env, ANSIBLE_FORKS="8"))
        results = {}
        for name in hosts:
            out = Path(tmp) / ("%s.json" % name)
            assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
            results[name] = json.loads(out.read_text())
    return results, proc


def step_task(name, check=False, no_log=False, **extra):
    """A secret_store task whose arguments come from the host's ``a`` variable."""
    args = {"credential": "{{ a.credential }}", "store": "{{ a.store }}", "state": "{{ a.state }}"}
    for key in ("value", "key_id", "phase", "metadata", "data", "return_values"):
        args[key] = "{{ a.%s | default(omit) }}" % key
    task = {"name": name, MODULE: args, "check_mode": check}
    if no_log:
        task["no_log"] = True
    task.update(extra)
    return task


def assert_no_leak(proc):
    text = proc.stdout + proc.stderr
    leaked = [value for value in PLANTED if value in text]
    assert not leaked, "secret values in the output: %s" % leaked


# -- independent views of the stores ------------------------------------------------------------

def vault_snapshot(client, path):
    kv = client.secrets.kv.v2
    try:
        md = kv.read_secret_metadata(path=path, mount_point="secret")["data"]
    except hvac.exceptions.InvalidPath:
        return None
    history = {}
    for number in sorted(int(n) for n in md["versions"]):
        resp = kv.read_secret_version(path=path, version=number, mount_point="secret",
                                      raise_on_deleted_version=True)
        history[number] = resp["data"]["data"]
    return {"current_version": md["current_version"], "custom_metadata": md["custom_metadata"] or {},
            "history": history, "data": history.get(md["current_version"])}


def aws_snapshot(sm, secret_id):
    try:
        desc = sm.describe_secret(SecretId=secret_id)
    except sm.exceptions.ResourceNotFoundException:
        return None
    versions = sm.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)["Versions"]
    values = dict((v["VersionId"], sm.get_secret_value(SecretId=secret_id, VersionId=v["VersionId"])
                   ["SecretString"]) for v in versions)
    labels = dict((vid, sorted(stages)) for vid, stages in (desc.get("VersionIdsToStages") or {}).items()
                  if stages)
    by_label = {}
    for vid, stages in labels.items():
        for stage in stages:
            by_label[stage] = values[vid]
    tags = dict((t["Key"], t["Value"]) for t in desc.get("Tags") or [])
    return {"labels": labels, "values": values, "by_label": by_label, "tags": tags}


def field_of(secret_string, field="api_key"):
    return json.loads(secret_string)[field]


# -- the case table ----------------------------------------------------------------------------
# Each case: a store set up by hand in some phase (with the independent client, in the layout
# of the inventory contract), one step of the module, and what the store must hold after it.

class Case:
    def __init__(self, kind, name, setup, step, expect, changed=True, fails=None):
        self.kind, self.name, self.setup, self.step = kind, name, setup, step
        self.expect, self.changed, self.fails = expect, changed, fails
        self.id = "%s-%s" % (kind, name)


def vault_inflight(client, path, phase, old, new):
    client.secrets.kv.v2.create_or_update_secret(path=path, mount_point="secret", secret={
        "api_key": new, "key_id": "k-new", "previous_api_key": old, "previous_key_id": "k-old",
        "rotated_at": "2024-08-15T10:30:00Z", "username": "svc"})
    client.adapter.post("/v1/secret/metadata/%s" % path, json={"custom_metadata": {
        "rotation_phase": phase, "consumers": "web-app,batch", "last_rotated": "2024-05-01T00:00:00Z"}})


def aws_inflight(sm, secret_id, phase, old, new, promoted=False):
    old_vid = sm.create_secret(Name=secret_id, SecretString=json.dumps(
        {"api_key": old, "username": "svc"}))["VersionId"]
    new_vid = sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(
        {"api_key": new, "username": "svc"}), VersionStages=["AWSPENDING"])["VersionId"]
    tags = {"credops:rotation_phase": phase, "credops:consumers": "web-app=2Cbatch",
            "credops:key_id": "k-old", "credops:pending_key_id": "k-new"}
    if promoted:
        sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSCURRENT",
                                       MoveToVersionId=new_vid, RemoveFromVersionId=old_vid)
        sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSPENDING",
                                       RemoveFromVersionId=new_vid)
        tags = {"credops:rotation_phase": phase, "credops:consumers": "web-app=2Cbatch",
                "credops:key_id": "k-new", "credops:previous_key_id": "k-old"}
    sm.tag_resource(SecretId=secret_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return old_vid, new_vid


def build_cases():
    cases = []

    # ---- vault_kv2 ----------------------------------------------------------------------
    def v_first(ctx):
        pass

    def v_first_expect(ctx, snap):
        assert snap["current_version"] == 1
        assert snap["data"] == {"value": ctx["new"], "key_id": "k-new", "rotation_phase": "pending",
                                "rotated_at": snap["data"]["rotated_at"], "rotated_by": "tester"}
        assert snap["custom_metadata"] == {"rotation_phase": "pending", "consumers": "web-app,batch"}

    cases.append(Case("vault_kv2", "pending-first-rotation", v_first,
                      lambda ctx: dict(state="pending", value=ctx["new"], key_id="k-new",
                                       metadata={"consumers": ["web-app", "batch"]},
                                       data={"rotated_by": "tester"}),
                      v_first_expect))

    def v_plain(ctx):
        ctx["client"].secrets.kv.v2.create_or_update_secret(
            path=ctx["path"], mount_point="secret", secret={"api_key": ctx["old"], "username": "svc"})

    def v_plain_expect(ctx, snap):
        assert snap["current_version"] == 2
        data = snap["data"]
        assert data["api_key"] == ctx["new"] and data["key_id"] == "k-new"
        assert data["previous_api_key"] == ctx["old"] and "previous_key_id" not in data
        assert data["username"] == "svc" and data["rotation_phase"] == "pending"
        assert snap["history"][1] == {"api_key": ctx["old"], "username": "svc"}
        assert snap["custom_metadata"]["rotation_phase"] == "pending"

    cases.append(Case("vault_kv2", "pending-keeps-previous", v_plain,
                      lambda ctx: dict(state="pending", value=ctx["new"], key_id="k-new"),
                      v_plain_expect))

    def v_phase(phase):
        return lambda ctx: vault_inflight(ctx["client"], ctx["path"], phase, ctx["old"], ctx["new"])

    def v_moved(phase, verified=False):
        def expect(ctx, snap):
            assert snap["current_version"] == 2
            data = snap["data"]
            assert (data["api_key"], data["key_id"]) == (ctx["new"], "k-new")
            assert (data["previous_api_key"], data["previous_key_id"]) == (ctx["old"], "k-old")
            assert data["rotation_phase"] == phase and data["username"] == "svc"
            assert ("rotation_verified_at" in data) == verified
            assert snap["custom_metadata"] == {"rotation_phase": phase, "consumers": "web-app,batch",
                                               "last_rotated": "2024-05-01T00:00:00Z"}
        return expect

    cases.append(Case("vault_kv2", "phase-deployed", v_phase("pending"),
                      lambda ctx: dict(state="phase", phase="deployed"), v_moved("deployed")))
    cases.append(Case("vault_kv2", "phase-verified", v_phase("deployed"),
                      lambda ctx: dict(state="phase", phase="verified"), v_moved("verified", True)))

    def v_untouched(ctx, snap):
        assert snap["current_version"] == 1
        assert snap["custom_metadata"]["rotation_phase"] == "verified"

    # KV v2 holds the new value in <field> from the start: promote has nothing to do
    cases.append(Case("vault_kv2", "promote-noop", v_phase("verified"),
                      lambda ctx: dict(state="promote"), v_untouched, changed=False))
    # promote means every consumer verified the new value: from deployed it records that
    cases.append(Case("vault_kv2", "promote-from-deployed", v_phase("deployed"),
                      lambda ctx: dict(state="promote"), v_moved("verified", True)))

    def v_finished(ctx, snap):
        assert snap["current_version"] == 2
        data = snap["data"]
        assert (data["api_key"], data["key_id"]) == (ctx["new"], "k-new")
        assert "previous_api_key" not in data and "previous_key_id" not in data
        assert data["rotation_phase"] == "finished" and data["username"] == "svc"
        meta = snap["custom_metadata"]
        assert meta["rotation_phase"] == "finished" and meta["consumers"] == "web-app,batch"
        assert meta["last_rotated"] > "2024-05-01T00:00:00Z"
        assert snap["history"][1]["previous_api_key"] == ctx["old"]  # the old one stays in history

    cases.append(Case("vault_kv2", "finished", v_phase("verified"),
                      lambda ctx: dict(state="finished"), v_finished))

    def v_rolled_back(ctx, snap):
        assert snap["current_version"] == 2
        data = snap["data"]
        assert (data["api_key"], data["key_id"]) == (ctx["old"], "k-old")
        assert "previous_api_key" not in data and "previous_key_id" not in data
        assert data["rotation_phase"] == "rolled_back" and "rolled_back_at" in data
        assert data["rotated_at"] == "2024-05-01T00:00:00Z"   # the restored value's age
        assert snap["custom_metadata"]["rotation_phase"] == "rolled_back"
        assert snap["custom_metadata"]["last_rotated"] == "2024-05-01T00:00:00Z"

    cases.append(Case("vault_kv2", "rollback-from-deployed", v_phase("deployed"),
                      lambda ctx: dict(state="rollback"), v_rolled_back))

    def v_refused(ctx, snap):
        assert snap["current_version"] == 1 and snap["data"]["api_key"] == ctx["new"]

    cases.append(Case("vault_kv2", "refuse-second-pending", v_phase("pending"),
                      lambda ctx: dict(state="pending", value=ctx["other"], key_id="k-other"),
                      v_refused, changed=False, fails="a rotation is already in flight"))
    cases.append(Case("vault_kv2", "refuse-finish-unverified", v_phase("deployed"),
                      lambda ctx: dict(state="finished"), v_refused, changed=False,
                      fails="once every consumer verified"))

    # ---- aws_secretsmanager -------------------------------------------------------------
    def a_first_expect(ctx, snap):
        # AWS makes the first version of a secret AWSCURRENT as well
        assert list(snap["labels"].values()) == [["AWSCURRENT", "AWSPENDING"]]
        assert snap["by_label"]["AWSPENDING"] == ctx["new"]   # no field: the whole SecretString
        tags = snap["tags"]
        assert tags["credops:rotation_phase"] == "pending"
        assert tags["credops:pending_key_id"] == "k-new"
        assert tags["credops:consumers"] == "web-app=2Cbatch"
        assert tags["credops:rotated_by"] == "tester"

    cases.append(Case("aws_secretsmanager", "pending-first-rotation", v_first,
                      lambda ctx: dict(state="pending", value=ctx["new"], key_id="k-new",
                                       metadata={"consumers": ["web-app", "batch"]},
                                       data={"rotated_by": "tester"}),
                      a_first_expect))

    def a_plain(ctx):
        ctx["old_vid"] = ctx["sm"].create_secret(Name=ctx["path"], SecretString=json.dumps(
            {"api_key": ctx["old"], "username": "svc"}))["VersionId"]

    def a_plain_expect(ctx, snap):
        labels = snap["labels"]
        assert labels.pop(ctx["old_vid"]) == ["AWSCURRENT"]
        assert list(labels.values()) == [["AWSPENDING"]]
        assert json.loads(snap["by_label"]["AWSPENDING"]) == {"api_key": ctx["new"], "username": "svc"}
        assert field_of(snap["by_label"]["AWSCURRENT"]) == ctx["old"]
        assert snap["tags"]["credops:rotation_phase"] == "pending"
        assert snap["tags"]["credops:pending_key_id"] == "k-new"

    cases.append(Case("aws_secretsmanager", "pending-keeps-current", a_plain,
                      lambda ctx: dict(state="pending", value=ctx["new"], key_id="k-new"),
                      a_plain_expect))

    def a_phase(phase, promoted=False):
        def setup(ctx):
            ctx["old_vid"], ctx["new_vid"] = aws_inflight(ctx["sm"], ctx["path"], phase, ctx["old"],
                                                          ctx["new"], promoted)
        return setup

    def a_labels(expected_labels, phase, extra=None):
        def expect(ctx, snap):
            want = dict((ctx[k], v) for k, v in expected_labels.items())
            assert snap["labels"] == want
            assert snap["tags"]["credops:rotation_phase"] == phase
            assert snap["tags"]["credops:consumers"] == "web-app=2Cbatch"
            if extra:
                extra(ctx, snap)
        return expect

    def verified_at(ctx, snap):
        assert "credops:rotation_verified_at" in snap["tags"]

    cases.append(Case("aws_secretsmanager", "phase-deployed", a_phase("pending"),
                      lambda ctx: dict(state="phase", phase="deployed"),
                      a_labels({"old_vid": ["AWSCURRENT"], "new_vid": ["AWSPENDING"]}, "deployed")))
    cases.append(Case("aws_secretsmanager", "phase-verified", a_phase("deployed"),
                      lambda ctx: dict(state="phase", phase="verified"),
                      a_labels({"old_vid": ["AWSCURRENT"], "new_vid": ["AWSPENDING"]}, "verified",
                               verified_at)))

    def promoted_tags(ctx, snap):
        tags = snap["tags"]
        assert "credops:rotation_verified_at" in tags
        assert tags["credops:key_id"] == "k-new" and tags["credops:previous_key_id"] == "k-old"
        assert "credops:pending_key_id" not in tags
        assert field_of(snap["by_label"]["AWSCURRENT"]) == ctx["new"]

    cases.append(Case("aws_secretsmanager", "promote-from-deployed", a_phase("deployed"),
                      lambda ctx: dict(state="promote"),
                      a_labels({"old_vid": ["AWSPREVIOUS"], "new_vid": ["AWSCURRENT"]}, "verified",
                               promoted_tags)))

    def finished_tags(ctx, snap):
        tags = snap["tags"]
        assert tags["credops:key_id"] == "k-new"
        assert "credops:previous_key_id" not in tags and "credops:pending_key_id" not in tags
        assert tags["credops:last_rotated"] > "2024"
        assert len(snap["values"]) == 2   # the revoked value stays as a deprecated version

    cases.append(Case("aws_secretsmanager", "finished-promotes-first", a_phase("verified"),
                      lambda ctx: dict(state="finished"),
                      a_labels({"new_vid": ["AWSCURRENT"], "old_vid": ["AWSPREVIOUS"]}, "finished",
                               finished_tags)))

    def rolled_back_tags(ctx, snap):
        tags = snap["tags"]
        assert tags["credops:key_id"] == "k-old" and "credops:rolled_back_at" in tags
        assert "credops:previous_key_id" not in tags and "credops:pending_key_id" not in tags
        assert field_of(snap["by_label"]["AWSCURRENT"]) == ctx["old"]

    cases.append(Case("aws_secretsmanager", "rollback-before-promote", a_phase("deployed"),
                      lambda ctx: dict(state="rollback"),
                      a_labels({"old_vid": ["AWSCURRENT"]}, "rolled_back", rolled_back_tags)))
    cases.append(Case("aws_secretsmanager", "rollback-after-promote", a_phase("verified", True),
                      lambda ctx: dict(state="rollback"),
                      a_labels({"old_vid": ["AWSCURRENT"]}, "rolled_back", rolled_back_tags)))
    cases.append(Case("aws_secretsmanager", "refuse-second-pending", a_phase("pending"),
                      lambda ctx: dict(state="pending", value=ctx["other"], key_id="k-other"),
                      a_labels({"old_vid": ["AWSCURRENT"], "new_vid": ["AWSPENDING"]}, "pending"),
                      changed=False, fails="a rotation is already in flight"))
    return cases


CASES = build_cases()


def store_for(case, ctx, openbao, moto):
    if case.kind == "vault_kv2":
        store = {"kind": "vault_kv2", "url": openbao.addr, "path": ctx["path"]}
        if "first" not in case.name:
            store["field"] = "api_key"
        return store
    store = {"kind": "aws_secretsmanager", "secret_id": ctx["path"], "region": moto.region,
             "endpoint_url": moto.endpoint_url}
    if "first" not in case.name:
        store["field"] = "api_key"
    return store


def snapshot(case, ctx):
    if case.kind == "vault_kv2":
        return vault_snapshot(ctx["client"], ctx["path"])
    return aws_snapshot(ctx["sm"], ctx["path"])


@pytest.fixture(scope="module")
def table(openbao, moto):
    """Set every case up, run all in check mode, then all for real twice; keep snapshots."""
    client = hvac.Client(url=openbao.addr, token=openbao.token)
    sm = moto.client("secretsmanager")
    env = dict(openbao.env())
    env.update(moto.env())
    ctxs = {}
    for case in CASES:
        ctx = {"client": client, "sm": sm, "path": "table/%s/%s" % (RUN, case.id),
               "old": planted("old"), "new": planted("new"), "other": planted("other")}
        case.setup(ctx)
        ctxs[case.id] = ctx
    hosts = dict((case.id, {"a": dict(case.step(ctxs[case.id]), credential=case.id,
                                      store=store_for(case, ctxs[case.id], openbao, moto))})
                 for case in CASES)
    before = dict((c.id, snapshot(c, ctxs[c.id])) for c in CASES)
    checked, check_proc = run_hosts(hosts, [step_task("check", check=True)], env, diff=True)
    after_check = dict((c.id, snapshot(c, ctxs[c.id])) for c in CASES)
    applied, apply_proc = run_hosts(hosts, [step_task("real"), step_task("again")], env, diff=True)
    after = dict((c.id, snapshot(c, ctxs[c.id])) for c in CASES)
    return dict(ctxs=ctxs, before=before, after_check=after_check, after=after,
                checked=dict((c.id, checked[c.id][0]) for c in CASES),
                first=dict((c.id, applied[c.id][0]) for c in CASES),
                again=dict((c.id, applied[c.id][1]) for c in CASES),
                procs=(check_proc, apply_proc))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_mode_changes_nothing(table, case):
    result = table["checked"][case.id]
    assert table["after_check"][case.id] == table["before"][case.id]
    if case.fails:
        assert result.get("failed") and case.fails in result["msg"], result
    else:
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is case.changed


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_step_then_rerun_is_idempotent(table, case):
    first, again = table["first"][case.id], table["again"][case.id]
    if case.fails:
        for result in (first, again):
            assert result.get("failed") and case.fails in result["msg"], result
            assert "credential '%s'" % case.id in result["msg"] and "Fix:" in result["msg"]
        assert table["after"][case.id] == table["before"][case.id]
    else:
        assert not first.get("failed"), first.get("msg")
        assert first["changed"] is case.changed
        assert not again.get("failed") and again["changed"] is False, again.get("msg")
        # the check run predicted what the real run did
        predicted = table["checked"][case.id]
        for key in ("phase", "key_id", "pending_key_id", "previous_key_id", "in_flight"):
            assert predicted[key] == first[key], key
    case.expect(table["ctxs"][case.id], table["after"][case.id])


def test_table_output_has_no_secret_and_diffs_show_placeholders(table):
    for proc in table["procs"]:
        assert_no_leak(proc)
    first = table["first"]["vault_kv2-pending-keeps-previous"]
    assert first["diff"]["before"]["current"] == "<secret>"
    assert first["diff"]["after"]["current"] == "<secret changed>"
    assert first["diff"]["after"]["previous"] == "<secret changed>"
    assert first["diff"]["after"]["phase"] == "pending"
    assert "<secret changed>" in table["procs"][1].stdout


# -- whole rotations, read back, at -vvv ---------------------------------------------------------

CYCLE_STEPS = [
    ("pending v1", dict(state="pending", value="{{ v1 }}", key_id="k1",
                        metadata={"consumers": ["web-app", "mobile-backend", "batch-processor"]})),
    ("deployed", dict(state="phase", phase="deployed")),
    ("verified", dict(state="phase", phase="verified")),
    ("promote", dict(state="promote")),
    ("promote again", dict(state="promote")),
    ("finished", dict(state="finished")),
    ("pending v2", dict(state="pending", value="{{ v2 }}", key_id="k2")),
    ("pending v3 refused", dict(state="pending", value="{{ v3 }}", key_id="k3")),
    ("read in flight", dict(state="read", return_values=True)),
    ("rollback", dict(state="rollback")),
    ("rollback again", dict(state="rollback")),
    ("read values", dict(state="read", return_values=True)),
    ("read values without no_log", dict(state="read", return_values=True)),
]


@pytest.fixture(scope="module")
def cycles(openbao, moto):
    """Whole rotations on both store kinds (one inventory host each), at -vvv with --diff."""
    client = hvac.Client(url=openbao.addr, token=openbao.token)
    sm = moto.client("secretsmanager")
    env = dict(openbao.env())
    env.update(moto.env())
    hosts = {}
    for kind in ("vault_kv2", "aws_secretsmanager"):
        path = "cycle/%s/%s" % (RUN, kind)
        if kind == "vault_kv2":
            store = {"kind": kind, "path": path, "field": "api_key"}   # url/token from VAULT_* env
        else:
            store = {"kind": kind, "secret_id": path}                  # region/endpoint from AWS_* env
        values = dict((n, planted(n)) for n in ("v1", "v2", "v3"))
        hosts[kind] = dict(values, path=path, store=store, credential="cycle-" + kind,
                           rotation_credentials={"cycle-" + kind: {"store": store}})
    tasks = []
    for name, args in CYCLE_STEPS:
        task = {"name": name, MODULE: dict(args, credential="{{ credential }}", store="{{ store }}")}
        if name in ("read values", "read in flight"):
            task["no_log"] = True
        tasks.append(task)
    tasks.append({"name": "lookup new", "no_log": True, "ansible.builtin.set_fact": {
        "got": "{{ lookup('credops.rotation.store', credential, store=store, what='new') }}"}})
    tasks.append({"name": "lookup metadata", "ansible.builtin.debug": {
        "msg": "{{ lookup('credops.rotation.store', credential, what='metadata') }}"}})
    results, proc = run_hosts(hosts, tasks, env, verbosity=3, diff=True)
    names = [t["name"] for t in tasks]
    out = {}
    for kind, hostvars in hosts.items():
        path = hostvars["path"]
        snap = vault_snapshot(client, path) if kind == "vault_kv2" else aws_snapshot(sm, path)
        out[kind] = dict(kind=kind, values=dict((n, hostvars[n]) for n in ("v1", "v2", "v3")),
                         proc=proc, snap=snap, results=dict(zip(names, results[kind])))
    return out


@pytest.fixture(params=["vault_kv2", "aws_secretsmanager"])
def cycle(request, cycles):
    return cycles[request.param]


def test_cycle_steps(cycle):
    r = cycle["results"]
    for name in ("pending v1", "deployed", "verified", "finished", "pending v2", "rollback"):
        assert not r[name].get("failed") and r[name]["changed"] is True, (name, r[name].get("msg"))
    assert r["promote"]["changed"] is (cycle["kind"] == "aws_secretsmanager")
    for name in ("promote again", "rollback again"):
        assert not r[name].get("failed") and r[name]["changed"] is False, name
    assert [r[n]["phase"] for n in ("pending v1", "deployed", "verified", "finished", "rollback")] == \
        ["pending", "deployed", "verified", "finished", "rolled_back"]
    assert r["finished"]["key_id"] == "k1" and r["finished"]["previous_key_id"] is None
    assert r["pending v2"]["pending_key_id"] == "k2"
    refused = r["pending v3 refused"]
    assert refused.get("failed") and "a rotation is already in flight" in refused["msg"]
    assert "k2" in refused["msg"] and "state=rollback" in refused["msg"]
    assert r["rollback"]["key_id"] == "k1" and r["rollback"]["metadata"]["consumers"] == \
        "web-app,mobile-backend,batch-processor"


def test_cycle_store_holds_the_contract_layout(cycle):
    snap, v = cycle["snap"], cycle["values"]
    if cycle["kind"] == "vault_kv2":
        # one KV version per write: pending, deployed, verified, finished, pending, rollback;
        # check runs, re-runs and the refused value wrote nothing
        assert sorted(snap["history"]) == [1, 2, 3, 4, 5, 6]
        phases = [snap["history"][n]["rotation_phase"] for n in range(1, 7)]
        assert phases == ["pending", "deployed", "verified", "finished", "pending", "rolled_back"]
        assert snap["history"][5]["previous_api_key"] == v["v1"] and snap["history"][5]["api_key"] == v["v2"]
        data = snap["data"]
        assert (data["api_key"], data["key_id"]) == (v["v1"], "k1")
        assert not [k for k in data if k.startswith("previous_")]
        assert snap["custom_metadata"]["rotation_phase"] == "rolled_back"
        assert snap["custom_metadata"]["consumers"] == "web-app,mobile-backend,batch-processor"
        assert snap["custom_metadata"]["last_rotated"] >= snap["history"][4]["rotated_at"]
        assert all(v["v3"] not in json.dumps(d) for d in snap["history"].values())
    else:
        assert list(snap["labels"].values()) == [["AWSCURRENT"]]
        assert snap["by_label"] == {"AWSCURRENT": v["v1"]}
        assert sorted(snap["values"].values()) == sorted([v["v1"], v["v2"]])   # v3 never written
        assert snap["tags"]["credops:rotation_phase"] == "rolled_back"
        assert snap["tags"]["credops:key_id"] == "k1"


def test_cycle_reads_values_only_under_no_log(cycle):
    r, v = cycle["results"], cycle["values"]
    read = r["read values"]
    assert (read["current"], read["pending"], read["previous"]) == (v["v1"], None, None)
    assert (read["new"], read["old"], read["old_key_id"]) == (v["v1"], None, None)
    refused = r["read values without no_log"]
    assert refused.get("failed") and "no_log" in refused["msg"] and "current" not in refused
    assert r["lookup new"]["ansible_facts"]["got"] == v["v1"]
    # while v2 was in flight, new / old meant the same for both kinds (KV v2: current and
    # previous; AWS: AWSPENDING and AWSCURRENT)
    flight = r["read in flight"]
    assert (flight["new"], flight["new_key_id"], flight["old"], flight["old_key_id"]) == \
        (v["v2"], "k2", v["v1"], "k1")
    if cycle["kind"] == "aws_secretsmanager":
        assert (flight["current"], flight["pending"], flight["previous"]) == (v["v1"], v["v2"], None)
    else:
        assert (flight["current"], flight["pending"], flight["previous"]) == (v["v2"], v["v2"], v["v1"])
    meta = r["lookup metadata"]["msg"]
    assert meta["phase"] == "rolled_back" and meta["key_id"] == "k1" and not meta["in_flight"]
    assert v["v1"] not in json.dumps(meta)


def test_cycle_output_at_vvv_has_no_secret(cycle):
    proc = cycle["proc"]
    assert_no_leak(proc)
    assert "<secret changed>" in proc.stdout          # --diff ran, with placeholders only
    assert "a rotation is already in flight" in proc.stdout


# -- errors a person can act on ------------------------------------------------------------------

def test_errors_name_the_credential_the_step_and_the_fix(openbao, moto, hvac_client):
    hvac_client.sys.create_or_update_policy(
        name="read-only-%s" % RUN,
        policy='path "secret/data/*" { capabilities = ["read"] }\n'
               'path "secret/metadata/*" { capabilities = ["read"] }\n')
    weak = hvac_client.auth.token.create(policies=["read-only-%s" % RUN], ttl="10m")["auth"]["client_token"]
    PLANTED.append(weak)
    value = planted("err")
    path = "errors/%s" % RUN
    hosts = {
        "unreachable": {"a": {
            "credential": "cred-unreachable", "state": "pending", "value": value,
            "store": {"kind": "vault_kv2", "url": "http://127.0.0.1:9", "path": path, "timeout": 5}}},
        "denied": {"a": {
            "credential": "cred-denied", "state": "pending", "value": value, "key_id": "k",
            "store": {"kind": "vault_kv2", "url": openbao.addr, "token": weak, "path": path}}},
        "aws_unreachable": {"a": {
            "credential": "cred-aws", "state": "read",
            "store": {"kind": "aws_secretsmanager", "secret_id": "x", "region": "us-east-1",
                      "endpoint_url": "http://127.0.0.1:9", "timeout": 2}}},
        "bad_store_block": {"a": {
            "credential": "cred-bad", "state": "read", "store": {"kind": "vault_kv2"}}},
    }
    env = dict(openbao.env())
    env.update(moto.env())
    results, proc = run_hosts(hosts, [step_task("step")], env, verbosity=3)
    unreachable, denied, aws, bad = [results[h][0] for h in
                                     ("unreachable", "denied", "aws_unreachable", "bad_store_block")]
    assert unreachable["failed"]
    assert unreachable["msg"].startswith("credential 'cred-unreachable', step store: vault_kv2 secret/%s" % path)
    assert "cannot reach the server at http://127.0.0.1:9" in unreachable["msg"]
    assert "VAULT_ADDR" in unreachable["msg"]
    assert denied["failed"] and "credential 'cred-denied', step store" in denied["msg"]
    assert "permission denied" in denied["msg"]
    assert 'path "secret/data/%s"' % path in denied["msg"] and "create" in denied["msg"]
    assert aws["failed"] and "credential 'cred-aws', step store" in aws["msg"]
    assert "cannot reach Secrets Manager" in aws["msg"] and "endpoint_url" in aws["msg"]
    assert bad["failed"] and "path" in bad["msg"]
    assert vault_snapshot(hvac_client, path) is None
    assert_no_leak(proc)


# -- two runs at once, and AppRole: the store classes directly (no playbook needed) ---------------

def test_kv2_check_and_set_stops_the_second_of_two_concurrent_runs(openbao, hvac_client):
    from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
    from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import get_store
    path = "race/%s" % RUN
    store = get_store({"kind": "vault_kv2", "url": openbao.addr, "token": openbao.token,
                       "path": path}, "race")
    seen = store.read()                          # both runs read: no secret yet
    mine, theirs = planted("mine"), planted("theirs")
    hvac_client.secrets.kv.v2.create_or_update_secret(   # the other run writes first
        path=path, mount_point="secret", cas=0,
        secret={"value": theirs, "key_id": "k-theirs", "rotation_phase": "pending"})
    with pytest.raises(RotationError) as err:
        store.write_pending(mine, "k-mine", state=seen)
    assert "check-and-set" in err.value.message and "re-run" in err.value.fix
    assert mine not in err.value.render() and theirs not in err.value.render()
    snap = vault_snapshot(hvac_client, path)
    assert snap["current_version"] == 1 and snap["data"]["value"] == theirs
    with pytest.raises(RotationError) as err:    # re-run: it sees the rotation in flight
        store.write_pending(mine, "k-mine")
    assert "a rotation is already in flight" in err.value.message


def test_aws_stops_when_labels_moved_under_it(moto, monkeypatch):
    for name, value in moto.env().items():   # credentials for the code under test, in-process
        monkeypatch.setenv(name, value)
    from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
    from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import get_store
    sm = moto.client("secretsmanager")
    secret_id = "race-%s" % RUN
    sm.create_secret(Name=secret_id, SecretString=planted("old"))
    store = get_store({"kind": "aws_secretsmanager", "secret_id": secret_id, "region": moto.region,
                       "endpoint_url": moto.endpoint_url}, "race")
    seen = store.read()
    sm.put_secret_value(SecretId=secret_id, SecretString=planted("theirs"), VersionStages=["AWSPENDING"])
    with pytest.raises(RotationError) as err:
        store.write_pending(planted("mine"), "k-mine", state=seen)
    assert "staging labels changed" in err.value.message


def test_vault_approle_login(openbao, hvac_client):
    from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import get_store
    mount = "approle-%s" % RUN
    hvac_client.sys.enable_auth_method("approle", path=mount)
    hvac_client.sys.create_or_update_policy(
        name="rotate-%s" % RUN,
        policy='path "secret/data/approle/*" { capabilities = ["create", "read", "update"] }\n'
               'path "secret/metadata/approle/*" { capabilities = ["read", "update"] }\n')
    hvac_client.auth.approle.create_or_update_approle("rotation", token_policies=["rotate-%s" % RUN],
                                                      mount_point=mount)
    role_id = hvac_client.auth.approle.read_role_id("rotation", mount_point=mount)["data"]["role_id"]
    secret_id = hvac_client.auth.approle.generate_secret_id("rotation", mount_point=mount)["data"]["secret_id"]
    path = "approle/%s" % RUN
    value = planted("approle")
    store = get_store({"kind": "vault_kv2", "url": openbao.addr, "auth_method": "approle",
                       "role_id": role_id, "approle_secret_id": secret_id, "approle_mount": mount,
                       "path": path}, "approle-cred")
    changed, after = store.write_pending(value, "k1", metadata={"consumers": "web-app"})
    assert changed and after["phase"] == "pending"
    snap = vault_snapshot(hvac_client, path)
    assert snap["data"]["value"] == value and snap["custom_metadata"]["consumers"] == "web-app"
