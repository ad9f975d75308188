"""Neighbour search over the store's vectors: the k-nearest-neighbour graph built block by block (:mod:`.knn`),
the assignment of vectors to IVF lists (:mod:`.assign`) and the spherical k-means that trains them
(:mod:`.kmeans`)."""
