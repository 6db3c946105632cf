"""Test certificates made by the openssl CLI: a CA, and certificates it signs (EC P-256, one day)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
SERVER = "subjectAltName=DNS:lumen-backend,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
CLIENT = "extendedKeyUsage=clientAuth"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(directory: Path, name: str, extensions: str, ca: str = "ca") -> None:
    """``name``.key and ``name``.pem signed by ``ca``.pem/.key."""
    (directory / f"{name}.ext").write_text(extensions + "\n")
    openssl("req", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-out",
        f"{name}.pem",
        "-days",
        "1",
        "-extfile",
        f"{name}.ext",
        cwd=directory,
    )


def make_ca(directory: Path, name: str = "ca") -> None:
    """A self-signed CA: ``name``.pem and ``name``.key."""
    subject = f"/CN=lumen-test-{name}"
    openssl(
        "req", "-x509", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "1", "-subj", subject,
        cwd=directory,
    )  # fmt: skip


def make_certs(directory: Path, certificates: dict[str, str]) -> Path:
    """A CA (ca.pem) and one certificate per name, with its X.509 extensions; returns ``directory``."""
    make_ca(directory)
    for name, extensions in certificates.items():
        issue(directory, name, extensions)
    return directory
