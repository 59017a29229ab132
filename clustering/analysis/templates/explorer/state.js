/* What the page shows: the chosen clustering's clusters, the filters (focus, search, selection) and the view. */
// ------------------------------------------------------------------------------------------------ state
const S = {
  k: Math.max(0, CLUSTERINGS.findIndex((c) => c.chosen)),
  labels: null,
  clusters: [],
  byLabel: new Map(),
  noise: [],
  showNoise: true,
  showLabels: true,
  focus: null, // a cluster label, -1 for noise, or null
  query: '',
  selection: null, // Int32Array of point indices
  selMask: null,
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
    .map(([label, members]) => ({ label, members }))
    .sort((a, b) => b.members.length - a.members.length || a.label - b.label);
  clusters.forEach((c, rank) => {
    c.members.sort(byProb);
    c.rank = rank;
    c.color = paletteColor(rank);
    let sx = 0;
    let sy = 0;
    let sp = 0;
    for (const i of c.members) {
      sx += X[i];
      sy += Y[i];
      sp += prob(i) || 0;
    }
    c.cx = sx / c.members.length;
    c.cy = sy / c.members.length;
    c.meanProb = PROB ? sp / c.members.length : NaN;
  });
  noise.sort((a, b) => (OUTLIER ? OUTLIER[b] - OUTLIER[a] : 0) || a - b);
  S.labels = labels;
  S.clusters = clusters;
  S.byLabel = new Map(clusters.map((c) => [c.label, c]));
  S.noise = noise;
}

function colorOf(i) {
  const l = S.labels[i];
  if (l < 0) return NOISE_RGB;
  return S.byLabel.get(l).color;
}

function clusterName(label) {
  return label < 0 ? 'Noise' : `Cluster ${label}`;
}

// ------------------------------------------------------------------------------------------------ filters
function applyFilters() {
  const q = S.query.trim().toLowerCase();
  if (q) ensureHaystack();
  const focus = S.focus;
  S.anyFilter = focus !== null || !!q || !!S.selMask;
  let shown = 0;
  let drawn = 0;
  for (let i = 0; i < N; i++) {
    const isNoise = S.labels[i] < 0;
    const vis = VALID[i] && (!isNoise || S.showNoise) ? 1 : 0;
    const m =
      vis &&
      (focus === null || S.labels[i] === focus) &&
      (!q || haystack[i].includes(q)) &&
      (!S.selMask || S.selMask[i])
        ? 1
        : 0;
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
  requestDraw();
}
