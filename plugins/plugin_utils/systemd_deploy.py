# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the deploy of one host's systemd EnvironmentFile consumers did, per consumer, and what is
recorded of it: the rows of the outcome, the host's ``deploy_results`` entries and the audit
entries. The systemd_consumer action plugin records its own run with these; the filters of
plugins/filter/systemd_deploy.py are the same functions for the deploy role's registered results.

A *consumer* here is one (credential, consumer) pair of the batch with what names it on the host:
{credential, consumer, service, env_var, env_file, refused}. Nothing here sees a value."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def step(kind, consumer):
    """The deploy step a consumer failed at, as the role names it ("Deploy | ...")."""
    if kind == "restart":
        return "Deploy | restart %s" % consumer.get("service", "")
    if kind == "wait":
        return "Deploy | wait for the service to be active (%s)" % consumer.get("service", "")
    return "Deploy | write the value in the environment file (%s in %s)" % (
        consumer.get("env_var", ""), consumer.get("env_file", ""))


def verify_step(consumer, which):
    return "Verify | the consumer works with the value (%s, %s)" % (consumer, which)


def outcome(consumers, result):
    """Per consumer, what the systemd_consumer module did (``result``: its result, or the failure):
    the consumer with failed, changed, restarted, step and error. A consumer fails when it was
    refused, when one of its lines could not be written, or when its service could not be restarted
    or did not become active; when the module did not report per entry (it did not run to its
    end), every consumer failed with its message."""
    result = result or {}
    reported = result.get("entries")
    rows = []
    for consumer in consumers:
        row = dict(consumer, failed=False, changed=False, restarted=False, step="", error="")
        if consumer.get("refused"):
            row.update(failed=True, changed=False, step=step("write", consumer), error=consumer["refused"])
        elif not reported:
            row.update(failed=True, changed=True, step=step("write", consumer), error=result.get("msg") or "failed")
        else:
            mine = [e for e in reported if e.get("credential") == consumer["credential"]
                    and e.get("consumer") == consumer["consumer"]]
            failed = [e for e in mine if e.get("failed")]
            row.update(changed=any(e.get("changed") for e in mine), restarted=any(e.get("restarted") for e in mine))
            if failed or not mine:
                row.update(failed=True, changed=True, step=step(failed[0].get("step") if failed else "write", consumer),
                           error=failed[0].get("msg") if failed else "no result for this entry")
        rows.append(row)
    return rows


def record(rows, checks=None, which="new"):
    """What to record of the batch, from the outcome and the verifications (``checks``:
    {(credential, consumer): {failed, msg, attempts}}, for the consumers checked):
    {"results": deploy_results entries ({credential: [{consumer, kind, failed, changed, verified,
    step, error}]}), "verified": [{credential, consumer, attempts}], "failed": [{credential,
    consumer, step, error}]}."""
    checks = checks or {}
    out = {"results": {}, "verified": [], "failed": []}
    for row in rows:
        entry = {"consumer": row["consumer"], "kind": row.get("kind"), "failed": row["failed"],
                 "changed": row["changed"]}
        check = checks.get((row["credential"], row["consumer"]))
        if row["failed"]:
            entry.update(step=row["step"], error=row["error"])
        elif check is not None and check.get("failed"):
            entry.update(failed=True, changed=True, step=verify_step(row["consumer"], which),
                         error=check.get("msg") or "failed")
        else:
            entry["verified"] = check is not None
            if check is not None:
                out["verified"].append({"credential": row["credential"], "consumer": row["consumer"],
                                        "attempts": check.get("attempts", 0)})
        if entry["failed"]:
            out["failed"].append({"credential": row["credential"], "consumer": row["consumer"],
                                  "step": entry["step"], "error": entry["error"]})
        out["results"].setdefault(row["credential"], []).append(entry)
    return out


def audit_entry(row, event, host, key_id=None, which="new"):
    """An audit entry (audit_event's ``entries`` form) for a row of the outcome or the record: the
    consumer at ``host``, the key id of the value deployed (never the value), the row's facts as
    details (deployed: which value, restarted, service; failed: step, error; else the attempts)."""
    entry = {"credential": row["credential"], "event": event, "consumer": "%s@%s" % (row["consumer"], host)}
    if key_id:
        entry["key_id"] = key_id
    if event == "deployed":
        entry["details"] = {"which": which, "restarted": bool(row.get("restarted")), "service": row.get("service")}
    elif event == "failed":
        entry["details"] = {"step": row.get("step"), "error": row.get("error")}
    else:
        entry["details"] = {"step": "verify", "attempts": row.get("attempts", 0)}
    return entry
