/* Search over id, URL and text, and lasso selection with CSV export. */
// ------------------------------------------------------------------------------------------------ search
let haystack = null;
function ensureHaystack() {
  if (haystack) return;
  haystack = new Array(N);
  for (let i = 0; i < N; i++) {
    haystack[i] = `${IDS[i] ?? ''}\n${URLS[i] ?? ''}\n${textOf(i) ?? ''}`.toLowerCase();
  }
}

const search = $('search');
let searchTimer = 0;
search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    S.query = search.value;
    applyFilters();
  }, 120);
});
search.addEventListener('keydown', (e) => {
  if (e.key !== 'Enter') return;
  clearTimeout(searchTimer);
  S.query = search.value;
  applyFilters();
  const hits = [];
  for (let i = 0; i < N; i++) if (S.matched[i]) hits.push(i);
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
  if (!picked.length) return;
  S.selection = Int32Array.from(picked);
  S.selMask = new Uint8Array(N);
  for (const i of picked) S.selMask[i] = 1;
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
  const column = CLUSTERINGS[S.k].column;
  const lines = [['id', 'url', column, 'probability'].map(csvCell).join(',')];
  for (const i of S.selection) {
    const p = prob(i);
    lines.push([IDS[i], URLS[i], S.labels[i], Number.isFinite(p) ? p.toFixed(4) : ''].map(csvCell).join(','));
  }
  const blob = new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv;charset=utf-8' });
  const a = el('a', '', null, { download: 'selection.csv' });
  a.href = URL.createObjectURL(blob);
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
