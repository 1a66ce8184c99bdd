"""The command line the fake legacy/candidate servers share: `--port`, `--variant`, `--tag`.

Imported by the server scripts beside it (they run as scripts, so this folder is on their
path): each defines `make_app(variant)` and hands it to `serve_pair`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from aiohttp import web


def serve_pair(make_app: Callable[[str], web.Application]) -> None:
    """Serve `make_app(variant)` on 127.0.0.1 until stopped."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variant", choices=("legacy", "candidate"), default="legacy")
    parser.add_argument("--tag", default="", help="ignored: lets tests find their processes")
    args = parser.parse_args()
    web.run_app(
        make_app(args.variant), host="127.0.0.1", port=args.port, print=None, access_log=None
    )
