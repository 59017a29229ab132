/* The cluster list, focusing one cluster, and the switch between the chosen clustering and the alternatives. */
// ------------------------------------------------------------------------------------------------ clusters
const listEl = $('cluster-list');

function renderClusterList() {
  clear(listEl);
  const max = S.clusters.length ? S.clusters[0].members.length : 1;
  const rows = S.clusters.map((c) => ({ label: c.label, members: c.members, color: c.color }));
  if (S.noise.length) rows.push({ label: -1, members: S.noise, color: NOISE_RGB });
  for (const r of rows) {
    const li = el('li');
    const b = el('button', 'cluster-item', null, { type: 'button', 'aria-pressed': S.focus === r.label });
    b.dataset.label = String(r.label);
    const sw = el('span', 'swatch');
    sw.style.background = rgbCss(r.color);
    b.appendChild(sw);
    b.appendChild(el('span', 'cl-name', clusterName(r.label)));
    b.appendChild(el('span', 'cl-size', fmt.format(r.members.length)));
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
      const src = thumbSrc(i);
      if (!src) continue;
      const img = el('img', '', null, { loading: 'lazy', decoding: 'async', alt: '' });
      img.setAttribute('src', src);
      thumbs.appendChild(img);
      added++;
    }
    if (added) b.appendChild(thumbs);
    b.addEventListener('click', () => focusCluster(r.label));
    li.appendChild(b);
    listEl.appendChild(li);
  }
  $('clusters-title').textContent = `Clusters · ${fmt.format(S.clusters.length)}`;
}

function markFocus() {
  for (const b of listEl.querySelectorAll('.cluster-item')) {
    b.setAttribute('aria-pressed', String(S.focus !== null && b.dataset.label === String(S.focus)));
  }
}

function focusCluster(label) {
  if (label === null || (S.focus === label && S.panel === 'cluster')) {
    S.focus = null;
    markFocus();
    applyFilters();
    showOverview();
    animateTo(S.home);
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
  zoomToPoints(label < 0 ? S.noise : S.byLabel.get(label).members);
}

function setClustering(k) {
  S.k = k;
  S.focus = null;
  computeClusters(k);
  renderClusterList();
  applyFilters();
  updateStats();
  if (S.panel === 'point' && S.current >= 0) showPoint(S.current);
  else if (S.panel === 'selection' && S.selection) showSelection();
  else showOverview();
}

const select = $('clustering');
CLUSTERINGS.forEach((c, k) => {
  const labels = labelsOf(k);
  const distinct = new Set();
  let noise = 0;
  for (let i = 0; i < N; i++) {
    if (labels[i] < 0) noise++;
    else distinct.add(labels[i]);
  }
  const summary = `${distinct.size} clusters, ${N ? Math.round((100 * noise) / N) : 0} % noise`;
  const opt = el('option', '', `${c.chosen ? '★ ' : ''}${summary} · ${c.label}${c.chosen ? ' (chosen)' : ''}`);
  opt.title = c.label;
  opt.value = String(k);
  select.appendChild(opt);
});
select.value = String(S.k);
select.disabled = CLUSTERINGS.length < 2;
select.addEventListener('change', () => setClustering(Number(select.value)));
