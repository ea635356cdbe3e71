"""The ``locker-agent scan`` command line: its options, help and exit codes.

Kept apart from :mod:`locker_agent.scan.command` so that building the parser for the
door commands does not load OpenCV and the decoders.
"""

from __future__ import annotations

import argparse
from typing import Final

EXIT_OK: Final = 0
EXIT_UNREADABLE: Final = 1
EXIT_USAGE: Final = 2

HELP: Final = """\
Decode QR and Code 128 symbols with the kiosk's decoder chain. Prints one line per payload
found — every payload, ours or not — or with --json one object per image:
{"file": ..., "payloads": [...], "ms": ...} (ms: decode time of that image), or
{"file": ..., "error": ...} for an image that cannot be read. With --camera, reads frames
until Ctrl-C (or --frames N) and prints each new payload once.
Exit codes: 0 every image/frame was read, even when no code was found in it (an empty
output says so); 1 an image could not be read or the camera could not be opened or was
lost; 2 usage error."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = commands.add_parser(
        "scan",
        help="decode QR / Code 128 from image files or a camera",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument("images", nargs="*", metavar="IMAGE", help="image files to decode")
    scan.add_argument(
        "--camera", metavar="DEVICE", help="camera index (0), /dev/video*, stream URL or video"
    )
    scan.add_argument("--frames", type=int, metavar="N", help="with --camera: stop after N")
    scan.add_argument("--json", action="store_true", help="one JSON object per image")
    scan.add_argument("-v", "--verbose", action="count", default=0)


def check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if bool(args.camera) == bool(args.images):
        parser.error("scan: give either IMAGE files or --camera DEVICE")
    if args.frames is not None and (args.camera is None or args.frames < 1):
        parser.error("scan: --frames N needs --camera and N >= 1")
