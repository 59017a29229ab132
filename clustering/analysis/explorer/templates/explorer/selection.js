/* Search over id, URL and text, and lasso selection with CSV export. */
// ------------------------------------------------------------------------------------------------ search
/** A text column lower-cased as one string, with each row's start: a search is one indexOf scan per column. */
const haystacks = new Map();
function haystackOf(col) {
  let hay = haystacks.get(col);
  if (hay) return hay;
  const text = col.rawText().toLowerCase();
  const starts = new Int32Array(col.count + 1);
  let p = -1;
  for (let r = 0; r < col.count; r++) {
    starts[r] = p + 1;
    p = text.indexOf('\0', p + 1);
    if (p < 0) p = text.length;
  }
  starts[col.count] = text.length + 1;
  hay = { text, starts };
  haystacks.set(col, hay);
  return hay;
}

/** Set mask[row] for every row of the text column whose value contains q (lower case). */
function markMatches(col, q, mask) {
  const { text, starts } = haystackOf(col);
  let from = 0;
  for (;;) {
    const p = text.indexOf(q, from);
    if (p < 0) return;
    let lo = 0;
    let hi = col.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= p) lo = mid;
      else hi = mid - 1;
    }
    if (!col.nulls || !col.nulls[lo]) mask[lo] = 1;
    from = starts[lo + 1];
  }
}

/** Points whose id, URL or post text contains the query (case-insensitive), or null for an empty query. */
function searchMask(query) {
  const q = query.trim().toLowerCase();
  if (!q) return null;
  const mask = new Uint8Array(N);
  for (const col of [IDS, URLS]) if (col) markMatches(col, q, mask);
  if (TEXT_COL && TEXT_COL.text) markMatches(TEXT_COL.text, q, mask);
  else if (TEXT_COL && TEXT_COL.codes) {
    const hits = TEXT_COL.dict.values().map((v) => v.toLowerCase().includes(q));
    for (let i = 0; i < N; i++) if (TEXT_COL.codes[i] >= 0 && hits[TEXT_COL.codes[i]]) mask[i] = 1;
  }
  return mask;
}

const search = $('search');
let searchTimer = 0;
function runSearch() {
  S.query = search.value;
  S.queryMask = searchMask(S.query);
  applyFilters();
}
search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 120);
});
search.addEventListener('keydown', (e) => {
  if (e.key !== 'Enter') return;
  clearTimeout(searchTimer);
  runSearch();
  const hits = matchedPoints();
  if (hits.length) zoomToPoints(hits);
});

// ------------------------------------------------------------------------------------------------ selection
let lasso = null;

function pointInPolygon(x, y, poly) {
  let inside = false;
  for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
    const [xa, ya] = poly[a];
    const [xb, yb] = poly[b];
    if (ya > y !== yb > y && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) inside = !inside;
  }
  return inside;
}

function finishLasso(poly) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const [x, y] of poly) {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  const picked = [];
  for (let i = 0; i < N; i++) {
    if (!S.matched[i]) continue;
    const [sx, sy] = toScreen(i);
    if (sx < x0 || sx > x1 || sy < y0 || sy > y1) continue;
    if (pointInPolygon(sx, sy, poly)) picked.push(i);
  }
  if (picked.length) selectPoints(picked);
}

/** Make `points` the selection: the map keeps just them, the panel shows their gallery and the CSV export. */
function selectPoints(points) {
  S.selection = Int32Array.from(points);
  S.selMask = new Uint8Array(N);
  for (const i of points) S.selMask[i] = 1;
  applyFilters();
  showSelection();
}

function clearSelection() {
  S.selection = null;
  S.selMask = null;
  applyFilters();
  if (S.panel === 'selection') showOverview();
}

/** One CSV cell: RFC 4180 quoting, and a leading ' on values a spreadsheet would run as a formula. */
function csvCell(value) {
  let s = value === null || value === undefined ? '' : String(value);
  if (/^[=+@\t\r]/.test(s) || (/^-/.test(s) && !/^-?\d+(\.\d+)?$/.test(s))) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function exportSelection() {
  if (!S.selection) return;
  const column = VIEWS[S.k].column;
  const lines = [['id', 'url', column, 'probability'].map(csvCell).join(',')];
  for (const i of S.selection) {
    const p = prob(i);
    lines.push([idOf(i), urlOf(i), S.labels[i], Number.isFinite(p) ? p.toFixed(4) : ''].map(csvCell).join(','));
  }
  const blob = new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv;charset=utf-8' });
  const a = el('a', '', null, { download: 'selection.csv' });
  a.href = URL.createObjectURL(blob);
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
