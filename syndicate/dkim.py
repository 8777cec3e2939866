"""DKIM: an smtp target's `dkim:` settings, its signing key, and the keys `syndicate dkim keygen` makes.

Gmail and Yahoo require bulk senders to sign (DKIM aligned with the From domain, for DMARC), and
RFC 8058 section 4 requires the one-click unsubscribe headers to be covered by that signature.
The smtp target signs each message once, on the exact bytes it hands the server (after
`message_bytes`), so nothing rewrites a signed header or line afterwards.

The key is read when the target is made (and by `check_keys`, which `validate` and every send
run first): a missing, unreadable or invalid key is one `ConfigError` naming the target. The
key's text never enters a message: errors name the file or the variable, never the content.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from pydantic import field_validator, model_validator

from .errors import ConfigError, DeliveryError
from .validation import Strict, short

if TYPE_CHECKING:
    from .config import Config

# What the signature covers, when present (RFC 6376 section 5.4.1's list, and RFC 8058 section 4's
# unsubscribe headers, which a mailbox provider honours only when signed).
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "Feedback-ID",
)
MIN_BITS = 1024  # what verifiers accept (dkimpy's `minkey`; RFC 8301 section 3.2)
DEFAULT_BITS = 2048
MAX_BITS = 4096
# A DNS label of the selector or domain: letters, digits, hyphens (and dots between labels).
_DNS_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TXT_CHUNK = 255  # the longest string one TXT record string holds (RFC 1035 section 3.3.14)


_PREHASHED = {"sha256": utils.Prehashed(hashes.SHA256()), "sha1": utils.Prehashed(hashes.SHA1())}


def _openssl_sign(digest: Any, key: dict[str, int]) -> bytes:
    """RSASSA-PKCS1-v1_5 of a dkimpy hash object by OpenSSL (through `cryptography`): the same
    bytes as dkimpy's own `crypto.RSASSA_PKCS1_v1_5_sign` (PKCS#1 v1.5 is deterministic; a test
    compares them), ~0.6 ms for a 2048-bit key where its pure-Python one takes ~6 ms, the most
    of what signing a message costs. dkimpy calls it by this name from its module."""
    prehashed = _PREHASHED.get(str(digest.name).lower())
    if prehashed is None:  # a hash this does not know: dkimpy's own code
        return bytes(_dkimpy().crypto.RSASSA_PKCS1_v1_5_sign(digest, key))
    private = _openssl_key(
        key["modulus"], key["publicExponent"], key["privateExponent"], key["prime1"], key["prime2"]
    )
    return private.sign(digest.digest(), padding.PKCS1v15(), prehashed)


@lru_cache(maxsize=8)
def _openssl_key(n: int, e: int, d: int, p: int, q: int) -> rsa.RSAPrivateKey:
    crt = (rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q))
    return rsa.RSAPrivateNumbers(p, q, d, *crt, rsa.RSAPublicNumbers(e, n)).private_key()


@lru_cache(maxsize=1)
def _dkimpy() -> Any:
    """dkimpy (and dnspython under it), imported when a message is first signed: a config with
    `dkim:` settings is read and checked without it. Its RSA step is handed to OpenSSL."""
    import dkim

    dkim.RSASSA_PKCS1_v1_5_sign = _openssl_sign  # what `dkim.DKIM.sign` calls to sign
    return dkim


class DkimSettings(Strict):
    """`targets.<name>.dkim`: sign with `selector` for `domain`, the key from a file or a variable.

    `domain` should be the From address's domain (or a parent of it): that is what DMARC aligns.
    """

    domain: str
    selector: str
    # A PEM private key file (relative to the config's folder), or the environment variable
    # holding the PEM text: one of the two.
    key_file: Path | None = None
    key_env: str | None = None

    @field_validator("domain", "selector")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        value = value.strip().rstrip(".").lower()
        if not _DNS_NAME.fullmatch(value):
            raise ValueError(f"{short(value)} is not a DNS name (expected letters, digits, - and .)")
        return value

    @field_validator("key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                f"{short(value)} is not an environment variable name (expected like DKIM_PRIVATE_KEY)"
            )
        return value

    @model_validator(mode="after")
    def _one_key(self) -> DkimSettings:
        if (self.key_file is None) == (self.key_env is None):
            raise ValueError("needs exactly one of key_file and key_env (expected the private key's source)")
        return self


@dataclass(frozen=True)
class Signer:
    """Signs messages for one target: relaxed/relaxed, rsa-sha256, the `SIGNED_HEADERS` present."""

    domain: str
    selector: str
    key_pem: bytes  # PKCS#1 PEM with LF line ends: the form dkimpy parses
    bits: int

    def __repr__(self) -> str:  # never the key, in a traceback or a log line
        return f"Signer(domain={self.domain!r}, selector={self.selector!r}, bits={self.bits})"

    def sign(self, data: bytes) -> bytes:
        """`data` (a whole message, CRLF lines) with its DKIM-Signature header in front. A message
        dkimpy refuses (one without From, which must be signed) is a DeliveryError for that
        message; its text names the problem, never the key."""
        dkimpy = _dkimpy()
        names = _present(data)
        headers = [h.encode("ascii") for h in SIGNED_HEADERS if h.lower() in names]
        try:
            signature = dkimpy.sign(
                data,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.key_pem,
                canonicalize=(b"relaxed", b"relaxed"),
                signature_algorithm=b"rsa-sha256",
                include_headers=headers,
                linesep=b"\r\n",
            )
        except dkimpy.ParameterError as exc:  # about the message's headers, not the key
            raise DeliveryError(f"cannot DKIM-sign the message ({exc})") from None
        except dkimpy.DKIMException as exc:
            raise DeliveryError(f"cannot DKIM-sign the message ({type(exc).__name__})") from None
        return bytes(signature) + data


def _present(data: bytes) -> set[str]:
    """The lowercase names of the header fields of a message."""
    head = data.split(b"\r\n\r\n", 1)[0]
    names = set()
    for line in head.split(b"\r\n"):
        if line and line[:1] not in (b" ", b"\t"):
            names.add(line.split(b":", 1)[0].strip().decode("ascii", "replace").lower())
    return names


def load_signer(target: str, settings: DkimSettings, root: Path) -> Signer:
    """The signer of target `target`, its key read and checked now; a one-line ConfigError if the
    key is missing, unreadable or not an RSA private key of MIN_BITS bits or more."""
    where = f"targets.{target}.dkim"
    if settings.key_env is not None:
        source = f"{where}.key_env: environment variable {settings.key_env}"
        text = os.environ.get(settings.key_env, "")
        if not text.strip():
            state = "is not set" if settings.key_env not in os.environ else "is empty"
            raise ConfigError(f"{source} {state} (expected it to hold the PEM private key)")
        data = text.replace("\\n", "\n").encode("utf-8", "replace")  # a one-line variable with \n
    else:
        assert settings.key_file is not None
        path = settings.key_file if settings.key_file.is_absolute() else root / settings.key_file
        source = f"{where}.key_file: {path}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"{source} does not exist (expected a PEM private key; `syndicate dkim keygen` makes one)"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{source} cannot be read ({exc.strerror or type(exc).__name__})") from None
    key = _private_key(data)
    if key is None:
        raise ConfigError(
            f"{source} does not hold a PEM RSA private key (expected one without a passphrase, "
            "as `syndicate dkim keygen` writes)"
        )
    if key.key_size < MIN_BITS:
        raise ConfigError(f"{source} is a {key.key_size}-bit key (expected {MIN_BITS} bits or more)")
    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL
    pem = key.private_bytes(serialization.Encoding.PEM, pkcs1, serialization.NoEncryption())
    return Signer(settings.domain, settings.selector, pem.replace(b"\r\n", b"\n"), key.key_size)


def _private_key(data: bytes) -> rsa.RSAPrivateKey | None:
    """The RSA key in `data`, or None; the parser's own message is dropped (it may quote the data)."""
    try:
        key = serialization.load_pem_private_key(data.strip() + b"\n", password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, rsa.RSAPrivateKey) else None


def signer_for(target: str, settings: Any, config: Config) -> Signer | None:
    """The signer of a target whose settings have a `dkim:` section, None without one."""
    dkim_settings = getattr(settings, "dkim", None)
    if not isinstance(dkim_settings, DkimSettings):
        return None
    return load_signer(target, dkim_settings, config.root)


def check_keys(config: Config, targets: list[str] | None = None) -> None:
    """Load every DKIM key the config names (or those of `targets`): a bad one is a ConfigError
    now, before any message of any target goes out, not midway through a send."""
    for name, settings in config.targets.items():
        if targets is None or name in targets:
            signer_for(name, settings, config)


def alignment_warnings(config: Config) -> list[str]:
    """A line for each target signing for a domain that is neither the From address's nor a parent
    of it: DMARC passes on DKIM only when they align (RFC 7489 section 3.1.1, relaxed mode)."""
    sender = parseaddr(config.site.sender)[1].rpartition("@")[2].lower().rstrip(".")
    lines = []
    for name, settings in config.targets.items():
        dkim_settings = getattr(settings, "dkim", None)
        if not isinstance(dkim_settings, DkimSettings):
            continue
        signing = dkim_settings.domain
        if sender != signing and not sender.endswith("." + signing):
            lines.append(
                f"targets.{name}.dkim.domain: {signing} is not the From address's domain {sender} nor a "
                f"parent of it, so DMARC will not count the signature (expected {sender})"
            )
    return lines


# keygen: `syndicate dkim keygen`.


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes
    public_b64: str  # the DER SubjectPublicKeyInfo, base64: the TXT record's p=

    def __repr__(self) -> str:
        return f"KeyPair(public_b64={self.public_b64[:16]!r}...)"


def generate_key(bits: int = DEFAULT_BITS) -> KeyPair:
    """A new RSA key (public exponent 65537), as PKCS#8 PEM without a passphrase."""
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError(f"--bits {bits} is out of range (expected {MIN_BITS} to {MAX_BITS})")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    public = key.public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        base64.b64encode(der).decode("ascii"),
    )


def txt_value(public_b64: str) -> str:
    """The DKIM key record's text (RFC 6376 section 3.6.1), one string."""
    return f"v=DKIM1; k=rsa; p={public_b64}"


def txt_record(selector: str, domain: str, public_b64: str) -> str:
    """A zone-file line: the record's text as quoted strings of at most 255 characters each (a
    2048-bit key's p= alone is ~392), which DNS joins back into one."""
    text = txt_value(public_b64)
    strings = " ".join(f'"{text[i : i + TXT_CHUNK]}"' for i in range(0, len(text), TXT_CHUNK))
    return f"{selector}._domainkey.{domain} IN TXT {strings}"


def key_file_names(selector: str, domain: str) -> tuple[str, str]:
    """(private, public) file names keygen writes."""
    return f"{selector}.{domain}.private.pem", f"{selector}.{domain}.public.pem"


def check_name(what: str, value: str) -> str:
    """A selector or domain for keygen, checked as the config checks it."""
    try:
        return DkimSettings._dns_name(value)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def dns_lookup(records: dict[str, str]) -> Callable[..., bytes | None]:
    """A `dnsfunc` for `dkim.verify` answering from `records` (name -> TXT text): for checking a
    signature against a key record before (or without) publishing it."""

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        text = records.get(name.decode("ascii").rstrip(".").lower())
        return None if text is None else text.encode("ascii")

    return lookup
