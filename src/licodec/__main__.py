"""``python -m licodec``: the ``licodec`` command."""

import sys

from licodec.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
