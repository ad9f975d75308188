"""Grouping: pair scoring, candidate graph, non-chaining linkage, groups with stable ids."""

from .groups import ArticleFacts, Group, build_groups, cluster_labels
from .linkage import SparseAverageLinkage
from .scoring import TIERS, PairEvidence, Thresholds

__all__ = ["TIERS", "ArticleFacts", "Group", "PairEvidence", "SparseAverageLinkage", "Thresholds",
           "build_groups", "cluster_labels"]
