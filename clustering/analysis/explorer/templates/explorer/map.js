/* The map: a spatial index for picking, level-of-detail tiles, the WebGL renderer (Canvas 2D fallback), the overlay
 * with rings, labels and the lasso. */
// ------------------------------------------------------------------------------------------------ spatial index
/** A uniform grid over the data, CSR-packed: cell c holds items[start[c] .. start[c+1]). */
const GRID = (function build() {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  let n = 0;
  for (let i = 0; i < N; i++) {
    if (!VALID[i]) continue;
    n++;
    if (X[i] < x0) x0 = X[i];
    if (X[i] > x1) x1 = X[i];
    if (Y[i] < y0) y0 = Y[i];
    if (Y[i] > y1) y1 = Y[i];
  }
  if (!n) return { n: 0, x0: 0, y0: 0, x1: 1, y1: 1 };
  const w = Math.max(x1 - x0, 1e-9);
  const h = Math.max(y1 - y0, 1e-9);
  const side = Math.max(1, Math.min(512, Math.round(Math.sqrt(n / 4))));
  const gx = side;
  const gy = side;
  const cellOf = new Int32Array(N);
  const count = new Int32Array(gx * gy + 1);
  for (let i = 0; i < N; i++) {
    if (!VALID[i]) continue;
    const cx = Math.min(gx - 1, Math.floor(((X[i] - x0) / w) * gx));
    const cy = Math.min(gy - 1, Math.floor(((Y[i] - y0) / h) * gy));
    cellOf[i] = cy * gx + cx;
    count[cellOf[i] + 1]++;
  }
  for (let c = 0; c < gx * gy; c++) count[c + 1] += count[c];
  const start = count.slice();
  const items = new Int32Array(n);
  const fill = count.slice(0, gx * gy);
  for (let i = 0; i < N; i++) if (VALID[i]) items[fill[cellOf[i]]++] = i;
  return { n, x0, y0, x1, y1, w, h, gx, gy, start, items };
})();

// ------------------------------------------------------------------------------------------------ level of detail
/** Each valid point's tile (TILE_SIDE x TILE_SIDE over the data), and all valid points in a fixed random order: a
 * frame that must draw fewer points takes the first ones of each tile, the same sample every frame (no flicker). */
const TILES = TILE_SIDE * TILE_SIDE;
const TILE = new Uint16Array(N);
const ORDER = (function shuffled() {
  const order = new Int32Array(GRID.n);
  let n = 0;
  for (let i = 0; i < N; i++) {
    if (!VALID[i]) continue;
    const tx = Math.min(TILE_SIDE - 1, Math.floor(((X[i] - GRID.x0) / GRID.w) * TILE_SIDE));
    const ty = Math.min(TILE_SIDE - 1, Math.floor(((Y[i] - GRID.y0) / GRID.h) * TILE_SIDE));
    TILE[i] = ty * TILE_SIDE + tx;
    order[n++] = i;
  }
  let seed = 0x9e3779b9; // xorshift32: a fixed seed, so the sample is the same on every load
  for (let j = n - 1; j > 0; j--) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    const r = (seed >>> 0) % (j + 1);
    const t = order[j];
    order[j] = order[r];
    order[r] = t;
  }
  return order;
})();
// Three layers drawn in order (filtered-out context, noise, clustered points on top), each tile by tile.
const LAYERS = 3;
const BUCKET_START = new Int32Array(LAYERS * TILES + 1);

/** Nearest shown point within `radiusPx` of the screen position, or -1. */
function pick(sx, sy, radiusPx) {
  if (!GRID.n) return -1;
  const v = S.view;
  const dx = v.cx + (sx - W / 2) / v.scale;
  const dy = v.cy - (sy - H / 2) / v.scale;
  const r = radiusPx / v.scale;
  const cx0 = Math.max(0, Math.floor(((dx - r - GRID.x0) / GRID.w) * GRID.gx));
  const cx1 = Math.min(GRID.gx - 1, Math.floor(((dx + r - GRID.x0) / GRID.w) * GRID.gx));
  const cy0 = Math.max(0, Math.floor(((dy - r - GRID.y0) / GRID.h) * GRID.gy));
  const cy1 = Math.min(GRID.gy - 1, Math.floor(((dy + r - GRID.y0) / GRID.h) * GRID.gy));
  let best = -1;
  let bestD = r * r;
  for (let cy = cy0; cy <= cy1; cy++) {
    for (let cx = cx0; cx <= cx1; cx++) {
      const c = cy * GRID.gx + cx;
      for (let p = GRID.start[c]; p < GRID.start[c + 1]; p++) {
        const i = GRID.items[p];
        if (!S.matched[i]) continue;
        const ex = X[i] - dx;
        const ey = Y[i] - dy;
        const d = ex * ex + ey * ey;
        if (d <= bestD) {
          bestD = d;
          best = i;
        }
      }
    }
  }
  return best;
}

// ------------------------------------------------------------------------------------------------ rendering
const mapEl = $('map');
const glCanvas = $('gl');
const overlay = $('overlay');
const octx = overlay.getContext('2d');
let W = 1;
let H = 1;
let DPR = 1;
let drawCount = 0;

const BASE_PX = Math.max(2.5, Math.min(9, 14 / Math.pow(Math.max(N, 1), 0.13)));
function pointPx() {
  const zoom = S.view.scale / S.home.scale;
  return BASE_PX * Math.min(4, Math.max(1, Math.pow(zoom, 0.35)));
}

function createWebGL(canvas) {
  const gl = canvas.getContext('webgl', {
    antialias: false,
    alpha: false,
    depth: false,
    preserveDrawingBuffer: true,
    premultipliedAlpha: false,
  });
  if (!gl) return null;
  const vs = `
    attribute vec2 a_pos; attribute vec4 a_col; attribute float a_size;
    uniform vec2 u_center; uniform vec2 u_scale; uniform float u_px;
    varying vec4 v_col; varying float v_px;
    void main() {
      gl_Position = vec4((a_pos - u_center) * u_scale, 0.0, 1.0);
      v_px = max(u_px * a_size, 1.5);
      gl_PointSize = v_px;
      v_col = a_col;
    }`;
  const fs = `
    precision mediump float;
    varying vec4 v_col; varying float v_px;
    void main() {
      vec2 p = gl_PointCoord * 2.0 - 1.0;
      float r = length(p);
      float edge = 1.0 - smoothstep(1.0 - 2.0 / v_px, 1.0, r);
      if (edge <= 0.0) discard;
      float shade = 1.0 - 0.25 * smoothstep(0.55, 1.0, r);
      gl_FragColor = vec4(v_col.rgb * shade, v_col.a * edge);
    }`;
  function shader(type, src) {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    return s;
  }
  const prog = gl.createProgram();
  gl.attachShader(prog, shader(gl.VERTEX_SHADER, vs));
  gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, fs));
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
  gl.useProgram(prog);
  const loc = {
    pos: gl.getAttribLocation(prog, 'a_pos'),
    col: gl.getAttribLocation(prog, 'a_col'),
    size: gl.getAttribLocation(prog, 'a_size'),
    center: gl.getUniformLocation(prog, 'u_center'),
    scale: gl.getUniformLocation(prog, 'u_scale'),
    px: gl.getUniformLocation(prog, 'u_px'),
  };
  const bufs = { pos: gl.createBuffer(), col: gl.createBuffer(), size: gl.createBuffer() };
  gl.enable(gl.BLEND);
  gl.blendFuncSeparate(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA, gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
  const bg = [14 / 255, 16 / 255, 20 / 255];
  const pixel = new Uint8Array(4);
  let count = 0;
  return {
    kind: 'webgl',
    upload(pos, col, size, n) {
      count = n;
      gl.bindBuffer(gl.ARRAY_BUFFER, bufs.pos);
      gl.bufferData(gl.ARRAY_BUFFER, pos.subarray(0, 2 * n), gl.STATIC_DRAW);
      gl.enableVertexAttribArray(loc.pos);
      gl.vertexAttribPointer(loc.pos, 2, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ARRAY_BUFFER, bufs.col);
      gl.bufferData(gl.ARRAY_BUFFER, col.subarray(0, 4 * n), gl.STATIC_DRAW);
      gl.enableVertexAttribArray(loc.col);
      gl.vertexAttribPointer(loc.col, 4, gl.UNSIGNED_BYTE, true, 0, 0);
      gl.bindBuffer(gl.ARRAY_BUFFER, bufs.size);
      gl.bufferData(gl.ARRAY_BUFFER, size.subarray(0, n), gl.STATIC_DRAW);
      gl.enableVertexAttribArray(loc.size);
      gl.vertexAttribPointer(loc.size, 1, gl.FLOAT, false, 0, 0);
    },
    draw(ranges) {
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(bg[0], bg[1], bg[2], 1);
      gl.clear(gl.COLOR_BUFFER_BIT);
      if (!count) return 0;
      const v = S.view;
      gl.uniform2f(loc.center, v.cx, v.cy);
      gl.uniform2f(loc.scale, (2 * v.scale) / W, (2 * v.scale) / H);
      gl.uniform1f(loc.px, pointPx() * DPR);
      let drawn = 0;
      for (let r = 0; r < ranges.length; r += 2) {
        gl.drawArrays(gl.POINTS, ranges[r], ranges[r + 1]);
        drawn += ranges[r + 1];
      }
      return drawn;
    },
    /** Wait until the GPU has drawn the frame (to time it): reading a pixel back waits for it, gl.finish() does not
     * under Chromium's software GL. */
    finish() {
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
    },
  };
}

/** Fallback when WebGL is unavailable: the same buffers drawn with Canvas 2D (slower, still usable). */
function createCanvas2D(canvas) {
  const ctx = canvas.getContext('2d');
  let data = null;
  return {
    kind: 'canvas2d',
    upload(pos, col, size, n) {
      data = { pos: pos.slice(0, 2 * n), col: col.slice(0, 4 * n), size: size.slice(0, n), n };
    },
    draw(ranges) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = '#0e1014';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      if (!data) return 0;
      const v = S.view;
      const px = pointPx() * DPR;
      const c = data.col;
      let last = -1;
      let drawn = 0;
      for (let r = 0; r < ranges.length; r += 2) {
        const end = ranges[r] + ranges[r + 1];
        for (let j = ranges[r]; j < end; j++) {
          const o = 4 * j;
          const key = (c[o] << 24) ^ (c[o + 1] << 16) ^ (c[o + 2] << 8) ^ c[o + 3];
          if (key !== last) {
            ctx.fillStyle = `rgba(${c[o]},${c[o + 1]},${c[o + 2]},${c[o + 3] / 255})`;
            last = key;
          }
          const half = (px * data.size[j]) / 2;
          const sx = ((data.pos[2 * j] - v.cx) * v.scale + W / 2) * DPR;
          const sy = (H / 2 - (data.pos[2 * j + 1] - v.cy) * v.scale) * DPR;
          ctx.fillRect(sx - half, sy - half, 2 * half, 2 * half);
        }
        drawn += ranges[r + 1];
      }
      return drawn;
    },
    finish() {}, // Canvas 2D draws synchronously
  };
}

// `explorer.html?renderer=canvas2d` forces the fallback (to compare, or on a machine whose WebGL misbehaves).
let R = null;
if (new URLSearchParams(window.location.search).get('renderer') !== 'canvas2d') {
  try {
    R = createWebGL(glCanvas);
  } catch (err) {
    console.warn('explorer: WebGL failed, using Canvas 2D', err);
    R = null;
  }
}
if (!R) R = createCanvas2D(glCanvas);

const BUF = { pos: new Float32Array(2 * N), col: new Uint8Array(4 * N), size: new Float32Array(N) };
const LAYER = new Int8Array(N);

/** Fill the point buffers: layer by layer (context, noise, clusters), tile by tile, each tile in ORDER. */
function uploadPoints() {
  const dim = new Map();
  for (const c of S.clusters) {
    dim.set(c.label, CONTEXT_RGB.map((v, k) => Math.round(v + (c.color[k] - v) * CONTEXT_TINT)));
  }
  const count = new Int32Array(LAYERS * TILES + 1);
  for (let j = 0; j < ORDER.length; j++) {
    const i = ORDER[j];
    const layer = !S.visible[i] ? -1 : !S.matched[i] ? 0 : S.labels[i] < 0 ? 1 : 2;
    LAYER[i] = layer;
    if (layer >= 0) count[layer * TILES + TILE[i] + 1]++;
  }
  for (let b = 0; b < LAYERS * TILES; b++) count[b + 1] += count[b];
  BUCKET_START.set(count);
  const fill = count.slice(0, LAYERS * TILES);
  for (let j = 0; j < ORDER.length; j++) {
    const i = ORDER[j];
    const layer = LAYER[i];
    if (layer < 0) continue;
    const n = fill[layer * TILES + TILE[i]]++;
    const rgb = layer === 0 ? dim.get(S.labels[i]) || CONTEXT_RGB : layer === 1 ? NOISE_RGB : colorOf(i);
    BUF.pos[2 * n] = X[i];
    BUF.pos[2 * n + 1] = Y[i];
    BUF.col[4 * n] = rgb[0];
    BUF.col[4 * n + 1] = rgb[1];
    BUF.col[4 * n + 2] = rgb[2];
    BUF.col[4 * n + 3] = layer === 0 ? ALPHA.context : layer === 1 ? ALPHA.noise : ALPHA.cluster;
    BUF.size[n] = layer === 0 ? SIZE.context : layer === 1 ? SIZE.noise : SIZE.cluster;
  }
  R.upload(BUF.pos, BUF.col, BUF.size, count[LAYERS * TILES]);
}

// `explorer.html?lod=50000` pins the budget: every frame draws at most that many points, without adapting (a slow
// machine, a fast one that should always draw everything, or to see the sampling at work).
const LOD_PARAM = Math.round(Number(new URLSearchParams(window.location.search).get('lod')));
const LOD_PINNED = LOD_PARAM >= 1;
const LOD_START = LOD_PINNED ? LOD_PARAM : LOD_FULL[R.kind];
const LOD = { budget: LOD_START, full: LOD_START, sampled: false, moved: false, wasMoving: false, lastFrame: 0,
  lastMove: 0, settle: 0, settling: false }; // prettier-ignore

/** The [start, count, ...] buffer ranges of this frame: tiles on screen, each cut to its share of the budget. */
function frameRanges(budget) {
  const v = S.view;
  const pad = pointPx() / v.scale;
  const wx0 = v.cx - W / 2 / v.scale - pad;
  const wx1 = v.cx + W / 2 / v.scale + pad;
  const wy0 = v.cy - H / 2 / v.scale - pad;
  const wy1 = v.cy + H / 2 / v.scale + pad;
  const tileOf = (value, origin, extent) => Math.floor(((value - origin) / extent) * TILE_SIDE);
  const tx0 = Math.max(0, tileOf(wx0, GRID.x0, GRID.w));
  const tx1 = Math.min(TILE_SIDE - 1, tileOf(wx1, GRID.x0, GRID.w));
  const ty0 = Math.max(0, tileOf(wy0, GRID.y0, GRID.h));
  const ty1 = Math.min(TILE_SIDE - 1, tileOf(wy1, GRID.y0, GRID.h));
  const ranges = [];
  if (!GRID.n || tx0 > tx1 || ty0 > ty1) return ranges;
  let onScreen = 0;
  for (let layer = 0; layer < LAYERS; layer++) {
    for (let ty = ty0; ty <= ty1; ty++) {
      const b = layer * TILES + ty * TILE_SIDE;
      onScreen += BUCKET_START[b + tx1 + 1] - BUCKET_START[b + tx0];
    }
  }
  const share = Math.min(1, budget / Math.max(1, onScreen));
  LOD.sampled = share < 1;
  for (let layer = 0; layer < LAYERS; layer++) {
    for (let ty = ty0; ty <= ty1; ty++) {
      for (let tx = tx0; tx <= tx1; tx++) {
        const b = layer * TILES + ty * TILE_SIDE + tx;
        const start = BUCKET_START[b];
        const size = BUCKET_START[b + 1] - start;
        if (!size) continue;
        const take = share < 1 ? Math.ceil(size * share) : size;
        const last = ranges.length - 2;
        if (last >= 0 && ranges[last] + ranges[last + 1] === start) ranges[last + 1] += take;
        else ranges.push(start, take);
      }
    }
  }
  return ranges;
}

let frameRequested = false;
let pointsDirty = true;

/** Redraw the points and the overlay at the next animation frame. */
function requestDraw() {
  pointsDirty = true;
  requestOverlay();
}

/** Redraw only the overlay (rings, labels, the lasso) at the next frame; the points stay as they are. */
function requestOverlay() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(frame);
}

/** The view moved (pan, zoom, animation): frames drawing it may draw fewer points until it rests. */
function viewMoved() {
  LOD.moved = true;
  LOD.lastMove = performance.now();
  requestDraw();
}

function frame() {
  frameRequested = false;
  if (pointsDirty) drawPoints();
  drawOverlay();
  S.frames++;
}

/** Draw the points. Frames of a moving view adapt the budget (a slow frame lowers it, a fast one raises it); once
 * no move came for LOD_SETTLE_MS, one full frame follows. */
function drawPoints() {
  pointsDirty = false;
  const now = performance.now();
  const moving = LOD.moved;
  LOD.moved = false;
  if (moving && LOD.wasMoving && !LOD_PINNED) {
    const gap = now - LOD.lastFrame;
    if (gap > LOD_SLOW_MS) LOD.budget = Math.max(LOD_MIN, Math.min(LOD.budget, drawCount) * 0.6);
    else if (gap < LOD_FAST_MS) LOD.budget = Math.min(LOD.full, LOD.budget * 1.25);
  }
  if (moving || LOD_PINNED) drawCount = R.draw(frameRanges(moving ? LOD.budget : LOD.full));
  else drawRestFrame();
  LOD.lastFrame = now;
  LOD.wasMoving = moving;
  if (moving && LOD.sampled && !LOD.settling) {
    LOD.settling = true;
    LOD.settle = setTimeout(settleView, LOD_SETTLE_MS);
  }
}

/** A frame at rest, timed: the next one draws as many points as fit in LOD_REST_MS at this frame's pace. */
function drawRestFrame() {
  const start = performance.now();
  drawCount = R.draw(frameRanges(LOD.full));
  if (drawCount < LOD_MIN) return;
  R.finish();
  const perPoint = (performance.now() - start) / drawCount;
  const fits = Math.round(LOD_REST_MS / Math.max(perPoint, 1e-6));
  LOD.full = Math.max(LOD_REST_FLOOR[R.kind], Math.min(Math.max(GRID.n, LOD_REST_FLOOR[R.kind]), fits));
  LOD.budget = Math.min(LOD.budget, LOD.full);
}

function settleView() {
  const rest = performance.now() - LOD.lastMove;
  if (rest < LOD_SETTLE_MS) {
    LOD.settle = setTimeout(settleView, LOD_SETTLE_MS - rest);
    return;
  }
  LOD.settling = false;
  requestDraw();
}

function toScreen(i) {
  const v = S.view;
  return [(X[i] - v.cx) * v.scale + W / 2, H / 2 - (Y[i] - v.cy) * v.scale];
}

function ring(i, color, extra) {
  if (i < 0 || !VALID[i]) return;
  const [sx, sy] = toScreen(i);
  const r = pointPx() / 2 + extra;
  octx.beginPath();
  octx.arc(sx, sy, r, 0, 2 * Math.PI);
  octx.lineWidth = 2.5;
  octx.strokeStyle = 'rgba(0,0,0,0.8)';
  octx.stroke();
  octx.lineWidth = 1.5;
  octx.strokeStyle = color;
  octx.stroke();
}

function drawOverlay() {
  octx.setTransform(DPR, 0, 0, DPR, 0, 0);
  octx.clearRect(0, 0, W, H);
  if (S.showLabels) drawLabels();
  ring(S.current, '#ffffff', 5);
  ring(S.galleryHover, '#8ab4ff', 6);
  ring(S.hover, '#ffffff', 3);
  if (lasso && lasso.length > 1) {
    octx.beginPath();
    octx.moveTo(lasso[0][0], lasso[0][1]);
    for (const [x, y] of lasso) octx.lineTo(x, y);
    octx.closePath();
    octx.fillStyle = 'rgba(138,180,255,0.12)';
    octx.fill();
    octx.setLineDash([5, 4]);
    octx.lineWidth = 1.5;
    octx.strokeStyle = '#8ab4ff';
    octx.stroke();
    octx.setLineDash([]);
  }
}

const NEW_TAG_PX = 34;

/** The "new" tag of a map label, `x` its left edge, `y` the label's middle. */
function drawNewTag(x, y) {
  octx.save();
  octx.beginPath();
  octx.roundRect(x, y - 6.5, NEW_TAG_PX - 4, 13, 6.5);
  octx.fillStyle = '#edd050';
  octx.fill();
  octx.font = '700 9.5px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  octx.fillStyle = '#14161a';
  octx.fillText('NEW', x + (NEW_TAG_PX - 4) / 2, y + 0.5);
  octx.restore();
}

/** Screen pixels a cluster's points cover at the current zoom: its dots, or the disc of its spread if smaller. */
function coveredPx(c) {
  const dot = pointPx();
  const disc = Math.PI * (c.spread * S.view.scale) ** 2 + dot * dot;
  return Math.min(disc, c.members.length * dot * dot);
}

/** Cluster numbers at their centroids, biggest clusters first, skipping labels that would overlap and clusters too
 * small on screen to be seen (LABEL_VISIBLE_PX). */
function drawLabels() {
  const placed = [];
  S.labelled = [];
  const maxLabels = Math.max(12, Math.round((W * H) / LABEL_AREA_PX));
  octx.font = '600 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  octx.textAlign = 'center';
  octx.textBaseline = 'middle';
  octx.lineJoin = 'round';
  for (const c of S.clusters) {
    if (!c.inScope || (S.focus !== null && S.focus !== c.label)) continue;
    const sx = (c.cx - S.view.cx) * S.view.scale + W / 2;
    const sy = H / 2 - (c.cy - S.view.cy) * S.view.scale;
    if (sx < 0 || sy < 0 || sx > W || sy > H) continue;
    const covered = coveredPx(c);
    if (covered < LABEL_VISIBLE_PX) continue;
    const name = c.info && c.info.name ? cut(c.info.name, LABEL_MAX_CHARS) : null;
    const text = name ? `${c.label} · ${name}${c.info.uncertain ? ' ?' : ''}` : String(c.label);
    const isNew = !!(c.info && c.info.new); // appeared in the latest batch (history.js): a "new" tag in the label
    const tw = octx.measureText(text).width;
    const w = tw + 12 + (isNew ? NEW_TAG_PX : 0);
    // A cluster near the edge keeps its whole label in view: the label slides inwards, its centroid stays put.
    const lx = Math.min(Math.max(sx, w / 2 + 2), Math.max(w / 2 + 2, W - w / 2 - 2));
    const box = [lx - w / 2, sy - 9, lx + w / 2, sy + 9];
    const m = LABEL_MARGIN_PX;
    const overlaps = (b) => box[0] < b[2] + m && box[2] + m > b[0] && box[1] < b[3] + m && box[3] + m > b[1];
    if (placed.some(overlaps)) continue;
    placed.push(box);
    octx.beginPath();
    octx.roundRect(box[0], box[1], w, 18, 9);
    octx.fillStyle = 'rgba(14,16,20,0.82)';
    octx.fill();
    octx.lineWidth = 1.5;
    octx.strokeStyle = rgbCss(c.color);
    octx.stroke();
    octx.fillStyle = '#f2f4f7';
    octx.fillText(text, lx - (isNew ? NEW_TAG_PX / 2 : 0), sy + 0.5);
    if (isNew) drawNewTag(lx + w / 2 - NEW_TAG_PX - 2, sy);
    S.labelled.push({ label: c.label, covered, new: isNew });
    if (placed.length >= maxLabels) break;
  }
}
