"""A task's class for the learned route (issue 37): the band of its complexity, the one thing
every task carries that routing already reads. Three bands, so that each gathers evidence
quickly: 1-3 (small), 4-6 (medium), 7-10 (large)."""

BANDS = ((1, 3), (4, 6), (7, 10))


def task_class(complexity: int) -> str:
    """'c1-3', 'c4-6' or 'c7-10'; a complexity outside 1..10 falls in the nearest band."""
    for low, high in BANDS:
        if complexity <= high:
            return f"c{low}-{high}"
    low, high = BANDS[-1]
    return f"c{low}-{high}"


CLASSES = tuple(f"c{low}-{high}" for low, high in BANDS)
