/* The cluster list (names, keywords, exemplars), choosing a cluster (focus it, or drill into its finer clusters) and
 * the menu of sweep settings. */
// ------------------------------------------------------------------------------------------------ clusters
const listEl = $('cluster-list');

function renderClusterList() {
  clear(listEl);
  const view = VIEWS[S.k];
  const shown = S.clusters.filter((c) => c.inScope);
  const max = shown.length ? shown[0].members.length : 1;
  const rows = shown.map((c) => ({ label: c.label, members: c.members, color: c.color, info: c.info }));
  if (S.scopedNoise.length) rows.push({ label: -1, members: S.scopedNoise, color: NOISE_RGB, info: null });
  const drills = levelStep(S.k, 1) >= 0 && !reviewing(); // in review mode a click opens the cluster to rename it
  for (const r of rows) {
    const li = el('li');
    const b = el('button', 'cluster-item', null, { type: 'button', 'aria-pressed': S.focus === r.label });
    b.dataset.label = String(r.label);
    const sw = el('span', 'swatch');
    sw.style.background = rgbCss(r.color);
    b.appendChild(sw);
    const name = el('span', 'cl-name', clusterName(r.label));
    if (r.info && r.info.name) name.appendChild(el('span', 'cl-id', `#${r.label}`));
    name.title = clusterName(r.label);
    b.appendChild(name);
    const size = el('span', 'cl-size');
    const badges = clusterBadges(r.info);
    if (badges) size.appendChild(badges);
    size.appendChild(el('span', 'cl-count', fmt.format(r.members.length)));
    if (drills && r.label >= 0) {
      const children = childCount(S.k, r.label);
      size.appendChild(el('span', 'drill', children === null ? '›' : `${children} ›`));
      b.title = `Open its ${VIEWS[levelStep(S.k, 1)].title.toLowerCase()}`;
    }
    b.appendChild(size);
    if (r.info && r.info.keywords && r.info.keywords.length) {
      b.appendChild(el('span', 'cl-kw', r.info.keywords.slice(0, 6).join(' · ')));
    }
    const bar = el('span', 'cl-bar');
    const fill = el('span');
    fill.style.width = `${Math.max(2, (100 * r.members.length) / Math.max(max, r.members.length))}%`;
    fill.style.background = rgbCss(r.color);
    bar.appendChild(fill);
    b.appendChild(bar);
    const thumbs = el('span', 'cl-thumbs');
    let added = 0;
    for (const i of r.members) {
      if (added >= EXEMPLARS_IN_LIST) break;
      if (!hasThumb(i)) continue;
      const img = el('img', '', null, { decoding: 'async', alt: '' });
      lazyThumb(img, i);
      thumbs.appendChild(img);
      added++;
    }
    if (added) b.appendChild(thumbs);
    b.addEventListener('click', () => chooseCluster(r.label));
    const pick = reviewPick(r.label);
    if (pick) {
      li.className = 'pickable';
      li.appendChild(pick);
    }
    li.appendChild(b);
    listEl.appendChild(li);
  }
  const scope = S.path.length ? S.path[S.path.length - 1] : null;
  const where = scope ? ` in ${cut(clusterName(scope.label, scope.view), 24)}` : '';
  const title = view.depth === null ? 'Clusters' : view.title;
  $('clusters-title').textContent = `${title} · ${fmt.format(shown.length)}${where}`;
}

function markFocus() {
  for (const b of listEl.querySelectorAll('.cluster-item')) {
    b.setAttribute('aria-pressed', String(S.focus !== null && b.dataset.label === String(S.focus)));
  }
}

/** A click on a cluster: at a level with finer clusters, open them; otherwise focus the cluster. */
function chooseCluster(label) {
  if (label >= 0 && levelStep(S.k, 1) >= 0 && !reviewing()) drillInto(S.k, label);
  else focusCluster(label);
}

function focusCluster(label) {
  if (label === null || (S.focus === label && S.panel === 'cluster')) {
    S.focus = null;
    markFocus();
    applyFilters();
    if (S.path.length) {
      const scope = S.path[S.path.length - 1];
      showCluster(scope.label, scope.view);
    } else {
      showOverview();
      animateTo(S.home);
    }
    return;
  }
  if (label < 0 && !S.showNoise) {
    S.showNoise = true;
    $('noise').checked = true;
  }
  S.focus = label;
  markFocus();
  applyFilters();
  showCluster(label);
  zoomToPoints(label < 0 ? S.scopedNoise : S.byLabel.get(label).members);
}

// ------------------------------------------------------------------------------------------------ settings menu
const select = $('clustering');

/** The menu entry of setting k: its clusters and noise share (a person's review changes the chosen one's). */
function settingText(k) {
  const labels = labelsOf(k);
  let noise = 0;
  for (let i = 0; i < N; i++) if (labels[i] < 0) noise++;
  const c = VIEWS[k].setting;
  const summary = `${clusterCount(k)} clusters, ${N ? Math.round((100 * noise) / N) : 0} % noise`;
  // The star marks the chosen setting; its label already says "chosen: ...".
  return `${c.chosen ? '★ ' : ''}${summary} · ${c.label}`;
}

function refreshSettingText() {
  for (const opt of select.options) opt.textContent = settingText(Number(opt.value));
}

VIEWS.forEach((v, k) => {
  if (!v.setting) return;
  const opt = el('option', '', settingText(k));
  opt.title = v.setting.label;
  opt.value = String(k);
  select.appendChild(opt);
});
select.disabled = select.options.length < 2;
select.addEventListener('change', () => setView(Number(select.value)));
