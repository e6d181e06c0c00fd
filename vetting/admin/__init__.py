from vetting.admin import intake, review  # noqa: F401  (each module registers its pages)
