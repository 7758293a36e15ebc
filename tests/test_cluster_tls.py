"""Cluster grading over TLS with mutual authentication (grader/certificates.py), real processes on loopback.

* The course's certificates: an expired one, or one signed by another CA, is named by the grader
  before it sends anything (no scheduler is even reached); an existing CA is never overwritten.
* Plain TCP beyond loopback is refused by the scheduler, the worker and the grader unless
  ``--insecure-tcp`` says so (refused before any connection is tried).
* A scheduler (`python -m grader.scheduler --certs`) and a worker (`python -m grader.worker --certs`)
  on TLS: a peer without a certificate, or with one of another CA, fails the handshake with the
  scheduler and with the worker reached directly, while the course's grader certificate passes;
  a Dask client without the certificates is refused; and the example class's exercise2 graded
  through TLS gets the scores local grading gives (tests/test_cluster_grading.py's EXPECTED).
"""
from __future__ import annotations

import datetime
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from grader import certificates
from tests.pipeline import copy_of_repository
from tests.test_cluster_grading import EXPECTED, PARTS, Cluster, _free_port, _grades

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("certs") / "course"
    certificates.make_certificates(folder)
    return folder


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("certs") / "other"
    certificates.make_certificates(folder)
    return folder


def _grade(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=1800)


def test_keys_are_private_and_an_existing_ca_is_kept(certs):
    assert (certs / "grader-key.pem").stat().st_mode & 0o777 == 0o600
    assert (certs / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    before = (certs / "ca.pem").read_bytes()
    with pytest.raises(certificates.CertificateError, match="lock out every machine"):
        certificates.make_certificates(certs)
    assert (certs / "ca.pem").read_bytes() == before
    for role in certificates.ROLES:
        certificates.check(certs, role)          # the control: these pass


def test_expired_and_foreign_certificates_are_named_before_anything_is_sent(tmp_path, certs, other_ca):
    expired = tmp_path / "expired"
    certificates.make_certificates(expired, days=30, not_before=datetime.datetime.now(datetime.timezone.utc)
                                   - datetime.timedelta(days=40))
    mixed = tmp_path / "mixed"
    shutil.copytree(certs, mixed)
    for name in ("grader.pem", "grader-key.pem"):
        shutil.copy(other_ca / name, mixed / name)
    with socket.socket() as listener:      # a port that would notice a connection, if one were tried
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        address = f"tls://127.0.0.1:{listener.getsockname()[1]}"
        for folder, words in ((expired, "expired on"), (mixed, "was not signed by the CA")):
            done = _grade("--scheduler", address, "--certs", str(folder), "--assignment", "exercise2")
            assert done.returncode == 4, done.stdout + done.stderr
            assert words in done.stderr and "Nothing was graded or written" in done.stderr, done.stderr
        with pytest.raises(socket.timeout):
            listener.accept()
        no_certs = _grade("--scheduler", address, "--assignment", "exercise2")
        assert no_certs.returncode == 4 and "give --certs DIR" in no_certs.stderr, no_certs.stderr


def test_plain_tcp_beyond_loopback_is_refused_unless_asked_for(tmp_path):
    # A name under .invalid never resolves, and the refusal comes before any look-up or connection.
    graded = _grade("--scheduler", "tcp://head.invalid:8786", "--assignment", "exercise2")
    assert graded.returncode == 4 and "plain TCP to tcp://head.invalid:8786" in graded.stderr, graded.stderr
    worker = subprocess.run([sys.executable, "-m", "grader.worker", "tcp://head.invalid:8786"],
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 2 and "plain TCP to tcp://head.invalid:8786" in worker.stderr, worker.stderr
    scheduler = subprocess.run([sys.executable, "-m", "grader.scheduler", "--port", "0"],
                               capture_output=True, text=True, timeout=120)
    assert scheduler.returncode == 2 and "plain TCP on 0.0.0.0" in scheduler.stderr, scheduler.stderr


class TLSCluster(Cluster):
    def __init__(self, folder: Path, certs: Path):
        self.folder, self.certs = folder, certs
        port = _free_port()
        self.address = f"tls://127.0.0.1:{port}"
        self.processes = []
        self.scheduler = self._start("scheduler", [sys.executable, "-m", "grader.scheduler", "--host", "127.0.0.1",
                                                   "--port", str(port), "--no-dashboard", "--certs", str(certs)])

    def add_worker(self, name: str, *extra: str, env=None, plain=False):
        return self._start(name, [sys.executable, "-m", "grader.worker", self.address, "--nworkers", "1",
                                  "--kernel-threads", "1", "--name", name, "--certs", str(self.certs), *extra], env)

    def client(self, workers: int):
        from distributed import Client

        client = Client(self.address, timeout="30s", set_as_default=False,
                        security=certificates.client_security(self.certs))
        client.wait_for_workers(workers, timeout=120)
        return client


def _handshake(address: str, folder: Path | None) -> str:
    """'ok' when a TLS session with ``address`` comes up presenting ``folder``'s grader certificate
    (None: none), else the error; the server's own certificate is checked against the course CA."""
    host, port = address.split("://", 1)[1].rsplit(":", 1)
    context = ssl.create_default_context(cafile=None)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if folder is not None:
        context.load_cert_chain(folder / "grader.pem", folder / "grader-key.pem")
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with context.wrap_socket(raw) as tls:
                tls.settimeout(3)
                # TLS 1.3 reports a refused client certificate on the first read, not in the handshake.
                try:
                    tls.recv(1)
                except socket.timeout:
                    pass
                return "ok"
    except (ssl.SSLError, OSError) as error:
        return f"{type(error).__name__}: {error}"


def test_tls_cluster_refuses_strangers_and_grades_as_local(tmp_path, certs, other_ca):
    cluster = TLSCluster(tmp_path, certs)
    try:
        cluster.add_worker("w1")
        client = cluster.client(1)
        worker_address = next(iter(client.scheduler_info()["workers"]))
        client.close()
        assert worker_address.startswith("tls://127.0.0.1:")
        for address in (cluster.address, worker_address):
            assert _handshake(address, certs) == "ok"
            for stranger in (None, other_ca):
                refused = _handshake(address, stranger)
                assert refused != "ok", f"{address} accepted a peer with {stranger or 'no'} certificate"

        from distributed import Client

        with pytest.raises(Exception):
            Client(cluster.address, timeout="5s", set_as_default=False)      # no certificate: no client

        root = copy_of_repository(tmp_path / "course", *PARTS)
        graded = _grade("--course-root", str(root), "--scheduler", cluster.address, "--certs", str(certs),
                        "--assignment", "exercise2", "--no-feedback")
        assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
        assert f"grading on {cluster.address}" in graded.stdout
        scores = {key: float(row["score"]) for key, row in _grades(root).items()}
        assert scores == {key: value for key, value in EXPECTED.items() if key[1] == "exercise2"}
    finally:
        cluster.close()
