/* Start-up, and the read-only window.explorer hook for tests and the curious. */
// ------------------------------------------------------------------------------------------------ start
$('title').textContent = D.title || 'Image map';
if (D.notice) {
  const notice = $('notice');
  notice.textContent = D.notice;
  notice.title = D.notice;
  notice.hidden = false;
}
computeClusters(S.k);
renderClusterList();
resize();
applyFilters();
updateStats();
showOverview();
new ResizeObserver(() => resize()).observe(mapEl);
requestAnimationFrame(() => {
  frame();
  S.ready = true;
});

// ------------------------------------------------------------------------------------------------ read-only API
/** Read-only state for tests and the curious: counts, screen positions, colours. */
window.explorer = Object.freeze({
  get ready() {
    return S.ready;
  },
  get idle() {
    return S.ready && !S.animating && !frameRequested;
  },
  get counts() {
    return Object.freeze({
      total: N,
      drawn: S.nDrawn,
      shown: S.nShown,
      rendered: drawCount,
      clusters: S.clusters.length,
      noise: S.noise.length,
      selected: S.selection ? S.selection.length : 0,
      withThumbnail: nWithThumb,
      embeddedThumbnails: THUMBS.length,
    });
  },
  get renderer() {
    return R.kind;
  },
  get clustering() {
    return CLUSTERINGS[S.k].column;
  },
  get clusterings() {
    return CLUSTERINGS.map((c) => c.column);
  },
  get focus() {
    return S.focus;
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
  /** Page (client) coordinates of point i, or null when it is not on screen. */
  screenPosition(i) {
    if (!(i >= 0 && i < N) || !VALID[i]) return null;
    const r = overlay.getBoundingClientRect();
    const [sx, sy] = toScreen(i);
    if (sx < 0 || sy < 0 || sx > W || sy > H) return null;
    return { x: r.left + sx, y: r.top + sy };
  },
  indexOf(id) {
    return IDS.indexOf(id);
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
    return S.clusters.map((c) => c.label);
  },
  thumbnailSrc(i) {
    return thumbSrc(i);
  },
  palette(n) {
    return Array.from({ length: n }, (_, k) => paletteColor(k));
  },
});
