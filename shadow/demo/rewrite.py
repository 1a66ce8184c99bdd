"""Run the demo's rewrite scoring server: `python -m shadow.demo.rewrite --port 3000`."""

import sys

from shadow.demo.app import main

if __name__ == "__main__":
    sys.exit(main(["--flavour", "rewrite", *sys.argv[1:]]))
