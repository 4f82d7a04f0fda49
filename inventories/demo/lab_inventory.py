#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local lab's hosts and addresses, read from the running lab (an Ansible inventory script).

`python -m tests.lab up --dir .lab/daemon` starts the lab and writes .lab/daemon/lab.json;
its ports and the hosts' addresses change from one start to the next, so this script turns
lab.json into the inventory on every ansible run. CREDLAB_DIR names another lab directory.

Prints no secret: the lab's tokens stay in lab.json (mode 0600), which group_vars/all reads
when a task needs them (`lab_env`).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "..", "..", ".lab", "daemon")
GROUP = "web"           # the hosts' group; the lab names its hosts web1, web2, ...
CLUSTER = "lab-cluster"  # the Kubernetes API emulator (`up --k8s`), a cluster entry on the controller
SSH_ARGS = ("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            "-o ConnectTimeout=5 -o IdentitiesOnly=yes")


def inventory(lab_dir):
    path = os.path.join(lab_dir, "lab.json")
    try:
        with open(path) as handle:
            info = json.load(handle)
    except (OSError, ValueError) as exc:
        raise SystemExit("no lab in %s (%s): start one with python -m tests.lab up --dir %s"
                         % (lab_dir, exc, lab_dir))
    if not info.get("ready"):
        raise SystemExit("the lab in %s is not ready (status: %s); see %s"
                         % (lab_dir, info.get("status"), info.get("log")))
    controller = {"ansible_connection": "local",
                  "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    hostvars = {"localhost": dict(controller)}
    for host in info.get("hosts") or []:
        hostvars[host["name"]] = {
            "ansible_host": host["address"],
            "ansible_user": "root",
            "ansible_ssh_private_key_file": info["ssh_key"],
            "ansible_ssh_common_args": SSH_ARGS,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
    children = [GROUP]
    inv = {"_meta": {"hostvars": hostvars},
           GROUP: {"hosts": [h["name"] for h in info.get("hosts") or []]}}
    if info.get("k8s"):
        hostvars[CLUSTER] = dict(controller, kubeconfig=info["k8s"]["kubeconfig"])
        inv["clusters"] = {"hosts": [CLUSTER]}
        children.append("clusters")
    inv["all"] = {
        "hosts": ["localhost"],
        "children": children,
        "vars": {
            "lab_dir": os.path.abspath(lab_dir),
            "lab_json": os.path.abspath(path),
            "vault_addr": info["openbao"]["addr"],
            "lab_provider_url": info["provider"]["url"],
            "lab_aws_endpoint_url": info["moto"]["endpoint_url"],
            "rotation_audit_log": info.get("audit_log") or os.path.join(os.path.abspath(lab_dir),
                                                                        "rotation-audit.jsonl"),
            "rotation_incident_dir": os.path.join(os.path.abspath(lab_dir), "incidents"),
        },
    }
    return inv


def main(argv):
    lab_dir = os.environ.get("CREDLAB_DIR") or DEFAULT_DIR
    if len(argv) > 1 and argv[1] == "--host":
        print("{}")     # every host's variables are in _meta
        return 0
    print(json.dumps(inventory(lab_dir), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
