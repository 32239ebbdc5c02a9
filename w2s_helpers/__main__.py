"""``python -m w2s_helpers``: the course's command line (:mod:`w2s_helpers.course.cli`)."""

import sys

from w2s_helpers.course.cli import main

if __name__ == "__main__":
    sys.exit(main())
