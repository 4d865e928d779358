"""Test PKI made at test time with ``cryptography``: a CA, server and client certificates as
PEM files (nothing is checked in; keys are EC P-256, so generating a set takes
milliseconds)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """PEM files of one certificate and its key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Ca:
    name: str
    cert: Path
    key_obj: ec.EllipticCurvePrivateKey
    cert_obj: x509.Certificate


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=1)
    )


def make_ca(directory: Path, name: str) -> Ca:
    """A self-signed CA ``name``; its certificate written to ``directory/<name>.crt``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = _validity(builder).sign(key, hashes.SHA256())
    path = directory / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Ca(name=name, cert=path, key_obj=key, cert_obj=cert)


def issue(
    ca: Ca,
    directory: Path,
    common_name: str,
    *,
    dns: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    server: bool = False,
) -> Issued:
    """A leaf certificate signed by ``ca`` (server or client EKU), written as
    ``directory/<common_name>.crt`` / ``.key``."""
    key = _key()
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert_obj.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key_obj.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = _validity(builder).sign(ca.key_obj, hashes.SHA256())
    safe = common_name.replace("/", "_").replace(":", "_")
    cert_path, key_path = directory / f"{safe}.crt", directory / f"{safe}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return Issued(cert=cert_path, key=key_path)


@dataclass(frozen=True)
class Pki:
    """The set most tests need: a CA, the xApp's server certificate (for 127.0.0.1 and
    ``localhost``), two gNB client certificates, and a client certificate from an
    unrelated CA."""

    ca: Ca
    server: Issued
    gnb_a: Issued
    gnb_b: Issued
    rogue_ca: Ca
    rogue: Issued


def make_pki(directory: Path) -> Pki:
    ca = make_ca(directory, "ran-test-ca")
    rogue_ca = make_ca(directory, "rogue-ca")
    rogue_dir = directory / "rogue"
    rogue_dir.mkdir(exist_ok=True)
    return Pki(
        ca=ca,
        server=issue(ca, directory, "xapp", dns=("localhost",), ips=("127.0.0.1",), server=True),
        gnb_a=issue(ca, directory, "gnb-a", dns=("gnb-a.ran.test",)),
        gnb_b=issue(ca, directory, "gnb-b", uris=("spiffe://ran.test/gnb-b",)),
        rogue_ca=rogue_ca,
        # same names as an authorized gNB: only the issuer differs
        rogue=issue(rogue_ca, rogue_dir, "gnb-a", dns=("gnb-a.ran.test",)),
    )
