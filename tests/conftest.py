"""Session-scoped fixtures for each part of the lab, torn down even when tests fail.

Each fixture starts its real service only when a test asks for it, so `pytest tests/unit`
starts nothing.
"""
import os
import tempfile
from pathlib import Path

import pytest

from tests.lab.moto import Moto
from tests.lab.openbao import OpenBao
from tests.lab.postgres import Postgres
from tests.lab.provider import Provider


@pytest.fixture(scope="session")
def lab_dir():
    path = Path(tempfile.mkdtemp(prefix="credops-lab-"))
    yield path


def _serve(request, service):
    request.addfinalizer(service.stop)
    return service.start()


@pytest.fixture(scope="session")
def openbao(request, lab_dir):
    """A real OpenBao dev server: .addr, .token, .audit_log, .api(method, path, body)."""
    return _serve(request, OpenBao(lab_dir / "openbao"))


@pytest.fixture(scope="session")
def moto(request, lab_dir):
    """A moto server (IAM, Secrets Manager): .endpoint_url, .env(), .client(service)."""
    return _serve(request, Moto(lab_dir / "moto"))


@pytest.fixture(scope="session")
def postgres(request):
    """A real PostgreSQL on 127.0.0.1: .host, .port, .admin_user, .admin_password, .dsn(), .psql()."""
    return _serve(request, Postgres())


@pytest.fixture(scope="session")
def provider(request, lab_dir):
    """The demo key provider on 127.0.0.1: .url, .admin_token, .create_key(), .requests()."""
    return _serve(request, Provider(lab_dir / "provider"))


@pytest.fixture
def hvac_client(openbao):
    import hvac
    return hvac.Client(url=openbao.addr, token=openbao.token)


@pytest.fixture
def lab_env(openbao, moto):
    """Environment a playbook run needs to reach the store services of the lab."""
    env = dict(openbao.env())
    env.update(moto.env())
    return env


def pytest_collection_modifyitems(config, items):
    # The lab's own self-tests first, then the demo test (tests/integration/test_demo.py, which
    # starts `python -m tests.lab demo-more`, a lab of its own), then the molecule scenario
    # (tests/integration/test_molecule.py: `molecule test` starts a lab daemon of its own and
    # stops it): they boot and tear down their own systemd hosts, which must happen before the
    # session's shared lab (rotation_lab) holds the hosts' bridge until the session ends.
    own_hosts_first = ("tests/integration/test_lab_", "tests/integration/test_demo.py",
                       "tests/integration/test_molecule.py")
    items.sort(key=lambda item: next((i for i, prefix in enumerate(own_hosts_first)
                                      if item.nodeid.startswith(prefix)), len(own_hosts_first)))
    # Integration tests must not silently skip: there is no Docker-style opt-out here.
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="the lab needs root (network namespaces, PostgreSQL user)")
        for item in items:
            if "hosts" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="module")
def webhook_sender(rotation_lab, request):
    """The demo webhook sender on 127.0.0.1 and the lab gateway (to reach the receivers), one per
    test module."""
    from tests.lab.webhook_sender import WebhookSender
    module = request.module.__name__.rsplit(".", 1)[-1]
    snd = WebhookSender(rotation_lab.workdir / ("webhook-sender-" + module),
                        binds=["127.0.0.1", rotation_lab.systemd.gateway])
    snd.start()
    yield snd
    snd.stop()


@pytest.fixture(scope="session")
def rotation_lab(request):
    """The whole lab for end-to-end runs: stores, provider, 2 systemd hosts, Kubernetes emulator."""
    from tests.lab.lab import Lab
    lab = Lab(Path(tempfile.mkdtemp(prefix="credops-e2e-")), hosts=2, k8s=True)
    request.addfinalizer(lab.stop)
    return lab.start()
