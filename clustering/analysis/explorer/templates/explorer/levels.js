/* Levels of the hierarchy: switching between themes, clusters and subclusters (or another sweep setting), drilling
 * down from a cluster into its children at the next finer level, and the path back up. */
// ------------------------------------------------------------------------------------------------ levels
const levelsEl = $('levels');
const crumbsEl = $('crumbs');
const LEVEL_VIEWS = VIEWS.map((v, k) => k).filter((k) => VIEWS[k].depth !== null);

function renderLevels() {
  clear(levelsEl);
  for (const k of LEVEL_VIEWS) {
    const b = el('button', '', VIEWS[k].title, { type: 'button', 'aria-pressed': S.k === k });
    b.dataset.view = String(k);
    b.addEventListener('click', () => setView(k));
    levelsEl.appendChild(b);
  }
  levelsEl.hidden = LEVEL_VIEWS.length < 2;
  select.value = VIEWS[S.k].setting ? String(S.k) : ''; // a level that is no sweep setting: no entry chosen
}

/** Show view k from the top: no drill-down path, no focus. */
function setView(k) {
  S.k = k;
  S.path = [];
  S.focus = null;
  refreshView();
  if (S.panel === 'point' && S.current >= 0) showPoint(S.current);
  else if (S.panel === 'selection' && S.selection) showSelection();
  else showOverview();
}

function refreshView() {
  computeClusters(S.k);
  renderLevels();
  renderCrumbs();
  renderClusterList();
  applyFilters();
  updateStats();
  updateReviewBar();
}

/** Number of clusters one level finer whose parent is `label` of view k (null when the level has no parent links). */
function childCount(k, label) {
  const finer = levelStep(k, 1);
  if (finer < 0 || !VIEWS[finer].info.size) return null;
  let n = 0;
  for (const c of VIEWS[finer].info.values()) if (c.parent === label) n++;
  return n;
}

/** Show cluster `label` of view k through its children at the next finer level, zoomed to it. */
function drillInto(k, label) {
  const finer = levelStep(k, 1);
  const members = k === S.k && S.byLabel.get(label) ? S.byLabel.get(label).members : null;
  S.path.push({ view: k, label });
  S.k = finer;
  S.focus = null;
  refreshView();
  showCluster(label, k);
  const scoped = members || matchedPoints();
  zoomToPoints(scoped);
}

/** Back up the drill-down path to `depth` steps (0: the top of the level where drilling started). */
function goUp(depth) {
  if (depth >= S.path.length) return;
  const target = S.path[depth];
  S.k = target.view;
  S.path = S.path.slice(0, depth);
  S.focus = null;
  refreshView();
  if (depth > 0) {
    const parent = S.path[depth - 1];
    showCluster(parent.label, parent.view);
    const labels = labelsOf(parent.view);
    zoomToPoints(matchedPoints().filter((i) => labels[i] === parent.label));
  } else {
    showOverview();
    animateTo(S.home);
  }
}

function renderCrumbs() {
  clear(crumbsEl);
  crumbsEl.hidden = !S.path.length;
  if (!S.path.length) return;
  const top = el('button', '', `All ${VIEWS[S.path[0].view].title.toLowerCase()}`, { type: 'button' });
  top.addEventListener('click', () => goUp(0));
  crumbsEl.appendChild(top);
  S.path.forEach((step, j) => {
    crumbsEl.appendChild(el('span', 'sep', '›'));
    const last = j === S.path.length - 1;
    const b = el('button', '', cut(clusterName(step.label, step.view), 32), {
      type: 'button',
      title: `${clusterTag(step.label, step.view)}: ${clusterName(step.label, step.view)}`,
      'aria-current': last ? 'true' : 'false',
    });
    b.addEventListener('click', () => (last ? showCluster(step.label, step.view) : goUp(j + 1)));
    crumbsEl.appendChild(b);
  });
}

/** The chain of coarser clusters above `label` of view k, coarse first: [[view, label], ...]. */
function ancestors(k, label) {
  const out = [];
  let view = k;
  let l = label;
  for (;;) {
    const info = VIEWS[view].info.get(l);
    const up = levelStep(view, -1);
    if (!info || up < 0 || info.parent < 0) break;
    out.unshift([up, info.parent]);
    view = up;
    l = info.parent;
  }
  return out;
}
