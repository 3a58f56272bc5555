"""Old home of ``genlab upscale`` (kept for one release): the command is ``genlab.commands.upscale``."""
from .commands.upscale import *  # noqa: F401,F403
from .commands.upscale import cmd_upscale  # noqa: F401
