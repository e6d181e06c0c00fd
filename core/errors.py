class TransitionError(Exception):
    """A state transition that the current state does not allow; the message says why, in words
    for the person who asked. Each app's services raise their own subclass."""
