/* Pointer, wheel, button and keyboard input on the map. */
// ------------------------------------------------------------------------------------------------ input
let drag = null;

function localXY(e) {
  const r = overlay.getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}

let hoverQueued = null;
function queueHover(e) {
  const first = hoverQueued === null;
  hoverQueued = localXY(e);
  if (!first) return;
  requestAnimationFrame(() => {
    const [mx, my] = hoverQueued;
    hoverQueued = null;
    if (drag) return;
    const i = pick(mx, my, pointPx() / 2 + HOVER_SLOP_PX);
    if (i !== S.hover) {
      S.hover = i;
      if (i >= 0) showTooltip(i, mx, my);
      else tt.hidden = true;
      requestOverlay();
    } else if (i >= 0) {
      placeTooltip(mx, my);
    }
    overlay.style.cursor = i >= 0 ? 'pointer' : '';
  });
}

overlay.addEventListener('pointerdown', (e) => {
  if (e.button !== 0) return;
  overlay.focus({ preventScroll: true });
  const [x, y] = localXY(e);
  overlay.setPointerCapture(e.pointerId);
  stopAnimation();
  if (e.shiftKey) {
    lasso = [[x, y]];
    overlay.classList.add('lasso');
    drag = { kind: 'lasso' };
  } else {
    drag = { kind: 'pan', x, y, cx: S.view.cx, cy: S.view.cy, moved: false };
  }
  hideTooltip();
});

overlay.addEventListener('pointermove', (e) => {
  if (!drag) {
    queueHover(e);
    return;
  }
  const [x, y] = localXY(e);
  if (drag.kind === 'lasso') {
    const last = lasso[lasso.length - 1];
    if (Math.hypot(x - last[0], y - last[1]) > 2) lasso.push([x, y]);
    requestOverlay();
    return;
  }
  if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3) {
    drag.moved = true;
    overlay.classList.add('dragging');
  }
  if (drag.moved) {
    const scale = S.view.scale;
    S.view = { cx: drag.cx - (x - drag.x) / scale, cy: drag.cy + (y - drag.y) / scale, scale };
    viewMoved();
  }
});

function endDrag(e, cancelled) {
  if (!drag) return;
  const d = drag;
  drag = null;
  overlay.classList.remove('dragging', 'lasso');
  if (d.kind === 'lasso') {
    const poly = lasso;
    lasso = null;
    if (!cancelled && poly.length > 2) finishLasso(poly);
    requestOverlay();
    return;
  }
  if (!cancelled && !d.moved) {
    const [x, y] = localXY(e);
    const i = pick(x, y, pointPx() / 2 + HOVER_SLOP_PX);
    if (i >= 0) showPoint(i);
  }
}
overlay.addEventListener('pointerup', (e) => endDrag(e, false));
overlay.addEventListener('pointercancel', (e) => endDrag(e, true));
overlay.addEventListener('pointerleave', () => {
  if (!drag) hideTooltip();
});

overlay.addEventListener(
  'wheel',
  (e) => {
    e.preventDefault();
    const unit = e.deltaMode === 1 ? 32 : e.deltaMode === 2 ? 400 : 1;
    const [x, y] = localXY(e);
    zoomAt(x, y, Math.exp(-e.deltaY * unit * 0.0015));
    tt.hidden = true;
    S.hover = -1;
  },
  { passive: false },
);

overlay.addEventListener('dblclick', (e) => {
  const [x, y] = localXY(e);
  zoomAt(x, y, 2);
});

$('zoom-in').addEventListener('click', () => zoomAt(W / 2, H / 2, 1.6));
$('zoom-out').addEventListener('click', () => zoomAt(W / 2, H / 2, 1 / 1.6));
$('reset').addEventListener('click', () => animateTo(S.home));
$('all-clusters').addEventListener('click', () => {
  if (S.path.length) goUp(0);
  else focusCluster(null);
});
$('panel-back').addEventListener('click', () => {
  S.current = -1;
  const scope = S.path.length ? S.path[S.path.length - 1] : null;
  if (S.selection) showSelection();
  else if (S.focus !== null) showCluster(S.focus);
  else if (S.account >= 0) showAccount(S.account);
  else if (scope) showCluster(scope.label, scope.view);
  else showOverview();
});

$('noise').addEventListener('change', (e) => {
  S.showNoise = e.target.checked;
  if (!S.showNoise && S.focus === -1) S.focus = null;
  markFocus();
  applyFilters();
});
$('labels').addEventListener('change', (e) => {
  S.showLabels = e.target.checked;
  requestOverlay();
});

document.addEventListener('keydown', (e) => {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
  if (e.key === 'Escape') {
    // Back out one step at a time: the selection, the focused cluster, the drill-down, then the filters.
    if (typing) e.target.blur();
    if (S.selection) clearSelection();
    else if (S.focus !== null) focusCluster(null);
    else if (S.path.length) goUp(S.path.length - 1);
    else if (S.time) setTimeRange(null);
    else if (S.account >= 0) setAccount(-1);
    else if (S.since >= 0) setSince(-1);
    else if (S.query) {
      search.value = '';
      runSearch();
    } else if (S.panel !== 'overview') showOverview();
    return;
  }
  if (typing) return;
  if (e.key === '/') {
    e.preventDefault();
    search.focus();
  } else if (e.key === '+' || e.key === '=') zoomAt(W / 2, H / 2, 1.6);
  else if (e.key === '-') zoomAt(W / 2, H / 2, 1 / 1.6);
  else if (e.key === 'Home') animateTo(S.home);
});

glCanvas.addEventListener('webglcontextlost', (e) => e.preventDefault());
glCanvas.addEventListener('webglcontextrestored', () => {
  R = createWebGL(glCanvas) || createCanvas2D(glCanvas);
  uploadPoints();
  requestDraw();
});
