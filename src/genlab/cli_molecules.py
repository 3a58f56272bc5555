"""Old home of ``genlab design`` (kept for one release): the command is ``genlab.commands.design``."""
from .commands.design import *  # noqa: F401,F403
from .commands.design import cmd_design  # noqa: F401
