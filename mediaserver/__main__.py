import sys

from mediaserver.cli import main

if __name__ == "__main__":  # not when an engine worker process (spawn) imports it as __mp_main__
    sys.exit(main())
