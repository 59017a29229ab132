/* The view: fitting, zooming and animated moves of the map. */
function resize() {
  const rect = mapEl.getBoundingClientRect();
  const oldW = W;
  const oldH = H;
  W = Math.max(1, rect.width);
  H = Math.max(1, rect.height);
  DPR = window.devicePixelRatio || 1;
  for (const c of [glCanvas, overlay]) {
    c.width = Math.round(W * DPR);
    c.height = Math.round(H * DPR);
  }
  const fit = fitView(GRID.x0, GRID.y0, GRID.x1, GRID.y1);
  if (S.ready && oldW > 1) {
    S.view.scale *= Math.min(W / oldW, H / oldH) || 1;
    S.home = fit;
  } else {
    S.home = fit;
    S.view = Object.assign({}, fit);
  }
  requestDraw();
}

function fitView(x0, y0, x1, y1, pad) {
  const p = pad === undefined ? 0.06 : pad;
  const w = Math.max(x1 - x0, 1e-6);
  const h = Math.max(y1 - y0, 1e-6);
  let scale = Math.min(W / (w * (1 + 2 * p)), H / (h * (1 + 2 * p)));
  if (x1 - x0 < 1e-6 && y1 - y0 < 1e-6) scale = Math.min(W, H) / 10;
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale };
}

function clampScale(s) {
  return Math.min(S.home.scale * 5000, Math.max(S.home.scale * 0.25, s));
}

let animToken = 0;
function animateTo(target, ms) {
  const from = Object.assign({}, S.view);
  const to = Object.assign({}, target, { scale: clampScale(target.scale) });
  const token = ++animToken;
  const duration = ms === undefined ? 380 : ms;
  const t0 = performance.now();
  S.animating = true;
  function step(now) {
    if (token !== animToken) return;
    const t = Math.min(1, (now - t0) / duration);
    const e = t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2;
    const ls = Math.log(from.scale) + (Math.log(to.scale) - Math.log(from.scale)) * e;
    S.view = { cx: from.cx + (to.cx - from.cx) * e, cy: from.cy + (to.cy - from.cy) * e, scale: Math.exp(ls) };
    LOD.moved = true;
    LOD.lastMove = now;
    pointsDirty = true;
    frame();
    if (t < 1) requestAnimationFrame(step);
    else S.animating = false;
  }
  requestAnimationFrame(step);
}

function stopAnimation() {
  animToken++;
  S.animating = false;
}

/** Zoom to a set of points, trimming 2 % on each side so a few strays do not decide the frame. */
function zoomToPoints(indices) {
  const pts = indices.filter((i) => VALID[i]);
  if (!pts.length) return;
  const xs = pts.map((i) => X[i]).sort((a, b) => a - b);
  const ys = pts.map((i) => Y[i]).sort((a, b) => a - b);
  const lo = Math.floor(pts.length * 0.02);
  const hi = Math.max(lo, Math.ceil(pts.length * 0.98) - 1);
  const target = fitView(xs[lo], ys[lo], xs[hi], ys[hi], 0.3);
  target.scale = Math.min(target.scale, S.home.scale * 40);
  animateTo(target);
}

function zoomAt(sx, sy, factor) {
  stopAnimation();
  const v = S.view;
  const dx = v.cx + (sx - W / 2) / v.scale;
  const dy = v.cy - (sy - H / 2) / v.scale;
  const scale = clampScale(v.scale * factor);
  S.view = { cx: dx - (sx - W / 2) / scale, cy: dy + (sy - H / 2) / scale, scale };
  viewMoved();
}
