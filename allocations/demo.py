"""Demo allocations and usage for seed_demo."""


def demo_allocations_seed() -> list[str]:
    return []
