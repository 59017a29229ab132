/* A person's review of the chosen clustering (the `cluster` column, the "clusters" level): rename a cluster, merge
 * clusters, split a lasso selection off as a new cluster, send a selection to noise. The actions are what a review is:
 * the page replays them on the analysis' labels after each change (so an undo is exact), keeps them in this browser
 * (localStorage, keyed by the analysis) and exports them as review.json, the format docs/follow.md fixes and
 * `jobs/analyze.py --review` applies. The controls are in reviewui.js. */
// ------------------------------------------------------------------------------------------------ review state
const REVIEW_VIEW = CHOSEN_VIEW;
const REVIEW_MEMBERS = 1000; // ids listed per cluster of a rename or merge (docs/follow.md): the first in sorted order
const REVIEW_NAME_CHARS = 200;
const RV = {
  active: false,
  actions: [], // {doc: the action as review.json holds it, rows: Int32Array (split, noise); replay sets size, label}
  picked: [], // clusters picked for a merge, in the order picked (the first keeps its label)
  base: null, // the analysis' labels, before any action
  baseInfo: null,
  baseColors: null, // label -> palette index as the analysis coloured it
  firstNew: 0, // the label the first split gets: one past every label of the analysis
  touched: new Uint8Array(0), // rows whose label an action changed
  store: undefined, // localStorage, or null where the browser refuses it
  key: null,
  note: '', // where the actions are kept, or why they are not
};

/** Whether the review controls act now: review mode on, the chosen level shown. */
const reviewing = () => RV.active && S.k === REVIEW_VIEW;
const reviewTouched = (i) => RV.touched.length > 0 && RV.touched[i] === 1;

/** Python's order of strings, by code point (docs/follow.md sorts members with `sorted`): JavaScript's `<` compares
 * UTF-16 code units, which puts U+10000 and above (surrogate pairs) before U+E000-U+FFFF. */
function codePointCompare(a, b) {
  const n = Math.min(a.length, b.length);
  for (let j = 0; j < n; j++) {
    const x = a.charCodeAt(j);
    const y = b.charCodeAt(j);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** A name as review.json takes it: trimmed, at most REVIEW_NAME_CHARS characters; '' for none. */
const cleanName = (name) => (name || '').trim().slice(0, REVIEW_NAME_CHARS);

function ensureBase() {
  if (RV.base) return;
  const view = VIEWS[REVIEW_VIEW];
  RV.base = Int32Array.from(labelsOf(REVIEW_VIEW));
  RV.baseInfo = view.info;
  const sizes = new Map();
  let top = -1;
  for (let i = 0; i < N; i++) {
    const l = RV.base[i];
    if (l > top) top = l;
    if (l >= 0 && VALID[i]) sizes.set(l, (sizes.get(l) || 0) + 1);
  }
  for (const l of view.info.keys()) top = Math.max(top, l);
  RV.firstNew = top + 1;
  // The ranks computeClusters gives the analysis' clusters (largest first): their colours stay through the review.
  const ranked = [...sizes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  RV.baseColors = new Map(ranked.map(([l], rank) => [l, rank]));
}

function setReviewName(info, label, name) {
  const entry = info.get(label) || { cluster: label, parent: -1, keywords: [], mixed: [] };
  info.set(label, { ...entry, name, name_source: 'review', uncertain: false, reviewed: true });
}

/** The chosen level's labels, names and colours: the analysis' with every action applied in order. */
function replayReview() {
  ensureBase();
  const labels = Int32Array.from(RV.base);
  const info = new Map([...RV.baseInfo].map(([l, c]) => [l, { ...c }]));
  const colors = new Map(RV.baseColors);
  const touched = new Uint8Array(N);
  let next = RV.firstNew;
  const relabel = (rows, label) => {
    for (const i of rows) {
      if (labels[i] !== label) touched[i] = 1;
      labels[i] = label;
    }
  };
  for (const a of RV.actions) {
    const d = a.doc;
    if (d.kind === 'rename') {
      a.size = 0;
      for (let i = 0; i < N; i++) if (labels[i] === d.cluster) a.size++;
      setReviewName(info, d.cluster, d.name);
    } else if (d.kind === 'merge') {
      const keep = d.clusters[0];
      const gone = new Set(d.clusters.slice(1));
      a.size = 0;
      for (let i = 0; i < N; i++) {
        if (labels[i] === keep) a.size++;
        if (!gone.has(labels[i])) continue;
        labels[i] = keep;
        touched[i] = 1;
        a.size++;
      }
      for (const l of gone) info.delete(l);
      if (d.name) setReviewName(info, keep, d.name);
      else if (info.has(keep)) info.set(keep, { ...info.get(keep), reviewed: true });
      else info.set(keep, { cluster: keep, parent: -1, keywords: [], mixed: [], reviewed: true });
    } else if (d.kind === 'split') {
      a.size = a.rows.length;
      a.label = next++;
      colors.set(a.label, colors.size);
      relabel(a.rows, a.label);
      info.set(a.label, { cluster: a.label, parent: -1, keywords: [], mixed: [], reviewed: true, name: d.name,
        name_source: d.name ? 'review' : null }); // prettier-ignore
    } else if (d.kind === 'noise') {
      a.size = a.rows.length;
      relabel(a.rows, -1);
    }
  }
  const view = VIEWS[REVIEW_VIEW];
  view.labels = labels;
  view.info = info;
  view.count = undefined;
  view.colorIndex = RV.actions.length ? colors : null;
  RV.touched = RV.actions.length ? touched : new Uint8Array(0);
}

// ------------------------------------------------------------------------------------------------ actions
/** The ids of cluster `label`'s rows now, in Python's sorted order: the first REVIEW_MEMBERS. */
function membersOf(label) {
  const labels = labelsOf(REVIEW_VIEW);
  const ids = [];
  for (let i = 0; i < N; i++) if (labels[i] === label) ids.push(idOf(i));
  return ids.sort(codePointCompare).slice(0, REVIEW_MEMBERS);
}

const idsOf = (rows) => Array.from(rows, idOf).sort(codePointCompare);

function reviewRename(label, name) {
  const clean = cleanName(name);
  if (label < 0 || !clean) return;
  addReviewAction({ doc: { kind: 'rename', cluster: label, members: membersOf(label), name: clean } });
  showCluster(label);
}

function reviewMerge(labels, name) {
  if (labels.length < 2) return;
  const members = labels.map((l) => membersOf(l));
  RV.picked = [];
  addReviewAction({ doc: { kind: 'merge', clusters: labels.slice(), members, name: cleanName(name) || null } });
  showCluster(labels[0]);
}

/** The lasso selection becomes one new cluster (`name` optional), or noise. */
function reviewSelection(kind, name) {
  if (!S.selection || !S.selection.length) return;
  const rows = Int32Array.from(S.selection);
  const doc = kind === 'split' ? { kind, ids: idsOf(rows), name: cleanName(name) || null } : { kind, ids: idsOf(rows) };
  S.selection = null;
  S.selMask = null;
  const action = { doc, rows };
  addReviewAction(action);
  if (kind === 'split' && S.byLabel.has(action.label)) showCluster(action.label);
  else showReview();
}

function addReviewAction(action) {
  RV.actions.push(action);
  applyReview();
  saveReview();
}

function undoReview() {
  if (!RV.actions.length) return;
  RV.actions.pop();
  applyReview();
  saveReview();
  showReview();
}

function discardReview() {
  RV.actions = [];
  RV.picked = [];
  applyReview();
  saveReview();
  showReview();
}

/** Replay the actions and redraw what shows the chosen level: map, list, counts, the settings menu. */
function applyReview() {
  replayReview();
  const labels = labelsOf(REVIEW_VIEW);
  const present = new Set(labels);
  RV.picked = RV.picked.filter((l) => present.has(l));
  if (S.k === REVIEW_VIEW && S.focus !== null && S.focus >= 0 && !present.has(S.focus)) S.focus = null;
  refreshView();
  refreshSettingText();
}

/** The review as review.json holds it (docs/follow.md). */
function reviewDocument() {
  return {
    format: 'clipcluster-review',
    version: 1,
    created: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    level: 'clusters',
    analysis: { input: HISTORY.input ?? null, title: META.title ?? null }, // metrics.json input: a path or a list
    actions: RV.actions.map((a) => a.doc),
  };
}

function exportReview() {
  const blob = new Blob([`${JSON.stringify(reviewDocument(), null, 2)}\n`], { type: 'application/json' });
  const a = el('a', '', null, { download: 'review.json' });
  a.href = URL.createObjectURL(blob);
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ------------------------------------------------------------------------------------------------ kept in the browser
/** localStorage key of this analysis: its input, title, size and a hash (FNV-1a) of its ids and labels, so a
 * rebuilt or updated analysis does not pick up the actions made on another one. */
function reviewKey() {
  let h = 0x811c9dc5;
  const mix = (v) => {
    h = Math.imul(h ^ v, 16777619) >>> 0;
  };
  for (let i = 0; i < N; i++) mix(RV.base[i]);
  const ids = IDS.rawText();
  for (let j = 0; j < ids.length; j++) mix(ids.charCodeAt(j));
  const info = META.info || {};
  return `clipcluster-review:${info.input ?? ''}:${META.title ?? ''}:${N}:${h.toString(16)}`;
}

function reviewStore() {
  if (RV.store !== undefined) return RV.store;
  try {
    RV.store = window.localStorage;
    RV.key = reviewKey();
    RV.note = 'in this browser, for this analysis, until you discard them';
  } catch (err) {
    RV.store = null; // a sandboxed frame (a notebook) or a browser that refuses storage for file: pages
    RV.note = `not kept in this browser (${err && err.name ? err.name : 'storage refused'}): export them to keep them`;
  }
  return RV.store;
}

function saveReview() {
  const store = reviewStore();
  if (!store) return;
  try {
    if (RV.actions.length) store.setItem(RV.key, JSON.stringify({ actions: RV.actions.map((a) => a.doc) }));
    else store.removeItem(RV.key);
    RV.note = 'in this browser, for this analysis, until you discard them';
  } catch (err) {
    const why = err && err.name ? err.name : 'storage full';
    RV.note = `too big to keep in this browser (${why}): export them to keep them`;
  }
}

/** The actions this browser kept for this analysis, replayed (at start-up); a damaged entry is dropped and said. */
function restoreReview() {
  ensureBase();
  const store = reviewStore();
  if (!store) return;
  let docs;
  try {
    docs = JSON.parse(store.getItem(RV.key) || 'null');
  } catch (err) {
    docs = null;
  }
  if (!docs || !Array.isArray(docs.actions) || !docs.actions.length) return;
  const rowOf = new Map(IDS.values().map((id, i) => [id, i]));
  const names = (d) => d.name === null || d.name === undefined || typeof d.name === 'string';
  const restored = [];
  for (const d of docs.actions) {
    const ids = d && Array.isArray(d.ids) ? d.ids : null;
    const ok =
      d &&
      ((d.kind === 'rename' && Number.isInteger(d.cluster) && typeof d.name === 'string') ||
        (d.kind === 'merge' && Array.isArray(d.clusters) && d.clusters.every(Number.isInteger) && names(d)) ||
        ((d.kind === 'split' || d.kind === 'noise') && ids && names(d)));
    if (!ok) {
      RV.note = 'a damaged entry in this browser was dropped';
      break;
    }
    const rows = ids ? Int32Array.from(ids.map((id) => rowOf.get(id)).filter((i) => i !== undefined)) : null;
    restored.push({ doc: d, rows });
  }
  RV.actions = restored;
  replayReview();
}
