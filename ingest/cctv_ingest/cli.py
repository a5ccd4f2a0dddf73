"""The ``cctv-ingest`` command.

Exit codes: 0 success; 1 the service could not be reached or refused the call, or (``run --once``) a file
was rejected or the queue was not emptied; 2 the configuration or the command line is wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from cctv_ingest import __version__
from cctv_ingest.client import ServiceClient, ServiceError
from cctv_ingest.config import AgentConfig, ConfigError, is_loopback_host, load_config
from cctv_ingest.progress import ProgressBar, ProgressLogHandler, human_bytes
from cctv_ingest.runner import AgentError, Runner, RunSummary, describe
from cctv_ingest.spool import Spool, SpoolError
from cctv_ingest.status import render as render_status
from cctv_ingest.status import report as status_report

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

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help=f"the agent's configuration file (default: {DEFAULT_CONFIG})",
        )
        sub.set_defaults(command=handler)
        return sub

    add("check-config", _check_config, "validate the configuration file and print a summary")
    add("whoami", _whoami, "ask the service who this agent is and which sites it may ingest for")
    run = add("run", _run, "watch the camera folders and upload finished segments until stopped")
    run.add_argument(
        "--once",
        action="store_true",
        help="backfill: queue the files that are complete now, upload them, register them in batches, "
        "and exit (0 when all are registered, 1 when any was rejected or some are still queued)",
    )
    run.add_argument(
        "--progress",
        action="store_true",
        help="show a progress bar on stderr (the default when stderr is a terminal)",
    )
    run.add_argument(
        "--give-up-after",
        type=_positive_seconds,
        metavar="SECONDS",
        help="with --once: stop retrying after this long (what is left stays queued for the next run)",
    )
    status = add(
        "status", _status, "show the upload queue from the local spool (works with the service down)"
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    return parser


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


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
    zone = config.timezone or "the site's, from the service"
    print(f"  time zone   {zone}")
    print(
        f"  timing      complete after {config.settle_seconds:g}s unchanged, scan every "
        f"{config.scan_interval_seconds:g}s, retry after {config.retry_initial_seconds:g}s "
        f"doubling up to {config.retry_max_seconds:g}s"
    )
    print(f"  cameras     {len(config.cameras)}")
    for camera in config.cameras:
        source = (
            "JSON sidecar"
            if camera.sidecar
            else f"pattern {camera.pattern}, segments of at most {camera.segment_seconds}s"
        )
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


def _run(args: argparse.Namespace) -> int:
    if args.give_up_after is not None and not args.once:
        print("error: --give-up-after needs --once", file=sys.stderr)
        return EXIT_USAGE
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    progress = None
    if args.progress or sys.stderr.isatty():
        progress = ProgressBar(sys.stderr, tty=sys.stderr.isatty())
    runner = Runner(config, once=args.once, give_up_after=args.give_up_after, progress=progress)
    with _progress_logging(progress), _stop_on_signals(runner):
        try:
            summary = runner.run()
        except AgentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_SERVICE
        except SpoolError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_SERVICE
    if not args.once:
        return EXIT_OK
    _print_summary(summary)
    return summary.exit_code


def _print_summary(summary: RunSummary) -> None:
    print(f"registered  {summary.registered} segment(s), {human_bytes(summary.registered_bytes)}")
    if summary.rejected:
        print(f"rejected    {len(summary.rejected)} file(s), kept on disk (see cctv-ingest status):")
        for line in describe(summary.rejected):
            print(f"  {line}")
    if summary.waiting_files:
        print(
            f"not ready   {summary.waiting_files} file(s) still being written or settling; left for the next run"
        )
    if summary.pending_files:
        why = "stopped" if summary.stopped else "gave up" if summary.gave_up else "not finished"
        print(
            f"queued      {summary.pending_files} file(s), {human_bytes(summary.pending_bytes)} "
            f"still in the spool ({why}); the next run resumes them"
        )


@contextmanager
def _progress_logging(progress: ProgressBar | None) -> Iterator[None]:
    """While the bar is shown, log lines are written above it."""
    if progress is None:
        yield
        return
    root = logging.getLogger()
    previous = list(root.handlers)
    handler = ProgressLogHandler(progress)
    if previous and previous[0].formatter is not None:
        handler.setFormatter(previous[0].formatter)
    for old in previous:
        root.removeHandler(old)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for old in previous:
            root.addHandler(old)


@contextmanager
def _stop_on_signals(runner: Runner) -> Iterator[None]:
    """SIGTERM and SIGINT stop the runner gracefully (a second one while stopping changes nothing: the
    spool is consistent at every instant, so a SIGKILL is safe too)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        # Setting events from a signal handler can deadlock on their internal lock; a thread cannot.
        threading.Thread(target=runner.request_stop, name="cctv-ingest-stop", daemon=True).start()

    installed: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for which in (signal.SIGTERM, signal.SIGINT):
            installed[which] = signal.signal(which, handle)
    try:
        yield
    finally:
        for which_number, previous in installed.items():
            signal.signal(which_number, previous)


def _status(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    try:
        spool = Spool.open_read_only(config.spool_path)
    except FileNotFoundError:
        if args.json:
            print(json.dumps({"spool": str(config.spool_path), "exists": False}))
        else:
            print(f"no spool yet at {config.spool_path}: the agent has not run")
        return EXIT_OK
    except SpoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SERVICE
    with spool:
        try:
            now = time.time()
            data = status_report(spool, now)
        except sqlite3.Error as exc:  # a damaged or locked file
            print(f"error: cannot read the spool {config.spool_path}: {exc}", file=sys.stderr)
            return EXIT_SERVICE
    if args.json:
        print(json.dumps({"exists": True, **data}, indent=2))
    else:
        print(render_status(data, now))
    return EXIT_OK


def _text(mapping: dict[str, Any], key: str) -> str:
    value = mapping.get(key)
    return "?" if value is None else str(value)


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname
    return host is not None and is_loopback_host(host)
