"""Old home of ``genlab interpolate`` (kept for one release): the command is ``genlab.commands.interpolate``."""
from .commands.interpolate import *  # noqa: F401,F403
from .commands.interpolate import cmd_interpolate  # noqa: F401
