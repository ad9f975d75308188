"""Grouping: pair scoring, the same-story model, candidate graph, non-chaining linkage, stable group ids."""

from .groups import ArticleFacts, Group, build_groups, cluster_labels
from .linkage import SparseAverageLinkage
from .model import StoryModel
from .scoring import TIERS, PairEvidence, Thresholds

__all__ = ["TIERS", "ArticleFacts", "Group", "PairEvidence", "SparseAverageLinkage", "StoryModel", "Thresholds",
           "build_groups", "cluster_labels"]
