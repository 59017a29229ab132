/* The hover card, galleries, the side panel (overview, point, cluster, selection) and the header/status lines. */
// ------------------------------------------------------------------------------------------------ tooltip
const tt = $('tooltip');
const ttImg = $('tt-img');

function setImage(img, i, onMissing) {
  const src = thumbSrc(i);
  if (!src) {
    img.removeAttribute('src');
    if (onMissing) onMissing();
    return false;
  }
  img.setAttribute('src', src);
  return true;
}

ttImg.addEventListener('error', () => tt.classList.add('no-image'));

function showTooltip(i, mx, my) {
  tt.classList.toggle('no-image', !thumbSrc(i));
  setImage(ttImg, i);
  $('tt-id').textContent = IDS[i] ?? '';
  const text = textOf(i);
  $('tt-text').textContent = text ? (text.length > 240 ? `${text.slice(0, 239)}…` : text) : '';
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
  requestDraw();
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
      const b = el('button', i === current ? 'current' : '', null, { type: 'button', title: IDS[i] ?? '' });
      const src = thumbSrc(i);
      if (src) {
        const img = el('img', '', null, { loading: 'lazy', decoding: 'async', alt: '' });
        img.setAttribute('src', src);
        b.appendChild(img);
      } else {
        b.appendChild(el('span', 'ph-text', IDS[i] ?? ''));
      }
      b.addEventListener('click', () => showPoint(i, { pan: true }));
      b.addEventListener('mouseenter', () => {
        S.galleryHover = i;
        requestDraw();
      });
      b.addEventListener('mouseleave', () => {
        S.galleryHover = -1;
        requestDraw();
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

function showOverview() {
  S.current = -1;
  setPanel('overview', 'Overview');
  const c = CLUSTERINGS[S.k];
  const info = D.info || {};
  panelBody.appendChild(
    kv([
      ['Images', fmt.format(N)],
      ['Clusters', fmt.format(S.clusters.length)],
      ['Noise', `${fmt.format(S.noise.length)} (${N ? ((100 * S.noise.length) / N).toFixed(1) : 0} %)`],
      ['Clustering', c ? c.label : ''],
      ['Selected by', info.rule],
      ['Why', info.reason],
      ['Model', info.model],
      ['Input', info.input],
      ['Thumbnails', `${fmt.format(nWithThumb)} of ${fmt.format(N)}`],
    ]),
  );
  if (D.notice) panelBody.appendChild(el('div', 'img-missing', D.notice));
  panelBody.appendChild(sectionTitle('How to use'));
  const help = el('ul', 'help');
  for (const line of [
    'Scroll to zoom, drag to pan; hover a point for its card, click it for details.',
    'Shift + drag draws a lasso: the selected images appear here and can be exported as CSV.',
    'Pick a cluster on the left to zoom to it and see its gallery.',
    'Keys: / search, Esc clear, + / − zoom, Home reset view.',
  ]) {
    help.appendChild(el('li', '', line));
  }
  panelBody.appendChild(help);
  requestDraw();
}

function showPoint(i, { pan = false } = {}) {
  S.current = i;
  const l = S.labels[i];
  setPanel('point', clusterName(l) === 'Noise' ? 'Image · noise' : `Image · ${clusterName(l)}`);
  const hero = el('div', 'hero');
  const src = thumbSrc(i);
  if (src) {
    const img = el('img', '', null, { alt: '' });
    img.addEventListener('error', () => hero.replaceChildren(el('span', 'img-missing', 'Thumbnail file missing')));
    img.setAttribute('src', src);
    hero.appendChild(img);
  } else {
    hero.appendChild(el('span', 'img-missing', 'No thumbnail'));
  }
  panelBody.appendChild(hero);

  const idLine = el('div', 'mono', IDS[i] ?? '');
  idLine.id = 'panel-id';
  panelBody.appendChild(idLine);

  const chips = el('div', 'chips');
  const clusterChip = el('button', 'chip', null, { type: 'button', title: 'Show this cluster' });
  const sw = el('span', 'swatch');
  sw.style.background = rgbCss(colorOf(i));
  clusterChip.appendChild(sw);
  clusterChip.appendChild(el('span', '', clusterName(l)));
  clusterChip.addEventListener('click', () => focusCluster(l));
  chips.appendChild(clusterChip);
  const p = prob(i);
  if (Number.isFinite(p)) chips.appendChild(el('span', 'chip', `probability ${p.toFixed(3)}`));
  if (OUTLIER && Number.isFinite(OUTLIER[i])) {
    chips.appendChild(el('span', 'chip', `outlier ${OUTLIER[i].toFixed(3)}`));
  }
  panelBody.appendChild(chips);

  const url = URLS[i];
  const href = safeHttpUrl(url);
  if (href) {
    const a = el('a', 'link', 'Open original ↗', { target: '_blank', rel: 'noopener noreferrer' });
    a.id = 'panel-link';
    a.href = href;
    a.title = href;
    panelBody.appendChild(a);
  }
  const dup = D.duplicate_of ? D.duplicate_of[i] : null;
  if (dup) {
    const j = IDS.indexOf(dup);
    const b = el('button', 'chip', `Exact duplicate of ${dup}`, { type: 'button' });
    if (j >= 0) b.addEventListener('click', () => showPoint(j, { pan: true }));
    panelBody.appendChild(b);
  }
  const text = textOf(i);
  if (text) panelBody.appendChild(el('div', 'post-text', text));

  const table = el('table', 'meta');
  const rows = [['url', url]];
  for (const col of COLUMNS) if (col !== TEXT_COL) rows.push([col.name, columnValue(col, i)]);
  for (const [name, value] of rows) {
    const tr = el('tr');
    tr.appendChild(el('th', '', name));
    tr.appendChild(el('td', '', value === null || value === undefined ? '—' : value));
    table.appendChild(tr);
  }
  panelBody.appendChild(table);

  const members = l < 0 ? S.noise : S.byLabel.get(l).members;
  panelBody.appendChild(
    sectionTitle(`${l < 0 ? 'Noise' : clusterName(l)} · ${fmt.format(members.length)} images`, colorOf(i)),
  );
  panelBody.appendChild(gallery(members, { current: i }));
  if (pan && VALID[i]) {
    const [sx, sy] = toScreen(i);
    if (sx < 40 || sy < 40 || sx > W - 40 || sy > H - 40) animateTo({ cx: X[i], cy: Y[i], scale: S.view.scale });
  }
  requestDraw();
}

function showCluster(label) {
  S.current = -1;
  const members = label < 0 ? S.noise : S.byLabel.get(label).members;
  const c = S.byLabel.get(label);
  setPanel('cluster', clusterName(label));
  panelBody.appendChild(
    kv([
      ['Images', `${fmt.format(members.length)} (${N ? ((100 * members.length) / N).toFixed(1) : 0} % of all)`],
      ['Mean probability', c && Number.isFinite(c.meanProb) ? c.meanProb.toFixed(3) : null],
      ['Order', label < 0 ? 'most outlying first' : 'highest membership probability first'],
    ]),
  );
  panelBody.appendChild(sectionTitle('Gallery', c ? c.color : NOISE_RGB));
  panelBody.appendChild(gallery(members));
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
  const byCluster = new Map();
  for (const i of sel) byCluster.set(S.labels[i], (byCluster.get(S.labels[i]) || 0) + 1);
  const top = [...byCluster.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
  const chips = el('div', 'chips');
  for (const [label, count] of top) {
    const chip = el('span', 'chip');
    const sw = el('span', 'swatch');
    sw.style.background = rgbCss(label < 0 ? NOISE_RGB : S.byLabel.get(label).color);
    chip.appendChild(sw);
    chip.appendChild(el('span', '', `${clusterName(label)}: ${fmt.format(count)}`));
    chips.appendChild(chip);
  }
  panelBody.appendChild(chips);
  const ordered = Array.from(sel).sort((a, b) => (prob(b) || 0) - (prob(a) || 0) || a - b);
  panelBody.appendChild(gallery(ordered));
  requestDraw();
}

// ------------------------------------------------------------------------------------------------ header / status
function updateStats() {
  const noisePct = N ? ((100 * S.noise.length) / N).toFixed(1) : '0';
  const clusters = fmt.format(S.clusters.length);
  $('stats').textContent = `${fmt.format(N)} images · ${clusters} clusters · ${noisePct} % noise`;
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
