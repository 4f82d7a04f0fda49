# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd consumer kind's declarations: a service on inventory hosts that reads the value from
an environment file (or, serving TLS, from files) and is restarted to pick it up. The deploy role
does the work (roles/deploy/tasks/systemd.yml); this file says what preflight, the schema, the
dependency map and discovery need to know, and how discovery's grep output of a host is read."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.credops.rotation.plugins.module_utils._consumers._base import ENV_VAR, VERIFY, Consumer

_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")

#: the files a TLS consumer gets (docs/runbooks/certificates.md)
TLS_FILE_FIELDS = ("cert_file", "key_file", "ca_file")


def unit_name(unit_path):
    """The unit a unit file or drop-in belongs to: /etc/systemd/system/x.service.d/a.conf -> x.service."""
    parts = unit_path.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2].endswith(".d") and parts[-1].endswith(".conf"):
        return parts[-2][:-2]
    return parts[-1]


def _grep_lines(text):
    """(file, match) pairs from ``grep -H -o`` output (file:match per line)."""
    pairs = []
    for line in (text or "").splitlines():
        if ":" not in line:
            continue
        path, _sep, match = line.partition(":")
        pairs.append((path, match.strip()))
    return pairs


def _environment_file_targets(match):
    """The paths of one ``EnvironmentFile=`` line (``-`` prefix and quotes dropped)."""
    value = match.split("=", 1)[1] if "=" in match else ""
    paths = []
    for part in value.split():
        path = part.strip("\"'").lstrip("-")
        if path.startswith("/"):
            paths.append(path)
    return paths


def unit_environment_files(unit_env_files):
    """The environment files the units load (from ``grep -H -o 'EnvironmentFile=.*'`` output),
    without those named with unit specifiers (``%i``), which only systemd can expand."""
    paths = []
    for _unit_file, match in _grep_lines(unit_env_files):
        for path in _environment_file_targets(match):
            if "%" not in path and path not in paths:
                paths.append(path)
    return sorted(paths)


def systemd_references(env_matches, unit_env_files, unit_env_matches=""):
    """What a systemd host's files say about the credential variables, as found by grep.

    ``env_matches``: ``grep -H -o -P`` output of variable NAMES set in environment files
    (``FILE:NAME`` per line; the patterns stop before ``=`` so no value is ever printed);
    ``unit_env_files``: ``FILE:EnvironmentFile=-/path`` lines from the unit files;
    ``unit_env_matches``: ``UNITFILE:NAME`` lines for units that set a variable with
    ``Environment=``. Returns a sorted list of dicts ``{env_var, file, units}``.
    """
    loaders = {}
    for unit_file, match in _grep_lines(unit_env_files):
        for path in _environment_file_targets(match):
            loaders.setdefault(path, set()).add(unit_name(unit_file))
    found = {}
    for path, name in _grep_lines(env_matches):
        if ENV_VAR.match(name):
            found.setdefault((name, path), set()).update(loaders.get(path, ()))
    for unit_file, name in _grep_lines(unit_env_matches):
        if ENV_VAR.match(name):
            found.setdefault((name, unit_file), set()).add(unit_name(unit_file))
    return [{"env_var": name, "file": path, "units": sorted(units)}
            for (name, path), units in sorted(found.items())]


def _str():
    return dict(type="str")


def _env_claims(consumer, inventory, name):
    """(host, env_file, name) for each host of the consumer."""
    hosts = inventory.expand(consumer.get("hosts")) if isinstance(consumer.get("hosts"), (str, list)) else []
    return [(host, consumer["env_file"], name) for host in hosts]


class SystemdConsumer(Consumer):
    kind = "systemd"
    FIELDS = dict(
        name=_str(), kind=_str(), hosts=dict(type="raw"),  # a host or group, or a list of them
        env_file=dict(type="path"), env_var=_str(), service=_str(),
        verify=dict(type="dict", options=VERIFY),
        # webhook_rotate.yml (docs/runbooks/webhook.md): the receiver's delivery log
        deliveries=dict(type="dict", options=dict(url=_str(), list_path=_str(), matched_path=_str())),
        # database and AWS rotation (docs/runbooks/aws.md, docs/runbooks/database.md): the variable
        # that gets the key id, written beside env_var
        id_env_var=_str(),
        # certificates (docs/runbooks/certificates.md): a consumer that serves TLS gets the
        # certificate and its chain, the private key (mode 0600), optionally the CA chain, and may
        # reload instead of restart
        cert_file=dict(type="path"), key_file=dict(type="path"), ca_file=dict(type="path"),
        reload=dict(type="bool"),
    )
    REQUIRED = ("name", "kind", "hosts", "service")
    REQUIRED_ONE_OF = (("env_file", "env_var"), ("cert_file",))  # a TLS consumer gets files
    BLOCKS = {"verify": "verify", "deliveries": "deliveries"}
    MAP_FIELDS = ("env_file", "env_var", "service")
    SCANNED = True

    @classmethod
    def preflight(cls, report, path, consumer, inventory, claims, check):
        check.host_ref(report, path + ".hosts", consumer.get("hosts"), inventory)
        # a TLS consumer (cert_file) gets files, not an env var: see preflight_with_type
        check.env_file(report, path + ".env_file", consumer.get("env_file"), "cert_file" not in consumer)
        check.env_var(report, path + ".env_var", consumer.get("env_var"), "cert_file" not in consumer)
        service = consumer.get("service")
        if check.required_str(report, path + ".service", service,
                              "name the systemd unit restarted to pick up the value, e.g. `service: application.service`"):
            if not _UNIT.match(service):
                report.error(path + ".service", "%s is not a systemd unit name" % check.show(service),
                             "write the unit's name, e.g. application.service")
        if check.is_str(consumer.get("env_file")) and check.is_str(consumer.get("env_var")):
            for key in _env_claims(consumer, inventory, consumer["env_var"]):
                claims.setdefault(key, []).append(path)

    @classmethod
    def claim_webhook_vars(cls, path, consumer, inventory, claims, suffixes, check):
        if not (check.is_str(consumer.get("env_file")) and check.is_str(consumer.get("env_var"))):
            return
        for key in _env_claims(consumer, inventory, consumer["env_var"]):
            for suffix in suffixes:
                claims.setdefault(key[:2] + (key[2] + suffix,), []).append(path)

    @classmethod
    def preflight_with_type(cls, report, path, consumer, ctype, check):
        tls = [f for f in TLS_FILE_FIELDS if f in consumer]
        if ctype == "certificate" and "cert_file" not in consumer:
            report.warn(path + ".cert_file", "not set: the private key goes into env_var as one line and "
                        "no certificate is deployed; name the files the service reads (cert_file, key_file)")
            return
        if not tls and "reload" not in consumer:
            return
        show = check.show
        if ctype != "certificate":
            report.error(path + "." + (tls[0] if tls else "reload"),
                         "only a certificate credential is deployed as TLS files (this one is %s)" % show(ctype),
                         "drop cert_file/key_file/ca_file/reload, or set `type: certificate`")
            return
        if "key_file" not in consumer:
            report.error(path + ".key_file", "missing (needed with cert_file)",
                         "name the file that gets the private key, e.g. `key_file: /etc/app/tls.key`")
        seen = {}
        for field in tls:
            value = consumer.get(field)
            if not isinstance(value, str) or not value.startswith("/") or "\n" in value or value.endswith("/"):
                report.error("%s.%s" % (path, field), "%s is not an absolute file path" % show(value),
                             "write the full path of the file, e.g. /etc/app/tls.crt")
            elif value in seen:
                report.error("%s.%s" % (path, field), "%s is also the %s" % (show(value), seen[value]),
                             "give the certificate, the key and the CA chain a file each")
            else:
                seen[value] = field
        if "reload" in consumer and not isinstance(consumer.get("reload"), bool):
            report.error(path + ".reload", "%s is not true or false" % show(consumer.get("reload")),
                         "write `reload: true` to reload the service instead of restarting it")

    @classmethod
    def preflight_with_issuer(cls, report, path, consumer, issuer, issuer_cls, inventory, claims, check):
        if "id_env_var" not in consumer:
            return
        value = consumer.get("id_env_var")
        if not check.is_str(value) or not check.ENV_VAR.match(value):
            report.error(path + ".id_env_var", "%s is not a valid environment variable name" % check.show(value),
                         "name the variable that gets the key id, e.g. `id_env_var: AWS_ACCESS_KEY_ID` "
                         "(letters, digits and underscores, not starting with a digit)")
            return
        if value == consumer.get("env_var"):
            report.error(path + ".id_env_var", "%s is env_var too" % check.show(value),
                         "give the key id its own variable, e.g. AWS_ACCESS_KEY_ID beside AWS_SECRET_ACCESS_KEY")
            return
        why = issuer_cls.key_ids_unfit(issuer) if issuer and issuer_cls is not None else None
        if why:
            report.error(path + ".id_env_var", why, "remove id_env_var, or use an issuer whose values have ids")
        if check.is_str(consumer.get("env_file")):
            for key in _env_claims(consumer, inventory, value):
                claims.setdefault(key, []).append(path)

    @classmethod
    def listed(cls, credential, consumer, inventory):
        return [{"credential": credential, "consumer": consumer.get("name"), "host": host,
                 "env_var": consumer.get("env_var"), "env_file": consumer.get("env_file"),
                 "service": consumer.get("service")}
                for host in inventory.expand(consumer.get("hosts"))]

    @classmethod
    def drift(cls, listed, found, by_var, drift, not_scanned):
        listed_keys = dict(((c["host"], c["env_var"], c["env_file"]), c) for c in listed)
        for host in sorted(found):
            for ref in found[host] or []:
                key = (host, ref.get("env_var"), ref.get("file"))
                if key not in listed_keys:
                    drift["unlisted"].append({
                        "kind": cls.kind, "host": host, "env_var": ref.get("env_var"), "file": ref.get("file"),
                        "units": ref.get("units") or [], "credentials": by_var.get(ref.get("env_var"), []),
                        "message": "host %s: %s sets %s (units: %s) but no consumer of %s lists it" % (
                            host, ref.get("file"), ref.get("env_var"),
                            ", ".join(ref.get("units") or []) or "none found",
                            " or ".join(by_var.get(ref.get("env_var"), [])) or "any credential")})
        for item in listed:
            host = item["host"]
            if host not in found:
                not_scanned.add((cls.kind, host))
                continue
            refs = [r for r in found[host] or []
                    if r.get("env_var") == item["env_var"] and r.get("file") == item["env_file"]]
            base = {"kind": cls.kind, "credential": item["credential"], "consumer": item["consumer"], "host": host,
                    "env_var": item["env_var"], "file": item["env_file"], "service": item["service"]}
            if not refs:
                base["message"] = "%s.%s on %s: %s does not set %s (file gone, or the consumer moved)" % (
                    item["credential"], item["consumer"], host, item["env_file"], item["env_var"])
                drift["missing"].append(base)
            elif item["service"] and item["service"] not in (refs[0].get("units") or []):
                base["units"] = refs[0].get("units") or []
                base["message"] = "%s.%s on %s: service %s does not load %s (EnvironmentFile= of: %s)" % (
                    item["credential"], item["consumer"], host, item["service"], item["env_file"],
                    ", ".join(base["units"]) or "no unit")
                drift["mismatched"].append(base)
