"""``python -m components``: the project's command line (see ``components.cli``)."""

import sys

from components.cli import main

if __name__ == "__main__":
    sys.exit(main())
