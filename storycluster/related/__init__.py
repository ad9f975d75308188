"""Related lists: a query's plan (:mod:`.plan`), the answer drawn from it (:mod:`.answer`), and the plans kept
in the store for every article (:mod:`.stored`)."""

from .answer import answer, wanted
from .plan import Entry, Owner, Plan, Query, plans
from .stored import load_plan

__all__ = ["Entry", "Owner", "Plan", "Query", "answer", "load_plan", "plans", "wanted"]
