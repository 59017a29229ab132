/* Updates and history (docs/follow.md): the batch that added each post (`batch`: 0 the first analysis, k the k-th
 * update or re-analysis), how its label was set (`label_source`), the "New since" filter, and the markers of clusters
 * that are new in the latest batch or were reviewed by a person. A folder without them shows none of it. */
// ------------------------------------------------------------------------------------------------ history
const HISTORY = META.history || { batch: null, latest: 0, label_source: null, batches: [] };
const BATCH = arrayOf(HISTORY.batch); // -1: unknown
const LATEST_BATCH = BATCH ? HISTORY.latest : 0;
const LABEL_SOURCE = HISTORY.label_source
  ? makeColumn({ name: 'label_source', kind: 'string', ...HISTORY.label_source })
  : null;
const BATCHES = new Map(HISTORY.batches.map((b) => [b.batch, b]));
/** Posts added by each batch 0..LATEST_BATCH. */
const BATCH_COUNTS = (function counts() {
  const out = new Int32Array(LATEST_BATCH + 1);
  if (BATCH) for (let i = 0; i < N; i++) if (BATCH[i] >= 0) out[BATCH[i]]++;
  return out;
})();
/** How a post's label was set, in words (docs/follow.md `label_source`). */
const SOURCE_WORDS = {
  clustering: 'set by the clustering (or carried over from the previous analysis)',
  assigned: 'placed by the update\u2019s nearest neighbours',
  new_cluster: 'clustered among the update\u2019s posts that fit no existing cluster',
  review: 'set by a person\u2019s review',
};
const NEW_CLUSTER_WORDS = 'appeared in the latest batch: born in it, or matched to no cluster of the previous analysis';
const REVIEWED_WORDS = 'a person renamed it or changed its members';

/** "update 2", "re-analysis 3", "the first analysis". */
function batchName(b) {
  if (b === 0) return 'the first analysis';
  const info = BATCHES.get(b);
  const kind = info && info.kind && info.kind !== 'analysis' ? info.kind : 'batch';
  return `${kind} ${b}`;
}

/** "2026-12-07" from the batch's `created`, or ''. */
function batchDate(b) {
  const info = BATCHES.get(b);
  const created = info && info.created ? info.created : '';
  return /^\d{4}-\d{2}-\d{2}/.test(created) ? created.slice(0, 10) : '';
}

// ------------------------------------------------------------------------------------------------ new since
const sinceBox = $('since-box');
const sinceSelect = $('since');
const sinceCount = $('since-count');

function sinceLabel(b) {
  let posts = 0;
  for (let k = b; k <= LATEST_BATCH; k++) posts += BATCH_COUNTS[k];
  const date = batchDate(b);
  const what = b === LATEST_BATCH ? `New in ${batchName(b)}` : `New since ${batchName(b)}`;
  return `${what}${date ? ` · ${date}` : ''} · ${fmt.format(posts)} posts`;
}

/** Keep the posts of batch b and later (-1: every post). */
function setSince(b) {
  S.since = b;
  sinceSelect.value = String(b);
  applyFilters();
  if (b >= 0) {
    const points = matchedPoints();
    if (points.length) zoomToPoints(points);
  }
}

if (LATEST_BATCH > 0) {
  sinceSelect.appendChild(el('option', '', 'All posts', { value: '-1' }));
  for (let b = LATEST_BATCH; b >= 1; b--) sinceSelect.appendChild(el('option', '', sinceLabel(b), { value: b }));
  sinceCount.textContent = `${fmt.format(BATCH_COUNTS[LATEST_BATCH])} new`;
  const date = batchDate(LATEST_BATCH);
  sinceCount.title = `Posts added by ${batchName(LATEST_BATCH)}${date ? ` on ${date}` : ''}`;
  sinceSelect.addEventListener('change', () => setSince(Number(sinceSelect.value)));
  sinceBox.hidden = false;
}

// ------------------------------------------------------------------------------------------------ markers
/** The "new" and "reviewed" badges of a cluster (its info from metrics.json, or a person's review), or null. */
function clusterBadges(info) {
  if (!info || !(info.new || info.reviewed)) return null;
  const box = el('span', 'badges');
  if (info.new) box.appendChild(el('span', 'badge badge-new', 'new', { title: `New: ${NEW_CLUSTER_WORDS}` }));
  if (info.reviewed) {
    box.appendChild(el('span', 'badge badge-reviewed', 'reviewed', { title: `Reviewed: ${REVIEWED_WORDS}` }));
  }
  return box;
}

/** The cluster panel's lines about its history: new in the latest batch, reviewed by a person. */
function clusterHistory(info) {
  const box = el('div', 'history');
  if (info.new) box.appendChild(el('div', 'marker marker-new', `New: it ${NEW_CLUSTER_WORDS}.`));
  if (info.reviewed) box.appendChild(el('div', 'marker marker-reviewed', `Reviewed: ${REVIEWED_WORDS}.`));
  return box;
}

/** Point i's chip "Added by update 2 · 2026-12-07", or null when the folder has one batch. */
function batchChip(i) {
  if (!BATCH || LATEST_BATCH === 0 || BATCH[i] < 0) return null;
  const b = BATCH[i];
  const date = batchDate(b);
  const text = `Added by ${batchName(b)}${date ? ` · ${date}` : ''}`;
  const chip = el('span', b === LATEST_BATCH ? 'chip chip-new' : 'chip', text);
  chip.id = 'panel-batch';
  return chip;
}

/** One line on how point i's label was set, or null when the folder does not say. */
function labelSourceLine(i) {
  let words = null;
  if (reviewTouched(i)) words = 'changed by your review on this page (not applied to the analysis yet)';
  else if (LABEL_SOURCE) {
    const source = LABEL_SOURCE.value(i);
    if (source === 'clustering' && LATEST_BATCH === 0) return null; // a first analysis: every label is the clustering's
    const noise = labelsOf(REVIEW_VIEW)[i] < 0;
    if (source === 'assigned' && noise) words = 'left as noise by the update\u2019s nearest neighbours';
    else if (source !== null) words = SOURCE_WORDS[source] || source;
  }
  if (words === null) return null;
  const line = el('div', 'source-line', `Cluster ${words}.`);
  line.id = 'panel-source';
  return line;
}
