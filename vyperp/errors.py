"""The root of every error vyperp raises, so a caller (the command lines, a bot) can catch the
project's refusals in one clause and let programming errors through."""


class VyperpError(Exception):
    """A request vyperp refuses, or a state of the chain or the files it cannot work with."""
