/* Start-up, and the read-only window.explorer hook for tests and the curious. */
// ------------------------------------------------------------------------------------------------ start
$('title').textContent = META.title || 'Image map';
if (META.notice) {
  const notice = $('notice');
  notice.textContent = META.notice;
  notice.title = META.notice;
  notice.hidden = false;
}
restoreReview(); // the review actions this browser kept for this analysis, replayed before anything is drawn
refreshSettingText();
computeClusters(S.k);
renderLevels();
renderCrumbs();
renderClusterList();
initTimeline();
resize();
applyFilters();
updateStats();
if (RV.actions.length) setReviewing(true);
else showOverview();
updateReviewBar();
new ResizeObserver(() => resize()).observe(mapEl);
requestAnimationFrame(() => {
  frame();
  S.ready = true;
  TIMINGS.firstDraw = performance.now();
});

// ------------------------------------------------------------------------------------------------ read-only API
/** Read-only state for tests and the curious: counts, screen positions, colours, filters. */
window.explorer = Object.freeze({
  get ready() {
    return S.ready;
  },
  get idle() {
    return S.ready && !S.animating && !frameRequested && !LOD.settling;
  },
  get counts() {
    return Object.freeze({
      total: N,
      drawn: S.nDrawn,
      shown: S.nShown,
      rendered: drawCount,
      clusters: S.clusters.length,
      listed: S.clusters.filter((c) => c.inScope).length,
      noise: S.noise.length,
      selected: S.selection ? S.selection.length : 0,
      new: LATEST_BATCH > 0 ? BATCH_COUNTS[LATEST_BATCH] : 0,
      withThumbnail: nWithThumb,
      embeddedThumbnails: nEmbedded,
    });
  },
  /** Milliseconds since navigation start: data inflated, first frame drawn. */
  get timings() {
    return Object.freeze({ decoded: TIMINGS.decoded, firstDraw: TIMINGS.firstDraw ?? null });
  },
  get renderer() {
    return R.kind;
  },
  /** Level of detail: the points a full frame may draw, the current budget, and whether the last frame sampled. */
  get lod() {
    return Object.freeze({ full: LOD.full, budget: LOD.budget, sampled: LOD.sampled });
  },
  get clustering() {
    return VIEWS[S.k].column;
  },
  get clusterings() {
    return VIEWS.filter((v) => v.setting).map((v) => v.column);
  },
  get levels() {
    return LEVEL_VIEWS.map((k) => VIEWS[k].title.toLowerCase());
  },
  get level() {
    return VIEWS[S.k].depth === null ? null : VIEWS[S.k].title.toLowerCase();
  },
  /** The drill-down path: [{level, cluster}], coarse to fine. */
  get path() {
    return S.path.map((p) => Object.freeze({ level: VIEWS[p.view].title.toLowerCase(), cluster: p.label }));
  },
  get focus() {
    return S.focus;
  },
  get timeRange() {
    return S.time ? S.time.slice() : null;
  },
  get timeline() {
    if (!TL) return null;
    return Object.freeze({ period: TL.period, bins: TL.n, counts: Array.from(TL.counts), all: Array.from(TL.all) });
  },
  get account() {
    return S.account >= 0 ? ACCOUNTS.names[S.account] : null;
  },
  /** The group of accounts whose posts are kept (coordinated_group), or null. */
  get together() {
    return S.together >= 0 ? S.together : null;
  },
  /** "New since": the batch whose posts (and later ones') are kept, or null. */
  get since() {
    return S.since >= 0 ? S.since : null;
  },
  /** Review mode is on. */
  get reviewing() {
    return RV.active;
  },
  /** The review as its export (review.json) holds it: a copy, with `created` now. */
  get review() {
    return JSON.parse(JSON.stringify(reviewDocument()));
  },
  get hovered() {
    return S.hover;
  },
  get current() {
    return S.current;
  },
  get panel() {
    return S.panel;
  },
  get frames() {
    return S.frames;
  },
  get view() {
    return Object.freeze(Object.assign({}, S.view));
  },
  /** The labels the last overlay drew: [{label, covered}] (screen px its cluster's points cover), and the threshold. */
  get labels() {
    const drawn = (S.labelled || []).map((l) => Object.freeze({ ...l }));
    return Object.freeze({ drawn, visiblePx: LABEL_VISIBLE_PX });
  },
  /** Page (client) coordinates of point i, or null when it is not on screen. */
  screenPosition(i) {
    if (!(i >= 0 && i < N) || !VALID[i]) return null;
    const r = overlay.getBoundingClientRect();
    const [sx, sy] = toScreen(i);
    if (sx < 0 || sy < 0 || sx > W || sy > H) return null;
    return { x: r.left + sx, y: r.top + sy };
  },
  indexOf(id) {
    return IDS.values().indexOf(id);
  },
  isShown(i) {
    return !!S.matched[i];
  },
  colorOf(i) {
    return colorOf(i).slice();
  },
  clusterOf(i) {
    return S.labels[i];
  },
  clusterLabels() {
    return S.clusters.filter((c) => c.inScope).map((c) => c.label);
  },
  /** Point i's thumbnail URL if its image is in memory now (blob:), else null. */
  thumbnailSrc(i) {
    return thumbNow(i);
  },
  /** Where point i's image is: 'embedded', a sidecar chunk file name, or null. */
  thumbnailChunk(i) {
    if (!(THUMB_OF[i] >= 0)) return null;
    const c = TH.chunks[THUMB_CHUNK[THUMB_OF[i]]];
    return c.src === null ? 'embedded' : c.src;
  },
  palette(n) {
    return Array.from({ length: n }, (_, k) => paletteColor(k));
  },
});
