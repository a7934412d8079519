"""The attacker's query budget, counted per campaign.

A campaign is one attacker: P' and every re-fit of it against a later cascade stage spend one budget,
and each adaptive P'' is an attacker of its own. The oracles a campaign queries (one per checkpoint, in
this process or in actors that restart) share its `QueryLedger`; with `load`/`save` the count lives in
storage (the run's workspace), is read before every charge and written before the answer leaves, so a
resume or a restarted host neither resets nor forgets it, and a host that dies can only over-count.
A campaign's fits run one after another (each re-fit needs the previous one), so charges never race.
"""

from __future__ import annotations

from collections.abc import Callable


class QueryBudgetExceeded(RuntimeError):
    """Raised before answering a query that would take a campaign past its budget."""


class QueryLedger:
    """Images campaign `campaign` has had answered, against its `budget` (None: unlimited)."""

    def __init__(
        self,
        campaign: str = "oracle",
        budget: int | None = None,
        *,
        load: Callable[[], int] | None = None,
        save: Callable[[int], None] | None = None,
    ) -> None:
        if budget is not None and budget < 1:
            raise ValueError(f"query_budget must be positive or None, got {budget}")
        self.campaign = campaign
        self.budget = budget
        self._load, self._save = load, save
        self._spent = 0

    def spent(self) -> int:
        return self._load() if self._load is not None else self._spent

    def charge(self, n: int) -> None:
        """Count `n` more images, or raise QueryBudgetExceeded (counting nothing) past the budget."""
        spent = self.spent()
        if self.budget is not None and spent + n > self.budget:
            raise QueryBudgetExceeded(
                f"query budget of attacker campaign {self.campaign!r} exhausted: "
                f"{spent} of {self.budget} used, {n} more asked"
            )
        if self._save is not None:
            self._save(spent + n)
        self._spent = spent + n
