"""Old home of ``genlab compose`` (kept for one release): the command is ``genlab.commands.compose``."""
from .commands.compose import *  # noqa: F401,F403
from .commands.compose import cmd_compose  # noqa: F401
