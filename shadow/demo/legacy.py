"""Run the demo's legacy scoring server: `python -m shadow.demo.legacy --port 8002`."""

import sys

from shadow.demo.app import main

if __name__ == "__main__":
    sys.exit(main(["--flavour", "legacy", *sys.argv[1:]]))
