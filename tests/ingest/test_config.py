"""agent.toml: what loads, and every way a bad file is refused with the key that is wrong."""

from __future__ import annotations

import copy
import logging
import pickle
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cctv_ingest.config import (
    AgentConfig,
    ConfigError,
    load_config,
    normalize_base_url,
)
from cctv_ingest.secret import Secret

from .conftest import TOKEN, AgentFiles, TlsFiles, write_token

Mutation = Callable[[dict[str, Any], Path], None]


def load_error(agent_files: AgentFiles, data: dict[str, Any] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(agent_files.write(data))
    return caught.value


def keys_of(error: ConfigError) -> list[str]:
    return [problem.key for problem in error.problems]


# -- what loads -----------------------------------------------------------------------------------------


def test_valid_config_loads(agent_files: AgentFiles) -> None:
    config = load_config(agent_files.write())

    assert isinstance(config, AgentConfig)
    assert config.source == agent_files.root / "agent.toml"
    assert config.service.url == "https://cctv.example.org"  # trailing slash dropped
    assert config.service.token_file == agent_files.token_file
    assert config.service.token.reveal() == TOKEN  # the newline at the end of the file is not part of it
    assert config.service.ca_file is None  # "" means no extra CA bundle
    assert config.service.timeout_seconds == 30.0
    assert config.service.allow_insecure_http is False
    assert config.site == "gym-central"
    assert config.spool_path == agent_files.root / "spool" / "spool.sqlite3"
    assert config.max_concurrent_uploads == 4
    assert config.delete_after_upload is True
    assert [camera.id for camera in config.cameras] == ["cam-entrance", "cam-floor"]
    entrance, floor = config.cameras
    assert entrance.folder == agent_files.root / "nvr" / "cam-entrance"
    assert entrance.pattern == "{camera}_%Y%m%d_%H%M%S.mp4"
    assert entrance.sidecar is False
    assert floor.pattern is None
    assert floor.sidecar is True


def test_optional_keys_take_their_defaults(agent_files: AgentFiles) -> None:
    data = agent_files.data
    for key in ("ca_file", "timeout_seconds"):
        del data["service"][key]
    for key in ("max_concurrent_uploads", "delete_after_upload"):
        del data["agent"][key]

    config = load_config(agent_files.write())

    assert config.service.ca_file is None
    assert config.service.timeout_seconds == 30.0
    assert config.max_concurrent_uploads == 2
    assert config.delete_after_upload is False


def test_timing_and_time_zone_take_their_defaults(agent_files: AgentFiles) -> None:
    config = load_config(agent_files.write())

    assert config.timezone is None  # the site's, from the service
    assert config.settle_seconds == 10.0
    assert config.scan_interval_seconds == 5.0
    assert config.retry_initial_seconds == 1.0
    assert config.retry_max_seconds == 300.0
    assert config.cameras[0].segment_seconds == 60


def test_timing_and_time_zone_can_be_set(agent_files: AgentFiles) -> None:
    agent_files.data["agent"].update(
        timezone="America/New_York",
        settle_seconds=0,
        scan_interval_seconds=0.05,
        retry_initial_seconds=0.5,
        retry_max_seconds=600,
    )
    agent_files.data["cameras"][0]["segment_seconds"] = 900

    config = load_config(agent_files.write())

    assert config.timezone == "America/New_York"
    assert config.settle_seconds == 0.0
    assert config.scan_interval_seconds == 0.05
    assert config.retry_initial_seconds == 0.5
    assert config.retry_max_seconds == 600.0
    assert config.cameras[0].segment_seconds == 900


def test_pattern_gives_the_start_time(agent_files: AgentFiles) -> None:
    entrance, floor = load_config(agent_files.write()).cameras

    started = entrance.start_time_from_name("cam-entrance_20240131_235959.mp4")
    assert started == datetime(2024, 1, 31, 23, 59, 59)
    assert entrance.start_time_from_name("cam-floor_20240131_235959.mp4") is None  # another camera's file
    assert entrance.start_time_from_name("cam-entrance_20240231_000000.mp4") is None  # 31 February
    assert entrance.start_time_from_name("notes.txt") is None
    assert floor.start_time_from_name("cam-floor_20240131_235959.mp4") is None  # sidecar: not from the name


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost:8000/", "http://[::1]:9000", "http://127.8.9.10"],
)
def test_plain_http_is_allowed_for_loopback(agent_files: AgentFiles, url: str) -> None:
    agent_files.data["service"]["url"] = url

    assert load_config(agent_files.write()).service.url == url.rstrip("/")


def test_plain_http_elsewhere_needs_the_explicit_flag(agent_files: AgentFiles) -> None:
    agent_files.data["service"]["url"] = "http://nvr-gateway.lan:8080/cctv/"
    agent_files.data["service"]["allow_insecure_http"] = True

    config = load_config(agent_files.write())

    assert config.service.url == "http://nvr-gateway.lan:8080/cctv"
    assert config.service.allow_insecure_http is True


def test_ca_file_is_loaded_when_given(agent_files: AgentFiles, tls_files: TlsFiles) -> None:
    agent_files.data["service"]["ca_file"] = str(tls_files.cert)

    assert load_config(agent_files.write()).service.ca_file == tls_files.cert


# -- the token never shows ------------------------------------------------------------------------------


def test_token_never_appears_in_repr_or_str(
    agent_files: AgentFiles, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(agent_files.write())
    logging.getLogger("cctv_ingest.test").warning("config %s token %s", config, config.service.token)

    texts = [repr(config), str(config), repr(config.service), f"{config.service.token}", caplog.text]
    for text in texts:
        assert TOKEN not in text
        assert "Secret('********')" in text or "ServiceConfig(" in text
    assert "Secret('********')" in caplog.text


def test_token_never_appears_in_errors(agent_files: AgentFiles) -> None:
    agent_files.data["service"]["token"] = TOKEN  # the mistake of putting it inline
    agent_files.data["service"]["url"] = f"https://agent:{TOKEN}@cctv.example.org"
    agent_files.data["agent"]["site"] = TOKEN

    error = load_error(agent_files)

    assert set(keys_of(error)) == {"service.token", "service.url", "agent.site"}
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert "never inline" in str(error)


def test_secret_compares_without_revealing_and_refuses_pickling() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    with pytest.raises(TypeError):
        pickle.dumps(Secret("a"))


# -- files that cannot be read --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert keys_of(caught.value) == [str(path)]
    assert "file not found" in str(caught.value)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[service]\nurl = "https://x.example"\ntoken_file "/etc/token"\n', encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert keys_of(caught.value) == [str(path)]
    assert "not valid TOML" in str(caught.value)
    assert "line 3" in str(caught.value)


# -- each bad input names its key -----------------------------------------------------------------------


def _set(section: str, key: str, value: object) -> Mutation:
    def mutate(data: dict[str, Any], root: Path) -> None:
        data[section][key] = value

    return mutate


def _drop(section: str, key: str) -> Mutation:
    def mutate(data: dict[str, Any], root: Path) -> None:
        del data[section][key]

    return mutate


def _camera(index: int, key: str, value: object) -> Mutation:
    def mutate(data: dict[str, Any], root: Path) -> None:
        if value is None:
            del data["cameras"][index][key]
        else:
            data["cameras"][index][key] = value

    return mutate


def _update(section: str, **values: object) -> Mutation:
    def mutate(data: dict[str, Any], root: Path) -> None:
        data[section].update(values)

    return mutate


def _token_file(text: str | None, mode: int = 0o600) -> Mutation:
    def mutate(data: dict[str, Any], root: Path) -> None:
        path = root / "other-token"
        if text is not None:
            write_token(path, text, mode)
        data["service"]["token_file"] = str(path)

    return mutate


def _top(key: str, value: object) -> Mutation:
    def mutate(data: dict[str, Any], root: Path) -> None:
        if value is None:
            del data[key]
        else:
            data[key] = value

    return mutate


def _duplicate_camera(change: dict[str, str]) -> Mutation:
    def mutate(data: dict[str, Any], root: Path) -> None:
        twin = dict(data["cameras"][0], **change)
        data["cameras"][1] = twin

    return mutate


def _ca_file(content: str | None) -> Mutation:
    def mutate(data: dict[str, Any], root: Path) -> None:
        path = root / "ca.pem"
        if content is not None:
            path.write_text(content, encoding="utf-8")
        data["service"]["ca_file"] = str(path)

    return mutate


def _token_dir(data: dict[str, Any], root: Path) -> None:
    data["service"]["token_file"] = str(root)


BAD_INPUTS: list[tuple[str, Mutation, str, str]] = [
    # missing and unknown keys
    ("missing url", _drop("service", "url"), "service.url", "missing"),
    ("missing site", _drop("agent", "site"), "agent.site", "missing"),
    ("missing agent section", _top("agent", None), "agent", "missing"),
    ("missing cameras", _top("cameras", None), "cameras", "missing"),
    ("unknown agent key", _set("agent", "colour", "blue"), "agent.colour", "unknown key"),
    ("unknown top-level key", _top("logging", "debug"), "logging", "unknown key"),
    ("unknown camera key", _camera(1, "fps", 25), "cameras[1].fps", "unknown key"),
    ("missing camera folder", _camera(0, "folder", None), "cameras[0].folder", "missing"),
    # wrong types
    ("url not a string", _set("service", "url", 443), "service.url", "expected a string, got an integer"),
    (
        "timeout as text",
        _set("service", "timeout_seconds", "30"),
        "service.timeout_seconds",
        "expected a number",
    ),
    (
        "timeout as bool",
        _set("service", "timeout_seconds", True),
        "service.timeout_seconds",
        "expected a number",
    ),
    (
        "uploads as bool",
        _set("agent", "max_concurrent_uploads", True),
        "agent.max_concurrent_uploads",
        "expected an integer",
    ),
    (
        "uploads as float",
        _set("agent", "max_concurrent_uploads", 2.0),
        "agent.max_concurrent_uploads",
        "expected an integer",
    ),
    (
        "delete as text",
        _set("agent", "delete_after_upload", "no"),
        "agent.delete_after_upload",
        "expected true or false",
    ),
    ("sidecar as text", _camera(1, "sidecar", "yes"), "cameras[1].sidecar", "expected true or false"),
    ("service not a table", _top("service", "https://cctv.example.org"), "service", "expected a table"),
    ("cameras as a table", _top("cameras", {"id": "cam"}), "cameras", "expected [[cameras]] tables"),
    ("no cameras", _top("cameras", []), "cameras", "at least one"),
    # out of range
    (
        "no uploads",
        _set("agent", "max_concurrent_uploads", 0),
        "agent.max_concurrent_uploads",
        "between 1 and 16",
    ),
    (
        "too many uploads",
        _set("agent", "max_concurrent_uploads", 17),
        "agent.max_concurrent_uploads",
        "between 1 and 16",
    ),
    ("zero timeout", _set("service", "timeout_seconds", 0), "service.timeout_seconds", "more than 0"),
    ("negative timeout", _set("service", "timeout_seconds", -1.5), "service.timeout_seconds", "more than 0"),
    ("huge timeout", _set("service", "timeout_seconds", 601), "service.timeout_seconds", "at most 600"),
    ("site not a slug", _set("agent", "site", "Gym Central"), "agent.site", "site slug"),
    ("camera id with slash", _camera(0, "id", "cam/1"), "cameras[0].id", "letters, digits"),
    # duplicates
    (
        "duplicate camera id",
        _duplicate_camera({"folder": "/var/lib/nvr/other"}),
        "cameras[1].id",
        "already used by cameras[0]",
    ),
    (
        "duplicate folder",
        _duplicate_camera({"id": "cam-other"}),
        "cameras[1].folder",
        "already used by cameras[0]",
    ),
    # relative paths
    ("relative token file", _set("service", "token_file", "token"), "service.token_file", "absolute path"),
    ("relative spool", _set("agent", "spool_path", "spool.sqlite3"), "agent.spool_path", "absolute path"),
    ("relative folder", _camera(1, "folder", "nvr/cam-floor"), "cameras[1].folder", "absolute path"),
    ("home-relative folder", _camera(1, "folder", "~/nvr"), "cameras[1].folder", "absolute path"),
    ("relative ca file", _set("service", "ca_file", "ca.pem"), "service.ca_file", "absolute path"),
    ("empty folder", _camera(0, "folder", ""), "cameras[0].folder", "must not be empty"),
    ("spool is a directory", _set("agent", "spool_path", "/"), "agent.spool_path", "is a directory"),
    # URLs
    ("ftp url", _set("service", "url", "ftp://cctv.example.org"), "service.url", "scheme must be https"),
    ("no scheme", _set("service", "url", "cctv.example.org"), "service.url", "scheme must be https"),
    (
        "plain http to a remote host",
        _set("service", "url", "http://cctv.example.org"),
        "service.url",
        "loopback",
    ),
    ("no host", _set("service", "url", "https://"), "service.url", "no host"),
    ("bad port", _set("service", "url", "https://cctv.example.org:https"), "service.url", "not a valid URL"),
    ("query in url", _set("service", "url", "https://cctv.example.org/?x=1"), "service.url", "query"),
    # pattern and sidecar
    ("neither pattern nor sidecar", _camera(0, "pattern", None), "cameras[0].pattern", "missing"),
    ("pattern and sidecar", _camera(1, "pattern", "%Y%m%d%H%M.mp4"), "cameras[1].pattern", "not both"),
    (
        "pattern without minutes",
        _camera(0, "pattern", "%Y%m%d%H.mp4"),
        "cameras[0].pattern",
        "must contain %M",
    ),
    ("pattern with a path", _camera(0, "pattern", "sub/%Y%m%d%H%M.mp4"), "cameras[0].pattern", "file name"),
    (
        "unknown placeholder",
        _camera(0, "pattern", "{cam}%Y%m%d%H%M.mp4"),
        "cameras[0].pattern",
        "placeholder",
    ),
    (
        "unsupported directive",
        _camera(0, "pattern", "%Y%m%d%H%M%Z.mp4"),
        "cameras[0].pattern",
        "unsupported directive %Z",
    ),
    ("repeated directive", _camera(0, "pattern", "%Y%m%d%H%M%d.mp4"), "cameras[0].pattern", "repeats %d"),
    ("lone percent", _camera(0, "pattern", "%Y%m%d%H%M%"), "cameras[0].pattern", "lone '%'"),
    # the token file
    ("token file missing", _token_file(None), "service.token_file", "does not exist"),
    ("token file empty", _token_file(""), "service.token_file", "is empty"),
    ("token file blank", _token_file("  \n\n"), "service.token_file", "is empty"),
    ("token with a space", _token_file("two words\n"), "service.token_file", "one line"),
    ("token on two lines", _token_file("line-one\nline-two\n"), "service.token_file", "one line"),
    ("token file too big", _token_file("x" * 5000), "service.token_file", "larger than"),
    ("token file world-readable", _token_file(TOKEN, 0o644), "service.token_file", "chmod 600"),
    ("token file group-readable", _token_file(TOKEN, 0o640), "service.token_file", "mode 0640"),
    ("token file others-writable", _token_file(TOKEN, 0o602), "service.token_file", "group or others"),
    ("token file is a directory", _token_dir, "service.token_file", "not a regular file"),
    # the CA bundle
    ("ca file missing", _ca_file(None), "service.ca_file", "does not exist"),
    ("ca file not a string", _set("service", "ca_file", False), "service.ca_file", "expected a string"),
    ("ca file not PEM", _ca_file("not a certificate\n"), "service.ca_file", "no usable PEM"),
    # time zone, timing and segment length
    ("unknown time zone", _set("agent", "timezone", "Mars/Olympus"), "agent.timezone", "unknown time zone"),
    ("time zone as a path", _set("agent", "timezone", "/etc/localtime"), "agent.timezone", "IANA name"),
    ("empty time zone", _set("agent", "timezone", ""), "agent.timezone", "must not be empty"),
    ("time zone not a string", _set("agent", "timezone", 1), "agent.timezone", "expected a string"),
    ("negative settle", _set("agent", "settle_seconds", -1), "agent.settle_seconds", "at least 0"),
    ("huge settle", _set("agent", "settle_seconds", 3601), "agent.settle_seconds", "at most 3600"),
    ("settle as text", _set("agent", "settle_seconds", "10"), "agent.settle_seconds", "expected a number"),
    ("settle as bool", _set("agent", "settle_seconds", True), "agent.settle_seconds", "expected a number"),
    (
        "scan too often",
        _set("agent", "scan_interval_seconds", 0.01),
        "agent.scan_interval_seconds",
        "at least 0.05",
    ),
    (
        "nan scan",
        _set("agent", "scan_interval_seconds", float("nan")),
        "agent.scan_interval_seconds",
        "at least",
    ),
    ("zero retry", _set("agent", "retry_initial_seconds", 0), "agent.retry_initial_seconds", "more than 0"),
    (
        "retry max below initial",
        _update("agent", retry_initial_seconds=10, retry_max_seconds=5),
        "agent.retry_max_seconds",
        "at least retry_initial_seconds (10)",
    ),
    ("huge retry max", _set("agent", "retry_max_seconds", 86401), "agent.retry_max_seconds", "at most 86400"),
    ("zero segment", _camera(0, "segment_seconds", 0), "cameras[0].segment_seconds", "between 1 and 3600"),
    ("long segment", _camera(0, "segment_seconds", 3601), "cameras[0].segment_seconds", "between 1 and 3600"),
    (
        "float segment",
        _camera(0, "segment_seconds", 1.5),
        "cameras[0].segment_seconds",
        "expected an integer",
    ),
    (
        "segment length on a sidecar camera",
        _camera(1, "segment_seconds", 60),
        "cameras[1].segment_seconds",
        "only for pattern cameras",
    ),
    (
        "pattern with an unknown extension",
        _camera(0, "pattern", "{camera}_%Y%m%d_%H%M%S.h264"),
        "cameras[0].pattern",
        "must end in one of .mp4, .mkv, .ts, .avi, .mov",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "key", "fragment"),
    [pytest.param(mutation, key, fragment, id=name) for name, mutation, key, fragment in BAD_INPUTS],
)
def test_bad_input_is_refused_naming_the_key(
    agent_files: AgentFiles, mutation: Mutation, key: str, fragment: str
) -> None:
    mutation(agent_files.data, agent_files.root)

    error = load_error(agent_files)

    matching = [problem for problem in error.problems if problem.key == key]
    assert matching, f"no problem for {key}: {error}"
    assert any(fragment in problem.message for problem in matching), str(error)
    assert f"{key}: " in str(error)
    assert TOKEN not in str(error)


def test_every_problem_is_reported_together(agent_files: AgentFiles) -> None:
    data = copy.deepcopy(agent_files.data)
    data["service"]["url"] = "ftp://cctv.example.org"
    data["service"]["timeout_seconds"] = 0
    data["agent"]["max_concurrent_uploads"] = 99
    data["agent"]["spool_path"] = "spool.sqlite3"
    data["cameras"][1]["folder"] = "relative"
    data["cameras"][1]["colour"] = "red"
    agent_files.token_file.chmod(0o644)

    error = load_error(agent_files, data)

    assert keys_of(error) == [
        "service.url",
        "service.token_file",
        "service.timeout_seconds",
        "agent.spool_path",
        "agent.max_concurrent_uploads",
        "cameras[1].colour",
        "cameras[1].folder",
    ]
    text = str(error)
    assert text.startswith(f"{agent_files.root / 'agent.toml'}: 7 problems")
    for key in keys_of(error):
        assert f"\n  {key}: " in text


def test_url_errors_never_repeat_the_url() -> None:
    with pytest.raises(ValueError, match="user name or password") as caught:
        normalize_base_url("https://agent:hunter2@cctv.example.org")

    assert "hunter2" not in str(caught.value)


def test_the_example_in_deploy_loads(agent_files: AgentFiles) -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "agent.toml.example"
    text = example.read_text(encoding="utf-8")
    # Point its paths at the test's files; every key stays as the example writes it.
    text = text.replace("/etc/cctv-ingest/token", str(agent_files.token_file))
    text = text.replace("/var/lib/cctv-ingest/", str(agent_files.root / "spool") + "/")
    path = agent_files.root / "example.toml"
    path.write_text(text, encoding="utf-8")

    config = load_config(path)

    assert config.site == "gym-central"
    assert [camera.id for camera in config.cameras] == ["cam-entrance", "cam-floor"]
    assert config.cameras[0].start_time_from_name("cam-entrance_20261130-090000.mp4") == datetime(
        2026, 11, 30, 9
    )
    # The commented-out keys are valid too.
    uncommented = re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", text)
    path.write_text(uncommented.replace('"/etc/cctv-ingest/ca.pem"', '""'), encoding="utf-8")
    relaxed = load_config(path)
    assert relaxed.timezone == "UTC"
    assert relaxed.retry_max_seconds == 300
