/* The timeline under the map: posts per day or week (grey: every drawn point; colour: the points the other filters
 * keep), and a brush that keeps the points posted in a period. Without dates it is one line saying why. */
// ------------------------------------------------------------------------------------------------ bins
/** Each point's period (day, or ISO week starting Monday) counted from the first one; -1 without a date. */
const TL = (function bins() {
  if (!TIME) return null;
  const period = META.time.period === 'week' ? 'week' : 'day';
  // 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Mondays, as the analysis counts them.
  const periodOfDay = period === 'week' ? (d) => Math.floor((d + 3) / 7) : (d) => d;
  const bin = new Int32Array(N);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < N; i++) {
    if (TIME[i] < 0) {
      bin[i] = -1;
      continue;
    }
    const p = periodOfDay(Math.floor((META.time.origin + TIME[i]) / 86400));
    bin[i] = p;
    if (p < lo) lo = p;
    if (p > hi) hi = p;
  }
  for (let i = 0; i < N; i++) if (bin[i] >= 0) bin[i] -= lo;
  const n = hi - lo + 1;
  const firstDay = period === 'week' ? (p) => (p + lo) * 7 - 3 : (p) => p + lo;
  return { period, bin, n, firstDay, counts: new Int32Array(n), all: new Int32Array(n) };
})();

const tlCanvas = $('tl-canvas');
const tlCtx = tlCanvas.getContext('2d');
const TL_PAD = { left: 8, right: 8, top: 6, bottom: 16 };
let tlBrush = null; // [from, to] bins while dragging

/** "3 Sep 2024", or "3–9 Sep 2024" for a week. */
function periodLabel(b, { short = false } = {}) {
  const day = TL.firstDay(b);
  const opts = short ? { day: 'numeric', month: 'short' } : { day: 'numeric', month: 'short', year: 'numeric' };
  const f = new Intl.DateTimeFormat('en-GB', { ...opts, timeZone: 'UTC' });
  const start = new Date(day * 86400000);
  return TL.period === 'week' ? `week of ${f.format(start)}` : f.format(start);
}

function initTimeline() {
  $('tl-plot').hidden = !TL;
  $('tl-note').hidden = !!TL;
  if (!TL) {
    $('tl-title').textContent = 'No timeline';
    $('tl-note').textContent = META.time.note || 'No dates in the data.';
    return;
  }
  $('tl-title').textContent = `Posts per ${TL.period}`;
  new ResizeObserver(() => drawTimeline()).observe($('tl-plot'));
}

function binAt(clientX) {
  const r = tlCanvas.getBoundingClientRect();
  const w = r.width - TL_PAD.left - TL_PAD.right;
  const b = Math.floor(((clientX - r.left - TL_PAD.left) / Math.max(1, w)) * TL.n);
  return Math.min(TL.n - 1, Math.max(0, b));
}

function drawTimeline() {
  if (!TL) return;
  const r = tlCanvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  tlCanvas.width = Math.max(1, Math.round(r.width * dpr));
  tlCanvas.height = Math.max(1, Math.round(r.height * dpr));
  const ctx = tlCtx;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, r.width, r.height);
  const w = r.width - TL_PAD.left - TL_PAD.right;
  const h = r.height - TL_PAD.top - TL_PAD.bottom;
  // With other filters on, the bars count what they keep (grey behind: every drawn point); else every drawn point.
  const filtered = S.path.length > 0 || S.focus !== null || !!S.queryMask || !!S.selMask || S.account >= 0 ||
    S.since >= 0;
  let max = 1;
  for (let b = 0; b < TL.n; b++) max = Math.max(max, filtered ? TL.counts[b] : TL.all[b]);
  const bw = w / TL.n;
  const range = tlBrush || S.time;
  const a = range ? Math.min(range[0], range[1]) : 0;
  const z = range ? Math.max(range[0], range[1]) : TL.n - 1;
  if (range) {
    ctx.fillStyle = 'rgba(138,180,255,0.14)';
    ctx.fillRect(TL_PAD.left + a * bw, TL_PAD.top - 4, (z - a + 1) * bw, h + 4);
  }
  const gap = bw > 4 ? 1 : 0;
  const focused = S.focus !== null && S.focus >= 0 ? S.byLabel.get(S.focus) : null;
  const accent = focused ? focused.color : [138, 180, 255];
  for (let b = 0; b < TL.n; b++) {
    const x = TL_PAD.left + b * bw;
    const inRange = b >= a && b <= z;
    const all = Math.min(TL.all[b], max);
    if (filtered && all) {
      ctx.fillStyle = 'rgba(155,163,174,0.22)';
      ctx.fillRect(x, TL_PAD.top + h - (all / max) * h, Math.max(1, bw - gap), (all / max) * h);
    }
    const value = filtered ? TL.counts[b] : TL.all[b];
    if (!value) continue;
    ctx.fillStyle = inRange ? rgbCss(accent, 0.9) : 'rgba(155,163,174,0.55)';
    ctx.fillRect(x, TL_PAD.top + h - (value / max) * h, Math.max(1, bw - gap), (value / max) * h);
  }
  ctx.fillStyle = '#9ba3ae';
  ctx.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  ctx.textBaseline = 'bottom';
  // Date labels about every 110 px: the first flush left, the last flush right (one period: one centred label).
  const ticks = Math.max(1, Math.min(TL.n, Math.floor(w / 110)));
  for (let t = 0; t < ticks; t++) {
    const b = ticks === 1 ? 0 : Math.round((t * (TL.n - 1)) / (ticks - 1));
    const edge = ticks > 1 && (t === 0 || t === ticks - 1);
    ctx.textAlign = !edge ? 'center' : t === 0 ? 'left' : 'right';
    const x = !edge ? TL_PAD.left + (b + 0.5) * bw : t === 0 ? TL_PAD.left : TL_PAD.left + w;
    ctx.fillText(isoDay(TL.firstDay(b)), x, r.height);
  }
  updateTimeRange();
}

function updateTimeRange() {
  const range = tlBrush || S.time;
  $('tl-clear').hidden = !S.time;
  if (!range) {
    const dated = fmt.format(META.time.n_dated);
    $('tl-range').textContent = `${periodLabel(0)} – ${periodLabel(TL.n - 1)} · ${dated} dated posts`;
    return;
  }
  const a = Math.min(...range);
  const z = Math.max(...range);
  const span = a === z ? periodLabel(a) : `${periodLabel(a, { short: true })} – ${periodLabel(z)}`;
  $('tl-range').textContent = S.time && !tlBrush ? `${span} · ${fmt.format(S.nShown)} shown` : span;
}

/** Keep the points posted in bins a..z (inclusive); null keeps every point. */
function setTimeRange(range) {
  S.time = range ? [Math.min(...range), Math.max(...range)] : null;
  applyFilters();
  if (S.panel === 'account' && S.account >= 0) showAccount(S.account);
}

if (TL) {
  tlCanvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    tlCanvas.setPointerCapture(e.pointerId);
    const b = binAt(e.clientX);
    tlBrush = [b, b];
    drawTimeline();
  });
  tlCanvas.addEventListener('pointermove', (e) => {
    if (!tlBrush) return;
    tlBrush[1] = binAt(e.clientX);
    drawTimeline();
  });
  tlCanvas.addEventListener('pointerup', () => {
    if (!tlBrush) return;
    const range = tlBrush;
    tlBrush = null;
    const single = range[0] === range[1];
    const same = S.time && single && S.time[0] === range[0] && S.time[1] === range[0];
    setTimeRange(same ? null : range); // clicking the one kept period again lets it go
  });
  tlCanvas.addEventListener('pointercancel', () => {
    tlBrush = null;
    drawTimeline();
  });
  $('tl-clear').addEventListener('click', () => setTimeRange(null));
}
