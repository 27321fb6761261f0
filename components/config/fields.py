"""Validated scalar types of the stack config, and the base model every config model uses.

Every pattern is matched against the whole value (`fullmatch`): Python's `$` also matches
before a final newline, so `"radarr\\n"` used to pass as a DNS label and reach object names.
Limits are the cluster's own (int32 for counts and ids, which the API server and Kopia refuse
above), so a value the cluster would refuse stops here with its key path instead.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, WithJsonSchema
from pydantic.alias_generators import to_camel

from .cron import validate_schedule

#: Kubernetes stores counts, uids and gids as int32 (IsValidUserID/IsValidGroupID: 0..2^31-1);
#: larger numbers also lose precision on the wire, which carries doubles.
INT32_MAX = 2**31 - 1

_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_HOST = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?")
#: An OCI image reference: [registry[:port]/]path[:tag][@digest], lower-case path.
_IMAGE = re.compile(
    r"([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?"
)
#: Kopia's compression names (kopia/repo/compression): letters, digits and '-'.
_COMPRESSION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
#: A label key (prefix/name) and value, as the API server checks them.
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
#: A Kopia identity `user@host`. The fork passes an explicit username and hostname to Kopia
#: as given (builder.go generateUsername/generateHostname), and entry.sh puts them on command
#: lines: letters, digits, '_', '.' and '-' only, starting with a letter or digit.
_IDENTITY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}@[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
#: A token that asks for a one-off action (a manual trigger value): safe in any object field.
_TOKEN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


#: A value carrying credentials: a URL with a user part (`https://key:secret@host`, a token as
#: the user; the secret may hold '/', as AWS keys do), or `user:password@host` without a scheme.
#: Identities (`app@namespace`) have no ':', an image digest (`busybox:1.37@sha256:...`) is none.
_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^@\s]*@|^[^@\s:/]+:[^@\s]*@(?!sha256:)")
WITH_CREDENTIALS = "(a value with credentials in it, not shown)"


def shown(value: object) -> str:
    """How a rejected value appears in a message: quoted, control characters escaped, long
    values cut, so a message is one readable line whatever the input. A value that embeds
    credentials is not quoted at all: the message goes to CI logs and pull-request comments."""
    if isinstance(value, str) and _USERINFO.search(value):
        return WITH_CREDENTIALS
    text = repr(value)
    return text if len(text) <= 72 else text[:60] + "...'"


def _quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value) or float(re.sub(r"[A-Za-z]+$", "", value)) <= 0:
        raise ValueError(f"{shown(value)} is not a positive Kubernetes quantity (like 5Gi)")
    return value


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _dns_subdomain(value: str) -> str:
    if not value or len(value) > 253 or not all(_DNS_LABEL.fullmatch(p) for p in value.split(".")):
        raise ValueError(f"{shown(value)} is not a DNS-1123 subdomain (like ceph-block or vault.store)")
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "\0\n\r") or len(value) > 4096:
        raise ValueError(f"{shown(value)} is not an absolute path (like /mnt/tank/kopia)")
    return value


def check_bucket_name(value: str) -> str:
    if "/" in value:
        raise ValueError(
            f"{shown(value)} has a path: a shared Kopia repository lives at the bucket root, never "
            "under a per-app prefix (VolSync strips the trailing slash and Kopia then writes "
            "'<prefix>kopia.repository'); give the bucket name alone"
        )
    if not _BUCKET.fullmatch(value) or ".." in value or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value):
        raise ValueError(
            f"{shown(value)} is not a valid S3 bucket name (3-63 characters: lower-case letters, "
            "digits, '.' and '-', starting and ending with a letter or digit)"
        )
    return value


def _rfc3339(value: str) -> str:
    """An RFC 3339 time that exists, normalised to UTC with a `Z`.

    VolSync's Kopia mover compares `restoreAsOf` as a string with Kopia's UTC `...Z` times, so
    `2026-01-14T13:00:00+01:00` must reach it as `2026-01-14T12:00:00Z`.
    """
    problem = f"{shown(value)} is not an RFC 3339 time (like 2026-01-14T12:00:00Z)"
    if not _RFC3339.fullmatch(value):
        raise ValueError(problem)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{problem}: no such date or time") from None
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{problem}: outside the years 0001-9999 in UTC") from None
    # Formatted by hand: strftime writes year 999 as '999', which is not RFC 3339 and which the
    # mover, comparing text, would order after '2026'.
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    return (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
            f"{utc.second:02d}{fraction}Z")


def _matching(pattern: re.Pattern[str], limit: int, what: str) -> Callable[[str], str]:
    """A validator: `value` is at most `limit` characters and matches `pattern` whole."""
    def check(value: str) -> str:
        if len(value) > limit or not pattern.fullmatch(value):
            raise ValueError(f"{shown(value)} is not {what}")
        return value
    return check


_host = _matching(_HOST, 253, "a host name or IPv4 address (like nas.home or 192.168.1.10)")
_image = _matching(_IMAGE, 255, "a container image reference (like busybox:1.37)")
_compression = _matching(_COMPRESSION, 40, "a Kopia compression name (like zstd-fastest or none)")
_identity = _matching(_IDENTITY, 317, "a Kopia identity user@host (like atuin-src@default)")
_token = _matching(_TOKEN, 63, "a token of letters, digits, '.', '_' and '-' (like 2026-11-24)")
_label_value = _matching(_LABEL_VALUE, 63, "a label value (at most 63 letters, digits, '-', '_', '.')")


def _ingress_host(value: str) -> str:
    """What an Ingress rule's `host` accepts (networking/v1 validation): a lower-case DNS-1123
    subdomain, optionally with a leading `*.` wildcard; no IP address, no trailing dot."""
    name = value.removeprefix("*.")
    # The API server reads 010.1.1.1 as an address too (ParseIPSloppy), which ipaddress does not.
    if len(value) > 253 or not _is_subdomain(name) or _is_ip_address(name) or re.fullmatch(r"[0-9]+(\.[0-9]+){3}", name):
        raise ValueError(f"{shown(value)} is not an Ingress host: a lower-case DNS name like kopia.home.example "
                         "(an IP address, upper case or a trailing dot is refused by the API server)")
    return value


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if (prefix and not _is_subdomain(prefix)) or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"{shown(value)} is not a label key (like release or example.com/team)")
    return value


def _is_subdomain(value: str) -> bool:
    return len(value) <= 253 and all(_DNS_LABEL.fullmatch(p) for p in value.split("."))


def _schema(pattern: str, description: str) -> WithJsonSchema:
    """What editors see (the JSON schema); the validators above give the messages."""
    return WithJsonSchema({"type": "string", "pattern": f"^{pattern}$", "description": description})


Quantity = Annotated[str, AfterValidator(_quantity), _schema(_QUANTITY.pattern, "a Kubernetes quantity like 5Gi")]
DnsLabel = Annotated[str, AfterValidator(_dns_label), WithJsonSchema(
    {"type": "string", "pattern": f"^{_DNS_LABEL.pattern}$", "maxLength": 63, "description": "a DNS-1123 label"})]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain), _schema(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", "a DNS-1123 subdomain")]
#: Storage and snapshot class names are object names: DNS-1123 subdomains.
ClassName = DnsSubdomain
BucketName = Annotated[str, AfterValidator(check_bucket_name), _schema(_BUCKET.pattern, "an S3 bucket name, no path")]
Rfc3339 = Annotated[str, AfterValidator(_rfc3339), _schema(_RFC3339.pattern, "an RFC 3339 time like 2026-01-14T12:00:00Z")]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path), WithJsonSchema(
    {"type": "string", "pattern": "^/", "description": "an absolute path"})]
Host = Annotated[str, AfterValidator(_host), _schema(_HOST.pattern, "a host name or IPv4 address")]
IngressHost = Annotated[str, AfterValidator(_ingress_host), WithJsonSchema(
    {"type": "string", "description": "an Ingress host: a lower-case DNS name, optionally *.-prefixed"})]
Image = Annotated[str, AfterValidator(_image), _schema(_IMAGE.pattern, "a container image reference")]
Compression = Annotated[str, AfterValidator(_compression), _schema(_COMPRESSION.pattern, "a Kopia compression name")]
LabelKey = Annotated[str, AfterValidator(_label_key), WithJsonSchema({"type": "string", "description": "a label key"})]
LabelValue = Annotated[str, AfterValidator(_label_value), _schema(_LABEL_VALUE.pattern, "a label value")]
Schedule = Annotated[str, AfterValidator(validate_schedule)]
KopiaIdentity = Annotated[str, AfterValidator(_identity), _schema(_IDENTITY.pattern, "a Kopia identity user@host")]
def _counter_as_text(value: object) -> object:
    """A token may be a counter (`backupNow: 2`, as the README says): YAML reads it as a number."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Token = Annotated[str, BeforeValidator(_counter_as_text), AfterValidator(_token), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": f"^{_TOKEN.pattern}$"}, {"type": "integer", "minimum": 0}],
    "description": "a token (a date, a counter)"})]
Count = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
Id = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
#: A short free-text value that becomes part of an object (a key name, a cluster id).
Text = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: A secret held in Pulumi config: never empty (an empty password opens nothing).
Secret = Annotated[SecretStr, Field(min_length=1, max_length=4096)]
AccessMode = Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"]
AccessModes = Annotated[tuple[AccessMode, ...], Field(min_length=1, max_length=4)]
RepositoryNames = Annotated[tuple[DnsLabel, ...], Field(min_length=1)]


class Model(BaseModel):
    """Base for every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )
