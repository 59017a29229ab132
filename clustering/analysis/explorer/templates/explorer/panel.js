/* The hover card, galleries, the side panel (overview, point, cluster, selection, account) and the status lines. */
// ------------------------------------------------------------------------------------------------ tooltip
const tt = $('tooltip');
const ttImg = $('tt-img');

ttImg.addEventListener('error', () => tt.classList.add('no-image'));

function showTooltip(i, mx, my) {
  tt.classList.toggle('no-image', !hasThumb(i));
  ttImg.removeAttribute('src');
  setThumb(ttImg, i, () => tt.classList.add('no-image'));
  $('tt-id').textContent = idOf(i);
  const text = textOf(i);
  $('tt-text').textContent = text ? cut(text, 240) : '';
  const l = S.labels[i];
  $('tt-swatch').style.background = rgbCss(colorOf(i));
  $('tt-cluster').textContent = clusterName(l);
  const p = prob(i);
  $('tt-prob').textContent = Number.isFinite(p) ? `p = ${p.toFixed(2)}` : '';
  tt.hidden = false;
  placeTooltip(mx, my);
}

function placeTooltip(mx, my) {
  const w = tt.offsetWidth;
  const h = tt.offsetHeight;
  let x = mx + 16;
  let y = my + 16;
  if (x + w > W - 8) x = mx - w - 16;
  if (y + h > H - 8) y = Math.max(8, H - h - 8);
  tt.style.left = `${Math.max(8, x)}px`;
  tt.style.top = `${Math.max(8, y)}px`;
}

function hideTooltip() {
  tt.hidden = true;
  S.hover = -1;
  requestOverlay();
}

// ------------------------------------------------------------------------------------------------ gallery
function gallery(indices, { current = -1 } = {}) {
  const wrap = el('div');
  const grid = el('div', 'gallery');
  wrap.appendChild(grid);
  let shown = 0;
  const more = el('button', 'gallery-more', '', { type: 'button' });
  function addPage() {
    const end = Math.min(indices.length, shown + GALLERY_PAGE);
    for (; shown < end; shown++) {
      const i = indices[shown];
      const b = el('button', i === current ? 'current' : '', null, { type: 'button', title: idOf(i) });
      if (hasThumb(i)) {
        const img = el('img', '', null, { decoding: 'async', alt: '' });
        lazyThumb(img, i);
        b.appendChild(img);
      } else {
        b.appendChild(el('span', 'ph-text', idOf(i)));
      }
      b.addEventListener('click', () => showPoint(i, { pan: true }));
      b.addEventListener('mouseenter', () => {
        S.galleryHover = i;
        requestOverlay();
      });
      b.addEventListener('mouseleave', () => {
        S.galleryHover = -1;
        requestOverlay();
      });
      grid.appendChild(b);
    }
    more.hidden = shown >= indices.length;
    const left = indices.length - shown;
    more.textContent = `Show ${fmt.format(Math.min(GALLERY_PAGE, left))} more of ${fmt.format(left)}`;
  }
  more.addEventListener('click', addPage);
  addPage();
  wrap.appendChild(more);
  return wrap;
}

// ------------------------------------------------------------------------------------------------ side panel
const panelBody = $('panel-body');
const panelTitle = $('panel-title');

function setPanel(kind, title) {
  S.panel = kind;
  clear(panelBody);
  panelTitle.textContent = title;
  $('panel-back').hidden = kind === 'overview';
  panelBody.scrollTop = 0;
}

function sectionTitle(text, color) {
  const t = el('div', 'section-title');
  if (color) {
    const sw = el('span', 'swatch');
    sw.style.background = rgbCss(color);
    t.appendChild(sw);
  }
  t.appendChild(el('span', '', text));
  return t;
}

function kv(pairs) {
  const dl = el('dl', 'kv');
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === '') continue;
    dl.appendChild(el('dt', '', k));
    dl.appendChild(el('dd', '', v));
  }
  return dl;
}

const pct = (part, whole) => `${whole ? ((100 * part) / whole).toFixed(1) : 0} %`;
const utcTime = (t) => `${new Date(t * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** The selection's reason; its figures count the points clustered, each distinct image once unless every copy was. */
function reasonText(info) {
  const clustered = info.chosen && info.chosen.n;
  if (!info.reason || !clustered || clustered === N) return info.reason;
  return `${info.reason} (figures over the ${fmt.format(clustered)} distinct images clustered)`;
}

function showOverview() {
  S.current = -1;
  setPanel('overview', 'Overview');
  const view = VIEWS[S.k];
  const info = META.info || {};
  const posts = META.posts || {};
  const levels = LEVEL_VIEWS.map((k) => `${fmt.format(clusterCount(k))} ${VIEWS[k].title.toLowerCase()}`);
  panelBody.appendChild(
    kv([
      ['Images', fmt.format(N)],
      [view.title, fmt.format(S.clusters.length)],
      ['Noise', `${fmt.format(S.noise.length)} (${pct(S.noise.length, N)})`],
      ['Levels', LEVEL_VIEWS.length > 1 ? levels.join(' · ') : null],
      ['Setting', view.setting ? view.setting.label : null],
      ['Selected by', info.rule],
      ['Why', reasonText(info)],
      ['Model', info.model],
      ['Input', info.input],
      ['Thumbnails', `${fmt.format(nWithThumb)} of ${fmt.format(N)}`],
      ['Post text', posts.text],
      ['Dates', TL ? `${posts.date} (${fmt.format(META.time.n_dated)} dated, per ${TL.period})` : null],
      ['Accounts', ACCOUNTS ? `${posts.account} (${fmt.format(ACCOUNTS.names.length)} distinct)` : null],
      ['Repost groups', info.reposts && info.reposts.groups ? fmt.format(info.reposts.groups) : null],
    ]),
  );
  if (META.notice) panelBody.appendChild(el('div', 'img-missing', META.notice));
  if (posts.missing && posts.missing.length) {
    panelBody.appendChild(el('div', 'img-missing', `Not in the data: ${posts.missing.join(', ')}.`));
  }
  panelBody.appendChild(sectionTitle('How to use'));
  const help = el('ul', 'help');
  for (const line of [
    'Scroll to zoom, drag to pan; hover a point for its card, click it for details.',
    'Pick a cluster on the left to see its gallery; at a coarser level it opens its finer clusters.',
    'Drag on the timeline to keep a period; type in Account to keep one account\u2019s posts.',
    'Shift + drag draws a lasso: the selected images appear here and can be exported as CSV.',
    'Keys: / search, Esc back out, + / − zoom, Home reset view.',
  ]) {
    help.appendChild(el('li', '', line));
  }
  panelBody.appendChild(help);
  requestOverlay();
}

/** Name, keywords and provenance of cluster `label` of view k. */
function clusterAbout(label, k) {
  const box = el('div');
  const info = VIEWS[k].info.get(label);
  if (!info) return box;
  if (info.keywords && info.keywords.length) {
    const kw = el('div', 'keywords');
    for (const word of info.keywords) kw.appendChild(el('span', '', word));
    box.appendChild(kw);
  }
  const sources = { 'zero-shot': 'name from CLIP zero-shot labels', keywords: 'name from its keywords',
    review: 'named by a person' }; // prettier-ignore
  const source = sources[info.name_source];
  if (source) box.appendChild(el('div', info.name_source === 'review' ? 'muted named-by-person' : 'muted', source));
  if (info.new || info.reviewed) box.appendChild(clusterHistory(info));
  if (info.uncertain) box.appendChild(el('div', 'uncertain', 'Uncertain name: the runner-up label scored close.'));
  if (info.mixed && info.mixed.length) {
    box.appendChild(el('div', 'mixed', `Possibly mixed: its posts use ${info.mixed.join(', ')} apart, never together ` +
      '(hashtags of separate communities; a check to read, not a change to the clusters).'));
  }
  return box;
}

function pointChips(i) {
  const chips = el('div', 'chips');
  const l = S.labels[i];
  for (const [view, label] of ancestors(S.k, l)) {
    chips.appendChild(el('span', 'chip', `${clusterTag(label, view)}: ${cut(clusterName(label, view), 30)}`));
  }
  const clusterChip = el('button', 'chip', null, { type: 'button', title: 'Show this cluster' });
  const sw = el('span', 'swatch');
  sw.style.background = rgbCss(colorOf(i));
  clusterChip.appendChild(sw);
  clusterChip.appendChild(el('span', '', clusterName(l)));
  clusterChip.addEventListener('click', () => chooseCluster(l));
  chips.appendChild(clusterChip);
  const p = prob(i);
  if (Number.isFinite(p)) chips.appendChild(el('span', 'chip', `probability ${p.toFixed(3)}`));
  if (OUTLIER && Number.isFinite(OUTLIER[i])) chips.appendChild(el('span', 'chip', `outlier ${OUTLIER[i].toFixed(3)}`));
  const t = timeOf(i);
  if (t !== null) chips.appendChild(el('span', 'chip', utcTime(t)));
  const account = accountOf(i);
  if (account !== null) {
    const b = el('button', 'chip', `Posts by ${cut(account, 40)}`, { type: 'button', title: account });
    b.id = 'panel-account';
    b.addEventListener('click', () => setAccount(ACCOUNT_COL.codes[i]));
    chips.appendChild(b);
  }
  if (REPOST && REPOST[i] >= 0) {
    const group = REPOST[i];
    const members = [];
    for (let j = 0; j < N; j++) if (REPOST[j] === group) members.push(j);
    const b = el('button', 'chip', `Repost group ${group} · ${fmt.format(members.length)} posts`, { type: 'button' });
    b.id = 'panel-reposts';
    b.addEventListener('click', () => selectPoints(members));
    chips.appendChild(b);
  }
  const batch = batchChip(i);
  if (batch) chips.appendChild(batch);
  if (TOGETHER_GROUPS && TOGETHER[i] >= 0) {
    const b = el('button', 'chip', `Posted together · group ${TOGETHER[i]}`, { type: 'button' });
    b.id = 'panel-together';
    b.addEventListener('click', () => setTogether(TOGETHER[i]));
    chips.appendChild(b);
  }
  return chips;
}

function showPoint(i, { pan = false } = {}) {
  S.current = i;
  const l = S.labels[i];
  setPanel('point', l < 0 ? 'Image · noise' : `Image · ${clusterTag(l)}`);
  const hero = el('div', 'hero');
  if (hasThumb(i)) {
    const img = el('img', '', null, { alt: '' });
    const missing = () => hero.replaceChildren(el('span', 'img-missing', 'Thumbnail file missing'));
    img.addEventListener('error', missing);
    setThumb(img, i, missing);
    hero.appendChild(img);
  } else {
    hero.appendChild(el('span', 'img-missing', 'No thumbnail'));
  }
  panelBody.appendChild(hero);

  const idLine = el('div', 'mono', idOf(i));
  idLine.id = 'panel-id';
  panelBody.appendChild(idLine);
  panelBody.appendChild(pointChips(i));
  const source = labelSourceLine(i);
  if (source) panelBody.appendChild(source);

  const url = urlOf(i);
  const href = safeHttpUrl(url);
  if (href) {
    const a = el('a', 'link', 'Open original ↗', { target: '_blank', rel: 'noopener noreferrer' });
    a.id = 'panel-link';
    a.href = href;
    a.title = href;
    panelBody.appendChild(a);
  }
  const dup = DUPLICATE_OF ? DUPLICATE_OF.value(i) : null;
  if (dup) {
    const j = IDS.values().indexOf(dup);
    const b = el('button', 'chip', `Exact duplicate of ${dup}`, { type: 'button' });
    if (j >= 0) b.addEventListener('click', () => showPoint(j, { pan: true }));
    panelBody.appendChild(b);
  }
  const text = textOf(i);
  if (text) panelBody.appendChild(el('div', 'post-text', text));
  const lineage = lineageView(i);
  if (lineage) {
    panelBody.appendChild(sectionTitle(`Lineage · repost group ${REPOST[i]}`));
    panelBody.appendChild(lineage);
  }

  const table = el('table', 'meta');
  const rows = [['url', url]];
  for (const col of COLUMNS) if (col !== TEXT_COL) rows.push([col.name, col.value(i)]);
  for (const [name, value] of rows) {
    const tr = el('tr');
    tr.appendChild(el('th', '', name));
    tr.appendChild(el('td', '', value === null || value === undefined ? '—' : value));
    table.appendChild(tr);
  }
  panelBody.appendChild(table);

  const members = l < 0 ? S.noise : S.byLabel.get(l).members;
  panelBody.appendChild(sectionTitle(`${clusterName(l)} · ${fmt.format(members.length)} images`, colorOf(i)));
  panelBody.appendChild(gallery(members, { current: i }));
  if (pan && VALID[i]) {
    const [sx, sy] = toScreen(i);
    if (sx < 40 || sy < 40 || sx > W - 40 || sy > H - 40) animateTo({ cx: X[i], cy: Y[i], scale: S.view.scale });
  }
  requestOverlay();
}

/** Cluster `label` of view k (default: the current one): what it is about, where it sits, its gallery. */
function showCluster(label, k = S.k) {
  S.current = -1;
  let members;
  if (k === S.k) members = label < 0 ? S.scopedNoise : S.byLabel.get(label).members;
  else members = matchedPoints(); // a drilled-into cluster: the map shows just its points
  const c = k === S.k ? S.byLabel.get(label) : null;
  setPanel('cluster', label < 0 ? 'Noise' : `${clusterTag(label, k)} · ${clusterName(label, k)}`);
  const children = label >= 0 ? childCount(k, label) : null;
  const finer = levelStep(k, 1);
  panelBody.appendChild(
    kv([
      ['Images', `${fmt.format(members.length)} (${pct(members.length, N)} of all)`],
      ['Name', label >= 0 ? clusterName(label, k) : null],
      ['Part of', ancestors(k, label).map(([v, l]) => `${clusterTag(l, v)}: ${clusterName(l, v)}`).join(' › ')],
      [finer >= 0 ? VIEWS[finer].title : 'Children', children ? fmt.format(children) : null],
      ['Mean probability', c && Number.isFinite(c.meanProb) ? c.meanProb.toFixed(3) : null],
      ['Order', label < 0 ? 'most outlying first' : 'highest membership probability first'],
    ]),
  );
  if (label >= 0) panelBody.appendChild(clusterAbout(label, k));
  const review = reviewClusterSection(label, k);
  if (review) panelBody.appendChild(review);
  const color = c ? c.color : label < 0 ? NOISE_RGB : null;
  panelBody.appendChild(sectionTitle('Gallery', color));
  const byProb = (a, b) => (prob(b) || 0) - (prob(a) || 0) || a - b;
  panelBody.appendChild(gallery(k === S.k ? members : members.slice().sort(byProb)));
}

function breakdownChips(points) {
  const byCluster = new Map();
  for (const i of points) byCluster.set(S.labels[i], (byCluster.get(S.labels[i]) || 0) + 1);
  const top = [...byCluster.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
  const chips = el('div', 'chips');
  for (const [label, count] of top) {
    const chip = el('span', 'chip');
    const sw = el('span', 'swatch');
    sw.style.background = rgbCss(label < 0 ? NOISE_RGB : S.byLabel.get(label).color);
    chip.appendChild(sw);
    chip.appendChild(el('span', '', `${cut(clusterName(label), 28)}: ${fmt.format(count)}`));
    chips.appendChild(chip);
  }
  return chips;
}

function showSelection() {
  const sel = S.selection;
  S.current = -1;
  setPanel('selection', `Selection · ${fmt.format(sel.length)} images`);
  const row = el('div', 'row');
  const exp = el('button', '', 'Export CSV', { type: 'button', title: 'Download the selected ids as CSV' });
  exp.id = 'export-csv';
  exp.addEventListener('click', exportSelection);
  const clr = el('button', '', 'Clear selection', { type: 'button' });
  clr.addEventListener('click', clearSelection);
  row.appendChild(exp);
  row.appendChild(clr);
  panelBody.appendChild(row);
  const review = reviewSelectionSection();
  if (review) panelBody.appendChild(review);
  panelBody.appendChild(breakdownChips(sel));
  const ordered = Array.from(sel).sort((a, b) => (prob(b) || 0) - (prob(a) || 0) || a - b);
  panelBody.appendChild(gallery(ordered));
  requestOverlay();
}

/** The posts of one account (within the other filters): how many, when, in which clusters, and their images. */
function showAccount(code) {
  S.current = -1;
  const name = ACCOUNTS.names[code];
  const points = matchedPoints();
  setPanel('account', `Account · ${name}`);
  let first = Infinity;
  let last = -Infinity;
  for (const i of points) {
    const t = timeOf(i);
    if (t === null) continue;
    first = Math.min(first, t);
    last = Math.max(last, t);
  }
  panelBody.appendChild(
    kv([
      ['Account', name],
      ['Posts', `${fmt.format(ACCOUNTS.counts[code])} in all, ${fmt.format(points.length)} shown`],
      ['First post', Number.isFinite(first) ? utcTime(first) : null],
      ['Last post', Number.isFinite(last) ? utcTime(last) : null],
    ]),
  );
  panelBody.appendChild(breakdownChips(points));
  const clr = el('button', '', 'Clear account filter', { type: 'button' });
  clr.addEventListener('click', () => setAccount(-1));
  panelBody.appendChild(clr);
  panelBody.appendChild(gallery(points.sort((a, b) => (timeOf(a) ?? 0) - (timeOf(b) ?? 0) || a - b)));
  requestOverlay();
}

// ------------------------------------------------------------------------------------------------ header / status
function updateStats() {
  const view = VIEWS[S.k];
  const clusters = `${fmt.format(S.clusters.length)} ${view.depth === null ? 'clusters' : view.title.toLowerCase()}`;
  $('stats').textContent = `${fmt.format(N)} images · ${clusters} · ${pct(S.noise.length, N)} noise`;
}

function updateStatus() {
  const parts = [];
  const drawn = fmt.format(S.nDrawn);
  parts.push(S.anyFilter ? `${fmt.format(S.nShown)} of ${drawn} shown` : `${drawn} points`);
  parts.push('scroll: zoom · drag: pan · shift+drag: lasso');
  $('status').textContent = parts.join('   ·   ');
  $('search-count').textContent = S.query.trim() ? `${fmt.format(S.nShown)} match${S.nShown === 1 ? '' : 'es'}` : '';
  $('empty').hidden = N > 0 && GRID.n > 0;
}
