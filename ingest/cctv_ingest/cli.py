"""The ``cctv-ingest`` command.

Exit codes: 0 success; 1 the service could not be reached or refused the call; 2 the configuration or
the command line is wrong, or the command is not available in this release.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cctv_ingest import __version__
from cctv_ingest.client import ServiceClient, ServiceError
from cctv_ingest.config import AgentConfig, ConfigError, is_loopback_host, load_config

DEFAULT_CONFIG = Path("/etc/cctv-ingest/agent.toml")

EXIT_OK = 0
EXIT_SERVICE = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors; main() returns instead of exiting
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    command: Callable[[argparse.Namespace], int] = args.command
    return command(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cctv-ingest",
        description="The cctv-gov agent for a site's NVR: hands finished recordings to the service.",
    )
    parser.add_argument("--version", action="version", version=f"cctv-ingest {__version__}")
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="WARNING",
        help="log lines written to stderr (default: WARNING)",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> None:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help=f"the agent's configuration file (default: {DEFAULT_CONFIG})",
        )
        sub.set_defaults(command=handler)

    add("check-config", _check_config, "validate the configuration file and print a summary")
    add("whoami", _whoami, "ask the service who this agent is and which sites it may ingest for")
    add("run", _not_yet("run"), "watch the camera folders and upload segments (next release)")
    add("status", _not_yet("status"), "show the upload spool (next release)")
    return parser


def _load(path: Path) -> AgentConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        count = len(exc.problems)
        print(f"config has {count} problem{'' if count == 1 else 's'}: {exc.source}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    service = config.service
    print(f"config OK: {config.source}")
    print(f"  service     {service.url} (timeout {service.timeout_seconds:g}s)")
    print(f"  token       read from {service.token_file}")
    if service.ca_file is not None:
        print(f"  extra CAs   {service.ca_file}")
    print(f"  site        {config.site}")
    print(f"  spool       {config.spool_path}")
    print(f"  uploads     at most {config.max_concurrent_uploads} at a time")
    after = "delete the local file" if config.delete_after_upload else "keep the local file"
    print(f"  after upload {after}")
    print(f"  cameras     {len(config.cameras)}")
    for camera in config.cameras:
        source = "JSON sidecar" if camera.sidecar else f"pattern {camera.pattern}"
        print(f"    {camera.id}: {camera.folder} ({source})")
    if service.url.startswith("http://") and not _is_loopback_url(service.url):
        print(
            "warning: service.url uses plain http; the token and footage cross the network unencrypted",
            file=sys.stderr,
        )
    return EXIT_OK


def _whoami(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    client = ServiceClient.from_config(config.service)
    try:
        answer = client.whoami()
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SERVICE
    principal = answer.get("principal")
    grants = answer.get("grants")
    if not isinstance(principal, dict) or not isinstance(grants, list):
        print("error: unexpected_response: /v1/me did not give a principal and grants", file=sys.stderr)
        return EXIT_SERVICE
    print(f"principal   {_text(principal, 'name')} ({_text(principal, 'kind')}, id {_text(principal, 'id')})")
    print(f"service     {config.service.url}")
    if not grants:
        print("grants      none")
    else:
        print("grants")
        for grant in grants:
            if isinstance(grant, dict):
                role, slug, site_id = _text(grant, "role"), _text(grant, "site_slug"), _text(grant, "site_id")
                print(f"  {role} at {slug} (site id {site_id})")
    site_slugs = {grant.get("site_slug") for grant in grants if isinstance(grant, dict)}
    if config.site not in site_slugs:
        # The agent authenticated, but every upload for its site would be refused.
        print(f"error: no grant for this agent's site {config.site!r} (agent.site)", file=sys.stderr)
        return EXIT_SERVICE
    return EXIT_OK


def _not_yet(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        print(
            f"cctv-ingest {name}: not available in {__version__}; it arrives in the next release",
            file=sys.stderr,
        )
        return EXIT_USAGE

    return handler


def _text(mapping: dict[str, Any], key: str) -> str:
    value = mapping.get(key)
    return "?" if value is None else str(value)


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname
    return host is not None and is_loopback_host(host)
