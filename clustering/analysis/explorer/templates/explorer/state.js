/* What the page can colour by (the levels of the hierarchy and the alternative settings), what it shows (the current
 * view's clusters, the drill-down path, the filters) and the filtering itself. */
// ------------------------------------------------------------------------------------------------ views
const LEVEL_NOUNS = { themes: 'Theme', clusters: 'Cluster', subclusters: 'Subcluster' };
const titleCase = (s) => s.charAt(0).toUpperCase() + s.slice(1);

/** Every labelling the page can show: hierarchy levels (coarse to fine) first, then the other sweep settings. */
const VIEWS = META.levels.map((lv, depth) => ({
  column: lv.column,
  title: titleCase(lv.name),
  noun: LEVEL_NOUNS[lv.name] || 'Cluster',
  depth,
  key: lv.labels,
  info: new Map(lv.clusters.map((c) => [c.cluster, c])),
  setting: null,
  labels: null,
}));
for (const c of META.clusterings) {
  const level = VIEWS.find((v) => v.column === c.column);
  if (level) level.setting = c;
  else {
    VIEWS.push({ column: c.column, title: c.label, noun: 'Cluster', depth: null, key: c.labels, info: new Map(),
      setting: c, labels: null }); // prettier-ignore
  }
}
const CHOSEN_VIEW = Math.max(0, VIEWS.findIndex((v) => v.column === 'cluster'));
/** More clusters than this and the page opens on the themes: an overview a person reads in one screen (issue 27). */
const OVERVIEW_ABOVE = 30;
const THEMES_VIEW = VIEWS.findIndex((v) => v.column === 'theme');
const OPENING_VIEW = THEMES_VIEW >= 0 && VIEWS[CHOSEN_VIEW].info.size > OVERVIEW_ABOVE ? THEMES_VIEW : CHOSEN_VIEW;

function labelsOf(k) {
  const v = VIEWS[k];
  if (!v.labels) v.labels = arrayOf(v.key);
  return v.labels;
}

/** Clusters (distinct labels >= 0) of view k. */
function clusterCount(k) {
  const v = VIEWS[k];
  if (v.count === undefined) {
    const labels = labelsOf(k);
    const seen = new Set();
    for (let i = 0; i < N; i++) if (labels[i] >= 0) seen.add(labels[i]);
    v.count = seen.size;
  }
  return v.count;
}

/** The next finer (+1) or coarser (-1) level of view k, or -1. */
function levelStep(k, step) {
  const depth = VIEWS[k].depth;
  if (depth === null) return -1;
  return VIEWS.findIndex((v) => v.depth === depth + step);
}

// ------------------------------------------------------------------------------------------------ state
const S = {
  k: OPENING_VIEW,
  labels: null,
  clusters: [],
  labelled: [], // the labels the last overlay drew (map.js drawLabels)
  byLabel: new Map(),
  noise: [],
  showNoise: true,
  showLabels: true,
  path: [], // drill-down: [{view, label}], coarse to fine; the map shows the last one's points
  focus: null, // a cluster label of the current view, -1 for noise, or null
  query: '',
  queryMask: null,
  selection: null, // Int32Array of point indices
  selMask: null,
  time: null, // [first, last] timeline bin, inclusive
  account: -1, // an account code, or -1
  together: -1, // a group of accounts that posted together (coordinated_group), or -1
  since: -1, // "New since": keep the posts of this batch and later (history.js), or -1
  matched: new Uint8Array(N),
  visible: new Uint8Array(N),
  nShown: 0,
  nDrawn: 0,
  anyFilter: false,
  hover: -1,
  current: -1,
  galleryHover: -1,
  view: { cx: 0, cy: 0, scale: 1 },
  home: { cx: 0, cy: 0, scale: 1 },
  animating: false,
  frames: 0,
  ready: false,
  panel: 'overview',
};

function computeClusters(k) {
  const labels = labelsOf(k);
  const view = VIEWS[k];
  const groups = new Map();
  const noise = [];
  for (let i = 0; i < N; i++) {
    if (!VALID[i]) continue;
    const l = labels[i];
    if (l < 0) {
      noise.push(i);
      continue;
    }
    let g = groups.get(l);
    if (!g) groups.set(l, (g = []));
    g.push(i);
  }
  const byProb = (a, b) => (prob(b) || 0) - (prob(a) || 0) || a - b;
  const clusters = [...groups.entries()]
    .map(([label, members]) => ({ label, members, info: view.info.get(label) || null }))
    .sort((a, b) => b.members.length - a.members.length || a.label - b.label);
  // A person's review (review.js) pins each cluster's colour, so a merge or split does not recolour the others.
  const pinned = view.colorIndex || null;
  clusters.forEach((c, rank) => {
    c.members.sort(byProb);
    c.rank = rank;
    c.color = paletteColor(pinned && pinned.has(c.label) ? pinned.get(c.label) : rank);
    let sx = 0;
    let sy = 0;
    let sp = 0;
    let sxx = 0;
    for (const i of c.members) {
      sx += X[i];
      sy += Y[i];
      sxx += X[i] * X[i] + Y[i] * Y[i];
      sp += prob(i) || 0;
    }
    c.cx = sx / c.members.length;
    c.cy = sy / c.members.length;
    // Root-mean-square distance of the members from the centroid, in map units: the cluster's extent on screen.
    c.spread = Math.sqrt(Math.max(0, sxx / c.members.length - c.cx * c.cx - c.cy * c.cy));
    c.meanProb = PROB ? sp / c.members.length : NaN;
  });
  noise.sort((a, b) => (OUTLIER ? OUTLIER[b] - OUTLIER[a] : 0) || a - b);
  S.labels = labels;
  S.clusters = clusters;
  S.byLabel = new Map(clusters.map((c) => [c.label, c]));
  S.noise = noise;
  applyScope();
}

/** Mark the clusters inside the drill-down scope (all of them without one); the list and the map labels show those. */
function applyScope() {
  const scope = S.path.length ? S.path[S.path.length - 1] : null;
  const scopeLabels = scope ? labelsOf(scope.view) : null;
  for (const c of S.clusters) c.inScope = !scope || scopeLabels[c.members[0]] === scope.label;
  S.scopedNoise = scope ? S.noise.filter((i) => scopeLabels[i] === scope.label) : S.noise;
}

function colorOf(i) {
  const l = S.labels[i];
  if (l < 0) return NOISE_RGB;
  return S.byLabel.get(l).color;
}

/** "Theme 3", or the cluster's name when it has one. */
function clusterName(label, k = S.k) {
  if (label < 0) return 'Noise';
  const info = VIEWS[k].info.get(label);
  return info && info.name ? info.name : `${VIEWS[k].noun} ${label}`;
}

/** "Theme 3" whatever the name. */
const clusterTag = (label, k = S.k) => (label < 0 ? 'Noise' : `${VIEWS[k].noun} ${label}`);

// ------------------------------------------------------------------------------------------------ filters
/** Recompute which points are drawn (noise on or off) and which match every filter; redraw. */
function applyFilters() {
  const scope = S.path.length ? S.path[S.path.length - 1] : null;
  const scopeLabels = scope ? labelsOf(scope.view) : null;
  const focus = S.focus;
  const q = S.queryMask;
  const codes = S.account >= 0 ? ACCOUNT_COL.codes : null;
  const together = S.together >= 0 ? TOGETHER : null;
  const since = S.since >= 0 ? BATCH : null;
  const bins = TL ? TL.bin : null;
  const [t0, t1] = S.time || [0, -1];
  if (TL) {
    TL.counts.fill(0);
    TL.all.fill(0);
  }
  S.anyFilter = !!scope || focus !== null || !!q || !!S.selMask || !!codes || !!together || !!since || !!S.time;
  let shown = 0;
  let drawn = 0;
  for (let i = 0; i < N; i++) {
    const isNoise = S.labels[i] < 0;
    const vis = VALID[i] && (!isNoise || S.showNoise) ? 1 : 0;
    let m =
      vis &&
      (!scope || scopeLabels[i] === scope.label) &&
      (focus === null || S.labels[i] === focus) &&
      (!q || q[i]) &&
      (!S.selMask || S.selMask[i]) &&
      (!codes || codes[i] === S.account) &&
      (!together || together[i] === S.together) &&
      (!since || since[i] >= S.since)
        ? 1
        : 0;
    if (bins && vis) {
      const b = bins[i];
      if (b >= 0) {
        TL.all[b]++;
        if (m) TL.counts[b]++;
      }
      if (S.time && !(b >= t0 && b <= t1)) m = 0;
    }
    S.visible[i] = vis;
    S.matched[i] = m;
    drawn += vis;
    shown += m;
  }
  S.nShown = shown;
  S.nDrawn = drawn;
  if (S.hover >= 0 && !S.matched[S.hover]) hideTooltip();
  uploadPoints();
  updateStatus();
  drawTimeline();
  requestDraw();
}

/** Points matching every filter, in index order. */
function matchedPoints() {
  const out = [];
  for (let i = 0; i < N; i++) if (S.matched[i]) out.push(i);
  return out;
}
