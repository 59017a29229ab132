"""From the clustering space to the clusters a person sees: the HDBSCAN sweep, the background test, the scores, the
explained choice, the original-space tests, the granularity ladder and the hierarchy."""
