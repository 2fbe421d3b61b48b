"""HTTPS for unmodified clients: a local certificate authority and a server certificate.

Generated once with trustme (on the `cryptography` library) into a folder and reused on every
later start, so a client told to trust the CA keeps trusting it. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA certificate (to trust) and the server's certificate and key are."""

    ca: Path
    cert: Path
    key: Path


def ensure_certificates(directory: str | Path, extra_names: tuple[str, ...] = ()) -> TlsFiles:
    """The CA and server certificate in `directory`, generated on first use."""
    folder = Path(directory)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    names = tuple(dict.fromkeys(DEFAULT_NAMES + tuple(extra_names)))
    stamp = folder / "names.txt"
    if all(path.exists() for path in (files.ca, files.cert, files.key)) and stamp.exists() \
            and stamp.read_text() == "\n".join(names):
        return files
    _generate(folder, files, names)
    stamp.write_text("\n".join(names))
    return files


def _generate(folder: Path, files: TlsFiles, names: tuple[str, ...]) -> None:
    """A new CA and a server certificate for `names` (clients must trust the new CA)."""
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="b24emu local CA")
    server = authority.issue_cert(*names)
    authority.cert_pem.write_to_path(str(files.ca))
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert), append=True)
    files.key.touch(mode=0o600)  # private before the key is in it, not after
    files.key.chmod(0o600)
    server.private_key_pem.write_to_path(str(files.key))
