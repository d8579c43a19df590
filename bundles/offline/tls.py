"""A self-signed TLS certificate for an offline installation (the compose stack's nginx, or any
proxy in front of `townsquare serve`). `python -m townsquare.bundles.offline.tls FOLDER [NAME...]`
writes FOLDER/cert.pem and FOLDER/key.pem (0600)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 825  # the longest validity browsers accept for a server certificate


def self_signed(names: list[str], days: int = VALID_DAYS) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for `names` (DNS names or IP addresses); the first
    name is the subject's common name."""
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Townsquare (self-signed)")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_certificate(folder: Path, extra_names: list[str] | None = None) -> Path:
    """Writes cert.pem and key.pem for this host's name, localhost and loopback."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed([socket.gethostname(), "localhost", "127.0.0.1", "::1", *(extra_names or [])])
    key_path = folder / "key.pem"
    key_path.touch(mode=0o600)
    key_path.chmod(0o600)
    key_path.write_bytes(key)
    (folder / "cert.pem").write_bytes(cert)
    return folder / "cert.pem"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m townsquare.bundles.offline.tls FOLDER [NAME...]")
    print(write_certificate(Path(sys.argv[1]), sys.argv[2:]))
