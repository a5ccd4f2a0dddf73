"""Load and validate ``agent.toml``.

Every problem in the file is collected before anything is refused, so an operator fixes the file in one
pass; each problem names its key path (``service.url``, ``cameras[1].folder``; camera indexes count from 0
in the order of the ``[[cameras]]`` tables).

Paths must be absolute. A relative path would depend on the directory the service manager happens to
start the agent from, so it is refused rather than guessed.

The API token lives in its own file, never inline, and is refused when that file is open to group or
others: the token lets anyone register footage for the site.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import stat
import tomllib
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cctv_ingest.secret import Secret

DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_CONCURRENT_UPLOADS = 2
MAX_CONCURRENT_UPLOADS = 16
DEFAULT_SETTLE_SECONDS = 10.0
MAX_SETTLE_SECONDS = 3600.0
DEFAULT_SCAN_INTERVAL_SECONDS = 5.0
MIN_SCAN_INTERVAL_SECONDS = 0.05
MAX_SCAN_INTERVAL_SECONDS = 3600.0
DEFAULT_RETRY_INITIAL_SECONDS = 1.0
MAX_RETRY_INITIAL_SECONDS = 3600.0
DEFAULT_RETRY_MAX_SECONDS = 300.0
MAX_RETRY_MAX_SECONDS = 86400.0
DEFAULT_SEGMENT_SECONDS = 60
MAX_SEGMENT_SECONDS = 3600

CONTAINERS = {".mp4": "mp4", ".mkv": "mkv", ".ts": "ts", ".avi": "avi", ".mov": "mov"}
"""Segment file extensions the agent uploads, and the container each names."""

_MAX_TOKEN_FILE_BYTES = 4096
_SITE_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SITE_SLUG_MAX = 63
# A camera id becomes part of file-name patterns and strftime formats, so '%', '{' and '/' stay out.
_CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# The token goes into an HTTP header: printable ASCII without spaces, so it cannot split the header.
_TOKEN = re.compile(r"[\x21-\x7e]+")

CAMERA_PLACEHOLDER = "{camera}"
PATTERN_DIRECTIVES = ("Y", "m", "d", "H", "M", "S", "f")
_REQUIRED_DIRECTIVES = ("Y", "m", "d", "H", "M")
# Far from any boundary, every field distinct, so a pattern that mixes fields up cannot round-trip it.
_SAMPLE_TIME = datetime(2031, 12, 29, 23, 58, 57, 123456)

_SERVICE_KEYS = {
    "url": True,
    "token_file": True,
    "ca_file": False,
    "timeout_seconds": False,
    "allow_insecure_http": False,
}
_AGENT_KEYS = {
    "site": True,
    "spool_path": True,
    "max_concurrent_uploads": False,
    "delete_after_upload": False,
    "timezone": False,
    "settle_seconds": False,
    "scan_interval_seconds": False,
    "retry_initial_seconds": False,
    "retry_max_seconds": False,
}
_CAMERA_KEYS = {"id": True, "folder": True, "pattern": False, "sidecar": False, "segment_seconds": False}
_TOP_KEYS = {"service": True, "agent": True, "cameras": True}


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Where the cctv-gov service is and how to authenticate to it."""

    url: str
    """Base URL without a trailing slash."""
    token_file: Path
    token: Secret = field(repr=False)
    ca_file: Path | None
    timeout_seconds: float
    allow_insecure_http: bool


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """One camera folder on the NVR and how to read a segment's start time."""

    id: str
    folder: Path
    pattern: str | None
    """strftime-style file-name pattern with an optional ``{camera}`` placeholder; None when sidecar."""
    sidecar: bool
    """True when start times come from a JSON sidecar next to each segment instead of the name."""
    segment_seconds: int = DEFAULT_SEGMENT_SECONDS
    """Pattern cameras: the longest a segment runs (its end is at most start + segment_seconds)."""

    def start_time_from_name(self, filename: str) -> datetime | None:
        """The start time written into ``filename`` by the pattern, or None if the name does not match.

        The result is naive: NVRs write local wall-clock time into names without a zone.
        """
        if self.pattern is None:
            return None
        return _parse_name(self.pattern, self.id, filename)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything in ``agent.toml``, validated."""

    source: Path
    service: ServiceConfig
    site: str
    spool_path: Path
    max_concurrent_uploads: int
    delete_after_upload: bool
    cameras: tuple[CameraConfig, ...]
    timezone: str | None = None
    """IANA zone of the wall-clock times in file names; None: the site's time zone in the service."""
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    """A file is complete once its size and modification time hold still and are this old."""
    scan_interval_seconds: float = DEFAULT_SCAN_INTERVAL_SECONDS
    retry_initial_seconds: float = DEFAULT_RETRY_INITIAL_SECONDS
    retry_max_seconds: float = DEFAULT_RETRY_MAX_SECONDS


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the configuration, at one key path."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason, section by section."""

    def __init__(self, source: Path, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        lines = [f"{self.source}: {count} problem{'' if count == 1 else 's'}"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def normalize_base_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """Check the service base URL and return it without a trailing slash.

    Raises ValueError with a message that never repeats the URL (it might carry a password).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # parsing the port is lazy and raises here when it is not a number
    except ValueError:
        raise ValueError("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        shown = repr(scheme) if scheme else "none"
        raise ValueError(f"scheme must be https (or http for a loopback host), not {shown}")
    if not parts.hostname:
        raise ValueError("has no host name")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password; the token comes from token_file")
    if parts.query or parts.fragment:
        raise ValueError("must not contain a query or fragment")
    if port == 0:
        raise ValueError("has an invalid port")
    if scheme == "http" and not allow_insecure_http and not is_loopback_host(parts.hostname):
        raise ValueError(
            "plain http is allowed only for a loopback host (localhost, 127.0.0.0/8, ::1); "
            "use https, or set service.allow_insecure_http = true"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
    """Read, validate and return the agent configuration, or raise ConfigError listing every problem."""
    source = Path(path).absolute()
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, [Problem(str(source), "file not found")]) from None
    except OSError as exc:
        raise ConfigError(source, [Problem(str(source), f"cannot be read: {exc.strerror}")]) from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, [Problem(str(source), "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)".
        raise ConfigError(source, [Problem(str(source), f"is not valid TOML: {exc}")]) from None

    checker = _Checker()
    config = checker.agent(source, raw)
    if config is None or checker.problems:
        raise ConfigError(source, checker.problems)
    return config


def _describe(value: object) -> str:
    """The TOML type of a value, for messages (never the value itself: it might be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    return type(value).__name__


class _Checker:
    """Collects problems while turning the parsed TOML into config objects.

    Each method returns None for a part it could not build; the caller keeps going so later problems
    are reported too.
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(Problem(key, message))

    # -- generic checks -------------------------------------------------------------------------------

    def keys(
        self, table: Mapping[str, object], prefix: str, spec: Mapping[str, bool], hint: str = ""
    ) -> None:
        for name in table:
            if name not in spec:
                extra = hint if name == "token" else ""
                self.add(_join(prefix, name), f"unknown key{extra}")
        for name, required in spec.items():
            if required and name not in table:
                self.add(_join(prefix, name), "missing (required)")

    def table(self, parent: Mapping[str, object], name: str) -> Mapping[str, object] | None:
        value = parent.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.add(name, f"expected a table, got {_describe(value)}")
            return None
        return value

    def string(self, table: Mapping[str, object], prefix: str, name: str) -> str | None:
        if name not in table:
            return None
        value = table[name]
        if not isinstance(value, str):
            self.add(_join(prefix, name), f"expected a string, got {_describe(value)}")
            return None
        return value

    def boolean(self, table: Mapping[str, object], prefix: str, name: str, default: bool) -> bool | None:
        if name not in table:
            return default
        value = table[name]
        if not isinstance(value, bool):
            self.add(_join(prefix, name), f"expected true or false, got {_describe(value)}")
            return None
        return value

    def integer(
        self, table: Mapping[str, object], prefix: str, name: str, default: int, low: int, high: int
    ) -> int | None:
        if name not in table:
            return default
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(_join(prefix, name), f"expected an integer, got {_describe(value)}")
            return None
        if not low <= value <= high:
            self.add(_join(prefix, name), f"must be between {low} and {high}, got {value}")
            return None
        return value

    def seconds(
        self,
        table: Mapping[str, object],
        prefix: str,
        name: str,
        default: float,
        low: float,
        high: float,
        *,
        low_allowed: bool = True,
    ) -> float | None:
        """A number of seconds (integer or float) in ``low..high``; ``low`` itself only if low_allowed."""
        if name not in table:
            return default
        value = table[name]
        key = _join(prefix, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(key, f"expected a number of seconds, got {_describe(value)}")
            return None
        # Written so NaN fails too: every comparison with NaN is false.
        above_low = value >= low if low_allowed else value > low
        if not (above_low and value <= high):
            floor = f"at least {low:g}" if low_allowed else f"more than {low:g}"
            self.add(key, f"must be {floor} and at most {high:g}, got {value}")
            return None
        return float(value)

    def time_zone(self, table: Mapping[str, object], prefix: str, name: str) -> str | None:
        value = self.string(table, prefix, name)
        if value is None:
            return None
        problem = time_zone_problem(value)
        if problem is not None:
            self.add(_join(prefix, name), problem)
            return None
        return value

    def absolute_path(self, table: Mapping[str, object], prefix: str, name: str) -> Path | None:
        value = self.string(table, prefix, name)
        if value is None:
            return None
        key = _join(prefix, name)
        if not value:
            self.add(key, "must not be empty")
            return None
        if "\x00" in value:
            self.add(key, "must not contain a NUL character")
            return None
        path = Path(value)
        if not path.is_absolute():
            self.add(key, f"must be an absolute path (relative paths are not resolved), got {value!r}")
            return None
        return path

    # -- sections ------------------------------------------------------------------------------------

    def agent(self, source: Path, raw: Mapping[str, object]) -> AgentConfig | None:
        self.keys(raw, "", _TOP_KEYS)
        service_raw = self.table(raw, "service")
        agent_raw = self.table(raw, "agent")
        service = self.service(service_raw) if service_raw is not None else None

        site = spool_path = max_uploads = delete_after = None
        timezone: str | None = None
        timing: dict[str, float | None] = {}
        timezone_ok = True
        if agent_raw is not None:
            self.keys(agent_raw, "agent", _AGENT_KEYS)
            site = self.string(agent_raw, "agent", "site")
            if site is not None and not (_SITE_SLUG.fullmatch(site) and len(site) <= _SITE_SLUG_MAX):
                self.add("agent.site", "must be a site slug: lower-case letters, digits and single hyphens")
                site = None
            spool_path = self.absolute_path(agent_raw, "agent", "spool_path")
            if spool_path is not None and spool_path.is_dir():
                self.add("agent.spool_path", f"{spool_path} is a directory; give the spool file's path")
                spool_path = None
            max_uploads = self.integer(
                agent_raw,
                "agent",
                "max_concurrent_uploads",
                DEFAULT_MAX_CONCURRENT_UPLOADS,
                1,
                MAX_CONCURRENT_UPLOADS,
            )
            delete_after = self.boolean(agent_raw, "agent", "delete_after_upload", False)
            timezone = self.time_zone(agent_raw, "agent", "timezone")
            timezone_ok = "timezone" not in agent_raw or timezone is not None
            timing = self.timing(agent_raw)

        cameras = self.cameras(raw["cameras"]) if "cameras" in raw else None

        if (
            service is None
            or site is None
            or spool_path is None
            or max_uploads is None
            or delete_after is None
            or cameras is None
            or not timezone_ok
        ):
            return None
        settle, scan, retry_initial, retry_max = (
            timing.get(key)
            for key in (
                "settle_seconds",
                "scan_interval_seconds",
                "retry_initial_seconds",
                "retry_max_seconds",
            )
        )
        if settle is None or scan is None or retry_initial is None or retry_max is None:
            return None
        return AgentConfig(
            source=source,
            service=service,
            site=site,
            spool_path=spool_path,
            max_concurrent_uploads=max_uploads,
            delete_after_upload=delete_after,
            cameras=cameras,
            timezone=timezone,
            settle_seconds=settle,
            scan_interval_seconds=scan,
            retry_initial_seconds=retry_initial,
            retry_max_seconds=retry_max,
        )

    def timing(self, raw: Mapping[str, object]) -> dict[str, float | None]:
        """The [agent] keys that say how often and how long: settling, scanning and retrying."""
        timing = {
            "settle_seconds": self.seconds(
                raw, "agent", "settle_seconds", DEFAULT_SETTLE_SECONDS, 0, MAX_SETTLE_SECONDS
            ),
            "scan_interval_seconds": self.seconds(
                raw,
                "agent",
                "scan_interval_seconds",
                DEFAULT_SCAN_INTERVAL_SECONDS,
                MIN_SCAN_INTERVAL_SECONDS,
                MAX_SCAN_INTERVAL_SECONDS,
            ),
            "retry_initial_seconds": self.seconds(
                raw,
                "agent",
                "retry_initial_seconds",
                DEFAULT_RETRY_INITIAL_SECONDS,
                0,
                MAX_RETRY_INITIAL_SECONDS,
                low_allowed=False,
            ),
            "retry_max_seconds": self.seconds(
                raw,
                "agent",
                "retry_max_seconds",
                DEFAULT_RETRY_MAX_SECONDS,
                0,
                MAX_RETRY_MAX_SECONDS,
                low_allowed=False,
            ),
        }
        initial, maximum = timing["retry_initial_seconds"], timing["retry_max_seconds"]
        if initial is not None and maximum is not None and maximum < initial:
            self.add(
                "agent.retry_max_seconds",
                f"must be at least retry_initial_seconds ({initial:g}), got {maximum:g}",
            )
            timing["retry_max_seconds"] = None
        return timing

    def service(self, raw: Mapping[str, object]) -> ServiceConfig | None:
        self.keys(raw, "service", _SERVICE_KEYS, hint="; the token is read from token_file, never inline")

        allow_insecure = self.boolean(raw, "service", "allow_insecure_http", False)
        url = self.string(raw, "service", "url")
        if url is not None:
            try:
                url = normalize_base_url(url, allow_insecure_http=bool(allow_insecure))
            except ValueError as exc:
                self.add("service.url", str(exc))
                url = None

        token_file = self.absolute_path(raw, "service", "token_file")
        token = None
        if token_file is not None:
            try:
                token = _read_token(token_file)
            except ValueError as exc:
                self.add("service.token_file", str(exc))

        # Leaving ca_file out, or "", means the system's CAs only.
        ca_file: Path | None = None
        ca_ok = True
        if raw.get("ca_file", "") != "":
            ca_file = self.absolute_path(raw, "service", "ca_file")
            if ca_file is not None:
                try:
                    _check_ca_file(ca_file)
                except ValueError as exc:
                    self.add("service.ca_file", str(exc))
                    ca_file = None
            ca_ok = ca_file is not None

        timeout = self.timeout(raw)

        if (
            url is None
            or token_file is None
            or token is None
            or not ca_ok
            or timeout is None
            or allow_insecure is None
        ):
            return None
        return ServiceConfig(
            url=url,
            token_file=token_file,
            token=token,
            ca_file=ca_file,
            timeout_seconds=timeout,
            allow_insecure_http=allow_insecure,
        )

    def timeout(self, raw: Mapping[str, object]) -> float | None:
        if "timeout_seconds" not in raw:
            return DEFAULT_TIMEOUT_SECONDS
        value = raw["timeout_seconds"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add("service.timeout_seconds", f"expected a number of seconds, got {_describe(value)}")
            return None
        # Written so NaN fails too: every comparison with NaN is false.
        if not 0 < value <= MAX_TIMEOUT_SECONDS:
            self.add(
                "service.timeout_seconds",
                f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g}, got {value}",
            )
            return None
        return float(value)

    def cameras(self, value: object) -> tuple[CameraConfig, ...] | None:
        if not isinstance(value, list):
            self.add("cameras", f"expected [[cameras]] tables, got {_describe(value)}")
            return None
        if not value:
            self.add("cameras", "at least one [[cameras]] table is needed")
            return None
        cameras: list[CameraConfig] = []
        complete = True
        first_with_id: dict[str, int] = {}
        first_with_folder: dict[Path, int] = {}
        for index, item in enumerate(value):
            prefix = f"cameras[{index}]"
            if not isinstance(item, Mapping):
                self.add(prefix, f"expected a table, got {_describe(item)}")
                complete = False
                continue
            camera = self.camera(item, index, first_with_id, first_with_folder)
            if camera is None:
                complete = False
                continue
            cameras.append(camera)
        return tuple(cameras) if complete else None

    def camera(
        self,
        raw: Mapping[str, object],
        index: int,
        first_with_id: dict[str, int],
        first_with_folder: dict[Path, int],
    ) -> CameraConfig | None:
        prefix = f"cameras[{index}]"
        self.keys(raw, prefix, _CAMERA_KEYS)
        camera_id = self.string(raw, prefix, "id")
        if camera_id is not None and not _CAMERA_ID.fullmatch(camera_id):
            self.add(
                f"{prefix}.id",
                "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
            camera_id = None
        unique = True
        if camera_id is not None:
            first = first_with_id.setdefault(camera_id, index)
            if first != index:
                self.add(f"{prefix}.id", f"{camera_id!r} is already used by cameras[{first}]")
                unique = False
        folder = self.absolute_path(raw, prefix, "folder")
        if folder is not None:
            first = first_with_folder.setdefault(folder, index)
            if first != index:
                self.add(
                    f"{prefix}.folder",
                    f"{folder} is already used by cameras[{first}]; each folder belongs to one camera",
                )
                unique = False
        pattern = self.string(raw, prefix, "pattern")
        sidecar = self.boolean(raw, prefix, "sidecar", False)
        pattern_ok = "pattern" not in raw or pattern is not None

        if pattern is not None and sidecar:
            self.add(f"{prefix}.pattern", "set either pattern or sidecar = true, not both")
            pattern_ok = False
        elif "pattern" not in raw and sidecar is False:
            self.add(f"{prefix}.pattern", "missing: set a file-name pattern, or sidecar = true")
            pattern_ok = False
        elif pattern is not None:
            problem = pattern_problem(pattern, camera_id) or _extension_problem(pattern)
            if problem is not None:
                self.add(f"{prefix}.pattern", problem)
                pattern_ok = False

        segment_seconds = self.integer(
            raw, prefix, "segment_seconds", DEFAULT_SEGMENT_SECONDS, 1, MAX_SEGMENT_SECONDS
        )
        if sidecar and "segment_seconds" in raw:
            self.add(
                f"{prefix}.segment_seconds",
                "only for pattern cameras; with sidecar = true each sidecar gives its segment's end",
            )
            segment_seconds = None

        if (
            camera_id is None
            or folder is None
            or sidecar is None
            or not pattern_ok
            or not unique
            or segment_seconds is None
        ):
            return None
        return CameraConfig(
            id=camera_id, folder=folder, pattern=pattern, sidecar=sidecar, segment_seconds=segment_seconds
        )


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _extension_problem(pattern: str) -> str | None:
    suffix = Path(pattern.replace(CAMERA_PLACEHOLDER, "camera")).suffix.lower()
    if suffix in CONTAINERS:
        return None
    known = ", ".join(CONTAINERS)
    return f"must end in one of {known}: the file's extension gives the segment's container"


def time_zone_problem(name: str) -> str | None:
    """Why ``name`` is not a usable IANA time zone on this system, or None."""
    if not name:
        return "must not be empty"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        shown = name if len(name) <= 64 else name[:64] + "..."
        return f"unknown time zone {shown!r}: use an IANA name such as 'Europe/Berlin' (or 'UTC')"
    return None


def _read_token(path: Path) -> Secret:
    """Read the token; raise ValueError (never quoting the file's contents) when it cannot be used."""
    # O_NONBLOCK so a FIFO put there by mistake cannot hang the agent before the regular-file check.
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except PermissionError:
        raise ValueError(f"{path} cannot be read by this user") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be opened: {exc.strerror}") from None
    try:
        # fstat on the open file, so the file checked is the file read.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise ValueError(
                f"{path} is open to group or others (mode {mode:04o}); make it readable by the agent "
                f"only: chmod 600 {path}"
            )
        chunks: list[bytes] = []
        size = 0
        while size <= _MAX_TOKEN_FILE_BYTES:
            chunk = os.read(fd, _MAX_TOKEN_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > _MAX_TOKEN_FILE_BYTES:
        raise ValueError(
            f"{path} is larger than {_MAX_TOKEN_FILE_BYTES} bytes; it should hold only the token"
        )
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    token = text.strip()
    if not token:
        raise ValueError(f"{path} is empty")
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"{path} must hold only the token: one line of printable characters, no spaces")
    return Secret(token)


def _check_ca_file(path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError:
        raise ValueError(f"{path} holds no usable PEM certificate") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror}") from None


def pattern_problem(pattern: str, camera_id: str | None) -> str | None:
    """Why ``pattern`` cannot give a start time, or None when it can.

    With a camera id, the pattern must also round-trip: the name it renders for a sample time must
    parse back to that time.
    """
    if not pattern:
        return "must not be empty"
    if any(char in pattern for char in "/\\\x00"):
        return "must be a file name, not a path"
    rest = pattern.replace(CAMERA_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        return f"the only placeholder is {CAMERA_PLACEHOLDER}"
    seen: set[str] = set()
    index = 0
    while index < len(pattern):
        if pattern[index] != "%":
            index += 1
            continue
        if index + 1 == len(pattern):
            return "ends with a lone '%'"
        directive = pattern[index + 1]
        index += 2
        if directive == "%":
            continue
        if directive not in PATTERN_DIRECTIVES:
            allowed = " ".join(f"%{d}" for d in PATTERN_DIRECTIVES)
            return f"unsupported directive %{directive} (supported: {allowed} and %%)"
        if directive in seen:
            return f"repeats %{directive}"
        seen.add(directive)
    missing = [f"%{d}" for d in _REQUIRED_DIRECTIVES if d not in seen]
    if missing:
        return f"must contain {' '.join(missing)} to give a start time"
    if camera_id is None:
        return None
    expected = _SAMPLE_TIME
    if "S" not in seen:
        expected = expected.replace(second=0)
    if "f" not in seen:
        expected = expected.replace(microsecond=0)
    sample_name = expected.strftime(pattern.replace(CAMERA_PLACEHOLDER, camera_id))
    if _parse_name(pattern, camera_id, sample_name) != expected:
        return f"is ambiguous: the name {sample_name!r} does not read back as the time it was written from"
    return None


def _parse_name(pattern: str, camera_id: str, filename: str) -> datetime | None:
    try:
        return datetime.strptime(filename, pattern.replace(CAMERA_PLACEHOLDER, camera_id))
    except ValueError:
        return None
