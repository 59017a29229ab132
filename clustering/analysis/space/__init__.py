"""The spaces the analysis works in: the kNN graph of the embeddings, the clustering space, the 2-D map."""
