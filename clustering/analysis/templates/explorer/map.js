/* The map: a spatial index for picking, the WebGL renderer (Canvas 2D fallback), the overlay with rings, labels
 * and the lasso. */
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
    draw() {
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(bg[0], bg[1], bg[2], 1);
      gl.clear(gl.COLOR_BUFFER_BIT);
      if (!count) return 0;
      const v = S.view;
      gl.uniform2f(loc.center, v.cx, v.cy);
      gl.uniform2f(loc.scale, (2 * v.scale) / W, (2 * v.scale) / H);
      gl.uniform1f(loc.px, pointPx() * DPR);
      gl.drawArrays(gl.POINTS, 0, count);
      return count;
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
    draw() {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = '#0e1014';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      if (!data) return 0;
      const v = S.view;
      const px = pointPx() * DPR;
      let last = -1;
      for (let j = 0; j < data.n; j++) {
        const c = data.col;
        const o = 4 * j;
        const key = (c[o] << 24) ^ (c[o + 1] << 16) ^ (c[o + 2] << 8) ^ c[o + 3];
        if (key !== last) {
          ctx.fillStyle = `rgba(${c[o]},${c[o + 1]},${c[o + 2]},${c[o + 3] / 255})`;
          last = key;
        }
        const r = (px * data.size[j]) / 2;
        const sx = ((data.pos[2 * j] - v.cx) * v.scale + W / 2) * DPR;
        const sy = (H / 2 - (data.pos[2 * j + 1] - v.cy) * v.scale) * DPR;
        ctx.fillRect(sx - r, sy - r, 2 * r, 2 * r);
      }
      return data.n;
    },
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
function uploadPoints() {
  // Draw order: dimmed context first, then noise, then clustered points on top.
  let n = 0;
  const put = (i, rgb, a, s) => {
    BUF.pos[2 * n] = X[i];
    BUF.pos[2 * n + 1] = Y[i];
    BUF.col[4 * n] = rgb[0];
    BUF.col[4 * n + 1] = rgb[1];
    BUF.col[4 * n + 2] = rgb[2];
    BUF.col[4 * n + 3] = a;
    BUF.size[n] = s;
    n++;
  };
  const dim = new Map();
  for (const c of S.clusters) {
    dim.set(c.label, CONTEXT_RGB.map((v, k) => Math.round(v + (c.color[k] - v) * CONTEXT_TINT)));
  }
  for (let i = 0; i < N; i++) {
    if (S.visible[i] && !S.matched[i]) put(i, dim.get(S.labels[i]) || CONTEXT_RGB, ALPHA.context, SIZE.context);
  }
  for (let i = 0; i < N; i++) if (S.matched[i] && S.labels[i] < 0) put(i, NOISE_RGB, ALPHA.noise, SIZE.noise);
  for (let i = 0; i < N; i++) if (S.matched[i] && S.labels[i] >= 0) put(i, colorOf(i), ALPHA.cluster, SIZE.cluster);
  R.upload(BUF.pos, BUF.col, BUF.size, n);
}

let frameRequested = false;
function requestDraw() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(frame);
}

function frame() {
  frameRequested = false;
  drawCount = R.draw();
  drawOverlay();
  S.frames++;
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

/** Cluster numbers at their centroids, biggest clusters first, skipping labels that would overlap. */
function drawLabels() {
  const placed = [];
  const maxLabels = Math.max(12, Math.round((W * H) / LABEL_AREA_PX));
  octx.font = '600 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  octx.textAlign = 'center';
  octx.textBaseline = 'middle';
  octx.lineJoin = 'round';
  for (const c of S.clusters) {
    if (S.focus !== null && S.focus !== c.label) continue;
    const sx = (c.cx - S.view.cx) * S.view.scale + W / 2;
    const sy = H / 2 - (c.cy - S.view.cy) * S.view.scale;
    if (sx < 0 || sy < 0 || sx > W || sy > H) continue;
    const text = String(c.label);
    const w = octx.measureText(text).width + 12;
    const box = [sx - w / 2, sy - 9, sx + w / 2, sy + 9];
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
    octx.fillText(text, sx, sy + 0.5);
    if (placed.length >= maxLabels) break;
  }
}
