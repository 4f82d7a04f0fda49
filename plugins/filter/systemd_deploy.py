# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy role's batch for the systemd consumers of one host: what the systemd_consumer module
writes (systemd_entries), and what it did per consumer (systemd_outcome, systemd_results).
Documented in the .yml files of the same names beside this file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _consumer(credentials, item):
    return ((credentials.get(item["credential"]) or {}).get("consumers") or [])[item["index"]]


def _batched(credentials, item):
    return item.get("kind") == "systemd" and "cert_file" not in _consumer(credentials, item)


def _step(kind, consumer):
    if kind == "restart":
        return "Deploy | restart %s" % consumer.get("service", "")
    if kind == "wait":
        return "Deploy | wait for the service to be active (%s)" % consumer.get("service", "")
    return "Deploy | write the value in the environment file (%s in %s)" % (
        consumer.get("env_var", ""), consumer.get("env_file", ""))


def systemd_entries(work, credentials, values, which="new", states=None, force=False):
    """The environment-file consumers among ``work`` (this host's items) and the module's entries
    for them: {"items": [...], "entries": [...], "refused": {"credential consumer": error}}."""
    out = {"items": [], "entries": [], "refused": {}}
    for item in work or []:
        if not _batched(credentials, item):
            continue
        consumer = _consumer(credentials, item)
        name = item["credential"]
        held = (values or {}).get(name) or {}
        out["items"].append(item)
        restart = bool(force) or (which == "new" and ((states or {}).get(name) or {}).get("phase") == "pending")
        base = {"path": consumer["env_file"], "service": consumer["service"], "restart": restart,
                "credential": name, "consumer": item["consumer"]}
        value, key_id = held.get(which), held.get(which + "_id")
        if value is None:
            out["refused"]["%s %s" % (name, item["consumer"])] = (
                "the store holds no %s value of %s, so %s cannot be written" % (which, name, consumer["env_var"]))
            continue
        if consumer.get("id_env_var") and not key_id:
            out["refused"]["%s %s" % (name, item["consumer"])] = (
                "the store holds no key id for the %s value of %s, so %s cannot be written"
                % (which, name, consumer["id_env_var"]))
            continue
        out["entries"].append(dict(base, name=consumer["env_var"], value=value))
        if consumer.get("id_env_var"):
            out["entries"].append(dict(base, name=consumer["id_env_var"], value=key_id))
    return out


def systemd_outcome(env, result, credentials):
    """Per batched item, what the systemd_consumer module did (``result``, its registered result or
    the failure rescued): a list of the items with failed, changed, restarted, service, step, error."""
    result = result or {}
    reported = result.get("entries")
    outcome = []
    for item in env.get("items", []):
        consumer = _consumer(credentials, item)
        key = "%s %s" % (item["credential"], item["consumer"])
        row = dict(item, service=consumer.get("service"), failed=False, changed=False, restarted=False,
                   step="", error="")
        if key in env.get("refused", {}):
            row.update(failed=True, changed=False, step=_step("write", consumer), error=env["refused"][key])
        elif not reported:
            # the module did not run to its end (no per-entry report): every entry counts as failed
            row.update(failed=True, changed=True, step=_step("write", consumer),
                       error=result.get("msg") or "failed")
        else:
            mine = [e for e in reported if e.get("credential") == item["credential"]
                    and e.get("consumer") == item["consumer"]]
            failed = [e for e in mine if e.get("failed")]
            row.update(changed=any(e.get("changed") for e in mine), restarted=any(e.get("restarted") for e in mine))
            if failed or not mine:
                row.update(failed=True, changed=True, step=_step(failed[0].get("step") if failed else "write", consumer),
                           error=failed[0].get("msg") if failed else "no result for this entry")
        outcome.append(row)
    return outcome


def systemd_results(outcome, verified=None, which="new"):
    """What to record of the batch, from the outcome and the verify loop's registered result (items
    matched by ``deploy_item``): {"results": deploy_results entries ({credential: [{consumer, kind,
    failed, changed, verified, step, error}]}), "verified": [{credential, consumer, attempts}],
    "failed": [{credential, consumer, step, error}]}."""
    checks = {}
    for res in (verified or {}).get("results", []):
        item = res.get("deploy_item") or {}
        if not res.get("skipped"):
            checks[(item.get("credential"), item.get("consumer"))] = res
    out = {"results": {}, "verified": [], "failed": []}
    for row in outcome:
        record = {"consumer": row["consumer"], "kind": row.get("kind"), "failed": row["failed"],
                  "changed": row["changed"]}
        check = checks.get((row["credential"], row["consumer"]))
        if row["failed"]:
            record.update(step=row["step"], error=row["error"])
        elif check is not None and check.get("failed"):
            record.update(failed=True, changed=True, step="Verify | the consumer works with the value (%s, %s)"
                          % (row["consumer"], which), error=check.get("msg") or "failed")
        else:
            record["verified"] = check is not None
            if check is not None:
                out["verified"].append({"credential": row["credential"], "consumer": row["consumer"],
                                        "attempts": check.get("attempts", 0)})
        if record["failed"]:
            out["failed"].append({"credential": row["credential"], "consumer": row["consumer"],
                                  "step": record["step"], "error": record["error"]})
        out["results"].setdefault(row["credential"], []).append(record)
    return out


def deploy_audit_entry(row, event, host, values=None, which="new"):
    """An entry for audit_event's ``entries`` from a row of the outcome or the results: the
    consumer at ``host``, the key id of the ``which`` value, and the row's facts as details."""
    entry = {"credential": row["credential"], "event": event, "consumer": "%s@%s" % (row["consumer"], host)}
    key_id = (((values or {}).get(row["credential"]) or {}).get(which + "_id"))
    if key_id:
        entry["key_id"] = key_id
    if event == "deployed":
        entry["details"] = {"which": which, "restarted": bool(row.get("restarted")), "service": row.get("service")}
    elif event == "failed":
        entry["details"] = {"step": row.get("step"), "error": row.get("error")}
    else:
        entry["details"] = {"step": "verify", "attempts": row.get("attempts", 0)}
    return entry


class FilterModule(object):
    def filters(self):
        return {"systemd_entries": systemd_entries, "systemd_outcome": systemd_outcome,
                "systemd_results": systemd_results, "deploy_audit_entry": deploy_audit_entry}
