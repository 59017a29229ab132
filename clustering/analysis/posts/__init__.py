"""What the posts of each cluster say: their columns, names, keywords, timelines, accounts, repost groups, lineage
and coordination."""
