"""Demo organisations and applications for seed_demo."""


def demo_applications_seed() -> list[str]:
    return []
