"""TLS for grading on a cluster: the course's own certificate authority and its certificates.

    .venv/bin/python -m grader.certificates certs/              # a CA, and one certificate per role
    .venv/bin/python -m grader.certificates certs/ --days 120

Whoever reaches a Dask scheduler can run code on its workers, so a cluster that is not on one
machine talks TLS with mutual authentication (Dask's ``tls://`` addresses): the scheduler, each
worker and the grader (``python -m grader --scheduler``) each show a certificate signed by the
course's CA, and each refuses a peer that does not. The folder gets

    ca.pem                         the CA's certificate: every machine of the cluster needs it
    ca-key.pem                     the CA's key: keep it off the cluster (it makes certificates)
    scheduler.pem, scheduler-key.pem   for ``python -m grader.scheduler --certs``
    worker.pem, worker-key.pem         for ``python -m grader.worker --certs`` on each grading machine
    grader.pem, grader-key.pem         for ``python -m grader --scheduler tls://... --certs``

Keys are written readable by their owner only. An existing CA is never overwritten (that would
lock every machine out); ``--force`` starts a new one. ``check`` is what each side runs before
it connects: files present, the certificate within its dates and signed by the CA, so an
expired certificate or one from another CA is named before any submission is sent.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from pathlib import Path

ROLES = ("scheduler", "worker", "grader")
CA = "ca"
DEFAULT_DAYS = 365


class CertificateError(RuntimeError):
    """A certificate is missing, out of its dates or not the course CA's; the message says which and what to do."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _certificate(subject: str, key, issuer_name, issuer_key, days: int, is_ca: bool,
                 not_before: datetime.datetime | None = None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = not_before or _now() - datetime.timedelta(minutes=5)      # clocks of the machines differ a little
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llm-generation-perf course"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), critical=True))
    if is_ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    else:
        # Every role both listens and connects (the scheduler calls workers back), and Dask checks no
        # host name: the CA is what is trusted, not a name.
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(subject), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def make_certificates(folder: Path, days: int = DEFAULT_DAYS, force: bool = False,
                      roles=ROLES, not_before: datetime.datetime | None = None) -> dict[str, Path]:
    """A new CA (refused where one exists, unless ``force``) and a certificate for each role.

    ``not_before``: the start of every certificate's validity (tests make expired ones with it).
    """
    if days < 1:
        raise ValueError(f"--days {days}: a certificate must be valid for at least 1 day")
    folder = Path(folder)
    if (folder / f"{CA}.pem").exists() and not force:
        raise CertificateError(f"{folder / (CA + '.pem')} exists: a new CA would lock out every machine that has "
                               "the old one. Use that folder's certificates, another folder, or --force")
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_cert = _certificate("course grading CA", ca_key, None, None, days, True, not_before)
    paths = {CA: folder / f"{CA}.pem"}
    _write_key(folder / f"{CA}-key.pem", ca_key)
    for role in roles:
        key = _new_key()
        _write_key(folder / f"{role}-key.pem", key)
        _write_cert(folder / f"{role}.pem", _certificate(f"course {role}", key, ca_cert.subject, ca_key, days,
                                                         False, not_before))
        paths[role] = folder / f"{role}.pem"
    _write_cert(paths[CA], ca_cert)       # last: a folder with ca.pem is complete
    return paths


def check(folder: Path, role: str) -> tuple[Path, Path, Path]:
    """``(ca.pem, <role>.pem, <role>-key.pem)`` once they are usable together, else ``CertificateError``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if role not in ROLES:
        raise ValueError(f"role {role!r}: accepted are {', '.join(ROLES)}")
    folder = Path(folder)
    ca_path, cert_path, key_path = folder / f"{CA}.pem", folder / f"{role}.pem", folder / f"{role}-key.pem"
    missing = [p.name for p in (ca_path, cert_path, key_path) if not p.is_file()]
    if missing:
        raise CertificateError(f"{folder} lacks {', '.join(missing)}: make the course's certificates with "
                               f"`.venv/bin/python -m grader.certificates {folder}` and copy ca.pem, {role}.pem "
                               f"and {role}-key.pem to this machine")
    try:
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise CertificateError(f"{folder}: cannot read the {role} certificate or key ({error})") from None
    now = _now()
    for label, certificate, path in (("the CA", ca, ca_path), (f"the {role}'s", cert, cert_path)):
        if now > certificate.not_valid_after_utc:
            raise CertificateError(f"{path} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: "
                                   f"{label} certificate is no longer accepted; make new certificates "
                                   f"(`.venv/bin/python -m grader.certificates DIR --force`) and copy them out")
        if now < certificate.not_valid_before_utc:
            raise CertificateError(f"{path} is valid only from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} "
                                   "UTC: is this machine's clock right?")
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:
        raise CertificateError(f"{cert_path} was not signed by the CA in {ca_path} (another course's or an "
                               "older CA's?): every machine needs certificates from the same "
                               "`python -m grader.certificates` folder") from None
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise CertificateError(f"{key_path} is not the key of {cert_path}")
    return ca_path, cert_path, key_path


def dask_cli_args(folder: Path, role: str) -> list[str]:
    """``dask scheduler``/``dask worker`` options for ``role``'s certificates (checked first)."""
    ca_path, cert_path, key_path = check(folder, role)
    return ["--tls-ca-file", str(ca_path), "--tls-cert", str(cert_path), "--tls-key", str(key_path)]


def client_security(folder: Path):
    """A Dask ``Security`` for the grader's client (checked first), TLS only."""
    from distributed.security import Security

    ca_path, cert_path, key_path = check(folder, "grader")
    return Security(tls_ca_file=str(ca_path), tls_client_cert=str(cert_path), tls_client_key=str(key_path),
                    require_encryption=True)


def is_loopback_address(address: str) -> bool:
    """Whether a Dask address (``tcp://host:port``, ``host:port``) names this machine's loopback."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_problem(address: str, certs: Path | None, insecure_tcp: bool, role: str) -> str:
    """'' when ``role`` (grader, worker) may connect to the scheduler at ``address`` as given, else why
    not: ``tls://`` without certificates, certificates without ``tls://``, plain TCP beyond loopback."""
    if address.startswith("tls://"):
        if certs is None:
            return (f"{address} is a TLS scheduler: give --certs DIR with ca.pem, {role}.pem and {role}-key.pem "
                    "(python -m grader.certificates makes them)")
        return ""
    if certs is not None:
        return f"--certs given but {address} is not a tls:// address: use tls://HOST:PORT"
    if not insecure_tcp and not is_loopback_address(address):
        return (f"plain TCP to {address}: whoever reaches that scheduler can run code on its workers. Start it "
                "with TLS (`python -m grader.certificates DIR`, then `python -m grader.scheduler --certs DIR`) and "
                "use tls://HOST:PORT with --certs DIR, or give --insecure-tcp on a network you trust")
    return ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.certificates", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write the CA and the certificates")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"validity (default {DEFAULT_DAYS})")
    parser.add_argument("--force", action="store_true", help="replace an existing CA (every machine needs the new files)")
    args = parser.parse_args(argv)
    try:
        paths = make_certificates(args.folder, args.days, args.force)
    except (CertificateError, ValueError) as error:
        print(f"[certificates] {error}", file=sys.stderr)
        return 2
    print(f"[certificates] CA and certificates for {', '.join(ROLES)} in {args.folder}/, valid {args.days} days. "
          f"Copy ca.pem and worker.pem/worker-key.pem to each grading machine; keep ca-key.pem off the cluster.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
