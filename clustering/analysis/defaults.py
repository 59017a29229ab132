"""Defaults of the Analyze job's options, where both the options and the stages read them.

A leaf: it imports nothing, so the options (:mod:`clustering.analysis.options`) load without any stage, and each
stage uses the same value its option defaults to. The comments say how each value was chosen.
"""

from __future__ import annotations

# HDBSCAN's cluster_selection_method values the sweep runs. Excess of mass alone collapses to the root's first split
# when one large group sits far from the rest: bench/quality.py's art4apps clip-art with a background of photographs
# and wallpapers came out as 2-3 clusters (member ARI 0.000-0.004) at every min_cluster_size, as did its notebook
# recipe; the leaves of the same condensed trees gave 6 clusters at ARI 0.08-0.11 (3 layouts), and the selection rule
# picks between both kinds (cluster/select.py has the figures).
SELECTIONS = ("eom", "leaf")

# --- Reduction (space/reduce.py)
# Cluster space dimension. Evidence: 24 synthetic datasets (synthetic.make_blobs_on_sphere, n=4000, 512-D; default or
# hard clusters (cluster_spread=(0.9, 1.5), sibling_similarity=0.7); background as satellites of clusters (default) or
# unrelated (satellite_share=0); 10 clusters/10 % background, 20/25 %, 40/40 %; 2 seeds), min_samples=5, the default
# grid and select() defaults. ARI over true cluster members of the chosen setting, mean (min) and per family
# (easy/unrelated, easy/satellite, hard/unrelated, hard/satellite):
#   dims  2: 0.905 (0.689)   .930 .980 .844 .866   UMAP fit median 5.2 s
#   dims  5: 0.884 (0.663)   .939 .975 .842 .782                   5.8 s
#   dims 10: 0.890 (0.663)   .952 .980 .828 .800                   6.2 s
#   dims 15: 0.892 (0.663)   .950 .980 .851 .790                   7.2 s
# Background ending up as noise: 11-12 % at every dimension. The synthetic evidence is a wash (2-D wins when the
# background hugs clusters, 10-15 when it is unrelated); DESIGN's real-data measurement (2-D UMAP swallowed 89-98 % of
# injected noise) rules out 2; 10 ties 15 on accuracy and is cheaper (UMAP and the HDBSCAN tree grow with dims).
# Re-measured for issue 10 with the background test and the modularity selection (bench/quality.py tuning sets),
# member ARI of the automatic choice at 10 / 2 dims: emoji 0.189 / 0.175, glyphs 0.104 / 0.081, synthetic-hard
# 0.812 / 0.889, synthetic-20k 0.986 / 0.963: still a wash, so 10 stays.
DEFAULT_CLUSTER_DIMS = 10
# With more points than this (and more than 2 threads) the Analyze job's --parallel-layout auto runs UMAP's SGD on
# every thread, not reproducible run to run. Below it the two seeded single-threaded layouts side by side are
# reproducible and fast enough (200,000 points: clustering layout 160 s, the map beside it, 2 cores); with 2 threads
# they already use both.
PARALLEL_LAYOUT_MIN_POINTS = 250_000

# --- Background test (cluster/background.py)
# See the module docstring: 2.5 keeps > 80 % of diffuse background out of clusters and costs the emoji set 0.01 ARI.
DEFAULT_NOISE_Z = 2.5

# --- Selection (cluster/select.py)
# Evidence for the defaults (bench/quality.py's tuning sets; the tuxpaint set was held out of every choice). Member
# ARI of the chosen setting as a share of the best setting of the same sweep (min_samples 5, default grid, background
# dropped by cluster/background.py first). Issue 10, first round, emoji (10-D / 2-D cluster space) | hard synthetic
# (10-D / 2-D) | synthetic 20k | glyphs:
#   modularity           0.87 / 0.99 | 0.92 / 0.99 | 1.00 | 1.00   (min 0.87, mean 0.95)
#   silhouette_reduced   0.27 / 0.39 | 0.99 / 1.00 | 1.00 | 0.54   (the old default: 204 clusters for 46 on emoji)
#   dbcv                 0.26 / 0.44 | 0.99 / 0.79 | 1.00 | 0.38
#   mean_persistence 0.28 / 0.80 | 0.83 / 0.92; silhouette_cosine 0.27 / 0.39 | 0.83 / 0.79; stability of the labels
#   between neighbouring min_cluster_size values 0.28 / 0.80 | 0.83 / 0.95.
# Preferring fewer clusters among settings within 0.005 of the best modularity lost 0.26 on the synthetic 20k set.
# The silhouettes rank settings well where clusters are compact blobs (the synthetic generator) and reward
# over-splitting on real features; modularity on the original kNN graph punishes both splitting and merging, and
# costs O(n * k) from the graph the reduction already has. Noise budgets of 35 % and 50 % made the same choices; 50 %
# leaves room for collections with a large diffuse background once cluster/background.py has dropped it.
# Second round: the modularity landscape is flat on real features and rewards settings that shed members as noise, so
# near-ties decided and UMAP's layout changed the choice. 35 sweeps: 7 10-D layouts per set (UMAP's spectral
# initialisation; PCA initialisation, seeds 42, 1, 2; issue 13's layouts, seeds 42, 1, 2), emoji | glyphs | hard
# synthetic | synthetic 20k | art4apps:
#   modularity         0.87/0.78/0.81/0.49/0.40/0.74/0.43 | 0.98/0.94/0.79/0.98/0.87/0.80/0.87 | 0.92/1.00/0.99/1.00/
#                      0.92/0.81/1.00 | 1.00/0.99/1.00/1.00/1.00/1.00/1.00 | 0.73/1.00 x 6   (min 0.40, mean 0.888)
#   modularity_filled  0.91/0.99/1.00/0.85/0.81/0.97/0.98 | 1.00/0.92/1.00/0.98/1.00/0.80/0.92 | 0.99/1.00/1.00/1.00/
#     (cluster/modularity.py,   1.00/1.00/0.99 | 1.00/0.99/1.00/1.00/1.00/1.00/1.00 | 1.00 x 7   (min 0.80, mean 0.974)
#     resolution 0.8)
#   the same at resolution 1 (RESOLUTION below has the sweep of resolutions): min 0.50, mean 0.962; with
#   the background filled too (first 20 sweeps): min 0.85, mean 0.975 against 0.85 / 0.981 (it scores the background).
# Also measured and not better, on the first two layouts (10 sweeps), min / mean: a consensus among near-ties (the
# setting agreeing most by ARI with the others within 0.002-0.02 of the best modularity) 0.73 / 0.90-0.91; modularity
# of the clustered points at resolution 0.5-0.9 0.73-0.78 / 0.92-0.95; on the mutual kNN graph 0.42 / 0.82; on a graph
# weighted by UMAP-style memberships 0.44 / 0.89; counting noise points as singletons 0.42 / 0.86. On the first 20
# sweeps: filling only points with a clear majority (>= 25 % of their neighbours) 0.78 / 0.85 on emoji alone; the
# filled score averaged (or its minimum taken) over neighbouring min_cluster_size values 0.73 / 0.94. On 32 sweeps,
# resolution 1: dropping kNN edges shorter than 0.05 or 0.2 x the median core distance (near-duplicates) before
# scoring 0.50 / 0.958, 0.5 x 0.77 / 0.967. With min_samples 3 or 10 (not the default; resolution 1, first two
# layouts) the filled score ranged 0.44-1.00 on emoji, as modularity did (0.44-1.00).
# Third round, leaf settings beside the EOM ones in the same sweep (sweep.SELECTIONS), 3 layouts per set (seeds 42, 1,
# 2), chosen / best of the enlarged sweep: art4apps 1.00/1.00/1.00 (leaf, member ARI 0.116/0.101/0.102 against EOM's
# 0.051/0.050/0.088), art4apps-photos 0.94/1.00/1.00 (leaf, 0.101/0.110/0.084 where every EOM setting scored
# 0.000-0.004); emoji, glyphs, hard synthetic (3 layouts) and synthetic 20k (1) kept their EOM choice. Ties go to EOM.
# Not adopted (docs/performance.md, tuxpaint's miss): stability across layouts as the tie-break among settings within
# 0.01 of the best score (agreement with the same setting on two more seeds' layouts) kept the 15 tuning layouts at
# min 0.95 and lifted held-out tuxpaint from 0.70-0.85 to 0.85-0.89, but costs two more 10-D layouts; stability to
# sampling on the one layout (four 80 % subsamples) as that tie-break: tuning min 0.84, tuxpaint 0.80-0.89. DBCV in the
# original space (cosine, 5-NN core distances): 0.00 / 0.445 alone (emoji 211-215 clusters), 0.57 as that tie-break.
# modularity_filled needs the HDBSCAN labels before the background test: rows from metrics.score_setting carry it when
# given ``hdbscan_labels`` (cluster/cluster_points.py does); without them it is nan for every row and the rule falls
# back on its ties.
DEFAULT_MAX_NOISE = 0.5
DEFAULT_SCORE = "modularity_filled"
SCORES = (
    "modularity_filled",
    "modularity",
    "dbcv",
    "silhouette_cosine",
    "silhouette_reduced",
    "mean_persistence",
    "calinski_harabasz",
)

# --- Granularity of the choice (cluster/modularity.py)
# Resolution of the modularity (the weight of its expected term; 1 is Newman's). Member ARI of the chosen setting as a
# share of the best setting of its sweep, over 35 sweeps (5 tuning sets x 7 10-D layouts: UMAP's spectral and PCA
# initialisations and issue 13's layouts, 3 seeds each), min / mean: resolution 1.0 0.50 / 0.962, 0.9 0.50 / 0.958,
# 0.75-0.85 0.80 / 0.974 (the same choices throughout), 0.7 0.77 / 0.967, 0.6 0.00 / 0.822 (art4apps collapses into
# two clusters); modularity of the clustered points only (the rule before) 0.40 / 0.888. Emoji's subgroups gather
# tight groups (a gesture's skin tones) that Newman's modularity keeps apart: at 1.0 one layout chose 102 clusters where
# the best had 19 (0.50x); 0.8 chose 23 (0.98x) and cost one glyph layout 0.93x -> 0.80x (every glyph setting scores
# member ARI 0.08-0.10). The held-out set played no part. Re-measured with leaf settings in the sweep and the
# diffuse-cluster test (cluster/background.py), 15 layouts (emoji, art4apps, art4apps-photos, glyphs, hard synthetic;
# seeds 42, 1, 2): 0.8 min 0.94 / mean 0.99; 0.9 and 1.0 min 0.57 (one emoji layout), 0.83 on art4apps-photos. A run
# may set another (``--resolution``): 2.0 gives the held-out tuxpaint set its folders (23 clusters, 0.95-1.00x its best
# on three layouts against 0.70-0.85x) and splits emoji into 100+ clusters (docs/performance.md, "Granularity").
RESOLUTION = 0.8

# --- Original-space tests (cluster/split_test.py)
# Significance level: one false split in a hundred unimodal groups.
ALPHA = 0.01
# Minimum effect: a child's images are closer to their own child than to the other by a quarter of their spread.
MIN_EFFECT = 0.25

# --- Keywords (posts/keywords.py)
TOP_KEYWORDS = 10

# --- Names (posts/names.py)
# A name is flagged uncertain when the best label's probability beats the runner-up's by less than this.
NAME_MARGIN = 0.15

# --- Repost groups (posts/reposts.py)
# Cosine similarity of CLIP embeddings from which two images are repost candidates. Re-encoded and resized copies
# of one picture sit above 0.95 in CLIP space; 0.92 leaves room for light crops, the hash check keeps precision.
MIN_SIMILARITY = 0.92
# Similarity of perceptual hashes from which a candidate pair is one picture. Measured on generated images (128 px
# thumbnails as ingest writes them): re-encoded (JPEG q40-80) or resized (50-90 %) copies of posters and gradients
# 0.994-1.0, 3 % crops >= 0.98; unrelated posters <= 0.64, unrelated gradients <= 0.87. Fine periodic patterns
# (stripes, checkerboards) alias when resized and can fall below: a missed repost, never a false group.
MIN_HASH_SIMILARITY = 0.90

# --- Coordinated image sharing (posts/coordination.py; docs/coordination.md)
# Seconds within which two posts of one repost group count as posted together. CooRTweet's default is 10 s for
# retweets and shared URLs, one click each; an image repost is a download and a re-upload (the copies are
# re-encoded), which takes longer. 60 s holds the 30 s of the planted chains in tests/test_coordination.py; under
# activity spread evenly over a day, two given posts fall within 60 s of each other with probability 120/86,400.
WINDOW_SECONDS = 60.0
# Distinct repost groups a pair must post together to be an edge. CooRTweet's min_repetition default was 2. Among
# bench/coordination.py's 1,000,000 posts (organic part, seed 0: Zipf-like accounts, a 50,000-post viral group) chance
# alone made 1,601,440 pairs meet once, 3 twice and 1 three times (the two busiest accounts, 17,729 and 7,330 posts):
# 3 keeps nearly all chance meetings of busy accounts out, and the null model scores the rest.
MIN_REPETITION = 3
# Seeded rounds of the null model: the smallest p-value is 1/201 ~ 0.005.
NULL_ROUNDS = 200
# Later posts one post is paired with at most (the burst bound): a coordinated group of up to 100 accounts posting
# within one window is paired in full; bench/coordination.py's burst of 5,000 posts in 60 s costs 5,000 x 100 pairs
# instead of 12.5 million.
MAX_FOLLOWERS = 100

# --- Timelines (posts/timeline.py)
PERIODS = ("auto", "day", "week")
