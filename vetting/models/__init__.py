from vetting.models.intake import *  # noqa: F403
from vetting.models.review import *  # noqa: F403
