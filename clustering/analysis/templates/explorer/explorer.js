/* clipcluster explorer: a WebGL scatter of the images with hover cards, a detail panel, cluster galleries, search,
 * lasso selection and CSV export. Vanilla JS, no dependencies, works from file://.
 *
 * Safety rule for this file: data (ids, URLs, texts, column names, titles) only ever reaches the DOM through
 * textContent and attribute setters; there is no HTML parsing of data anywhere. Links are made only for http(s) URLs.
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------------------------------------ constants
  const NOISE_RGB = [128, 134, 143];
  const CONTEXT_RGB = [82, 88, 98];
  const CONTEXT_TINT = 0.4; // filtered-out points keep a hint of their cluster colour, so the map keeps its shape
  const ALPHA = { cluster: 220, noise: 150, context: 120 };
  const SIZE = { cluster: 1.0, noise: 0.8, context: 0.75 };
  const GALLERY_PAGE = 120;
  const EXEMPLARS_IN_LIST = 5;
  const HOVER_SLOP_PX = 4;
  // Map labels: at most one per LABEL_AREA_PX of map (~50 on a laptop screen), LABEL_MARGIN_PX apart, so 100+
  // clusters do not bury the points; zooming in reveals the smaller clusters' labels.
  const LABEL_AREA_PX = 12000;
  const LABEL_MARGIN_PX = 8;
  const fmt = new Intl.NumberFormat('en-US');

  // ------------------------------------------------------------------------------------------------ DOM helpers
  const $ = (id) => document.getElementById(id);

  /** Create an element; `text` goes through textContent, `attrs` through setAttribute. Never parses HTML. */
  function el(tag, cls, text, attrs) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  /** An http(s) URL as a string, or null: javascript:, data: and relative URLs never become links. */
  function safeHttpUrl(value) {
    if (typeof value !== 'string' || !value) return null;
    try {
      const u = new URL(value);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (err) {
      return null;
    }
  }

  const rgbCss = (c, a) => (a === undefined ? `rgb(${c[0]},${c[1]},${c[2]})` : `rgba(${c[0]},${c[1]},${c[2]},${a})`);

  // ------------------------------------------------------------------------------------------------ data
  function decode(arr) {
    if (!arr) return null;
    const bin = atob(arr.b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const T = { i1: Int8Array, i2: Int16Array, i4: Int32Array, f4: Float32Array }[arr.dtype];
    return new T(bytes.buffer, 0, bytes.length / T.BYTES_PER_ELEMENT);
  }

  const D = JSON.parse($('explorer-data').textContent);
  const THUMBS = JSON.parse($('explorer-thumbs').textContent);
  const N = D.n;
  const X = decode(D.x) || new Float32Array(0);
  const Y = decode(D.y) || new Float32Array(0);
  const PROB = decode(D.probability);
  const OUTLIER = decode(D.outlier_score);
  const IDS = D.id;
  const URLS = D.url;
  const THUMB_INDEX = decode(D.thumbs.index);
  const CLUSTERINGS = D.clusterings.map((c) => Object.assign({}, c, { labels: null, raw: c.labels }));
  const COLUMNS = D.columns;
  const TEXT_COL = COLUMNS.find((c) => c.name === D.text_column) || null;
  const VALID = new Uint8Array(N);
  for (let i = 0; i < N; i++) VALID[i] = Number.isFinite(X[i]) && Number.isFinite(Y[i]) ? 1 : 0;

  function labelsOf(k) {
    const c = CLUSTERINGS[k];
    if (!c.labels) c.labels = decode(c.raw);
    return c.labels;
  }

  function columnValue(col, i) {
    if (col.values) return col.values[i];
    if (!col.codesArr) col.codesArr = decode(col.codes);
    const code = col.codesArr[i];
    return code < 0 ? null : col.dict[code];
  }

  const prob = (i) => (PROB ? PROB[i] : NaN);
  const textOf = (i) => (TEXT_COL ? columnValue(TEXT_COL, i) : null);

  function thumbSrc(i) {
    if (!THUMB_INDEX) return null;
    const code = THUMB_INDEX[i];
    if (code >= 0) return THUMBS[code];
    if (code === -1) return null;
    const k = -2 - code;
    const t = D.thumbs;
    const bucket = String(Math.floor(k / t.sidecar_bucket)).padStart(3, '0');
    return `${t.sidecar_base}${bucket}/${k}.${t.sidecar_ext[String(k)] || 'jpg'}`;
  }

  let nWithThumb = 0;
  if (THUMB_INDEX) for (let i = 0; i < N; i++) if (THUMB_INDEX[i] !== -1) nWithThumb++;

  // ------------------------------------------------------------------------------------------------ palette
  // Cluster colours, biggest cluster first: ten hand-picked hues that read well on the dark map, then greedy
  // farthest-point picks in OKLab (perceptual) space from an in-gamut grid, each as far as possible from every colour
  // already used, the noise grey and the background included. 120 colours stay >= 0.05 apart in OKLab.
  const BASE_PALETTE = ['#5b9cf0', '#f5a041', '#5fc46b', '#ef6567', '#b58be0', '#edd050', '#4fc3c7', '#ff9cc0',
    '#b98a6b', '#a3d977'];
  const BG_RGB = [14, 16, 20];

  const toLinear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const toGamma = (x) => (x <= 0.0031308 ? 12.92 * x : 1.055 * x ** (1 / 2.4) - 0.055);

  function rgbToOklab(rgb) {
    const [r, g, b] = rgb.map((v) => toLinear(v / 255));
    const l = Math.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
    const m = Math.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
    const s = Math.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
    return [
      0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
      1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s,
      0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s,
    ];
  }

  /** OKLab -> sRGB bytes, or null when outside the sRGB gamut. */
  function oklabToRgb(L, a, b) {
    const l = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3;
    const m = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3;
    const s = (L - 0.0894841775 * a - 1.291485548 * b) ** 3;
    const lin = [
      4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
      -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
      -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
    ];
    if (lin.some((v) => v < -1e-4 || v > 1 + 1e-4)) return null;
    return lin.map((v) => Math.round(255 * toGamma(Math.min(1, Math.max(0, v)))));
  }

  const PALETTE = BASE_PALETTE.map((hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));
  let paletteState = null;

  function extendPalette(count) {
    if (!paletteState) {
      const cands = [];
      for (let L = 0.62; L < 0.91; L += 0.04) {
        for (let C = 0.05; C < 0.23; C += 0.025) {
          for (let h = 0; h < 360; h += 8) {
            const a = C * Math.cos((h * Math.PI) / 180);
            const b = C * Math.sin((h * Math.PI) / 180);
            const rgb = oklabToRgb(L, a, b);
            if (rgb) cands.push({ lab: [L, a, b], rgb, d: Infinity });
          }
        }
      }
      paletteState = { cands };
      for (const rgb of [NOISE_RGB, BG_RGB, ...PALETTE]) markUsed(rgbToOklab(rgb));
    }
    const cands = paletteState.cands;
    while (PALETTE.length < count) {
      let best = null;
      for (const c of cands) if (!best || c.d > best.d) best = c;
      if (!best || best.d <= 1e-6) {
        // more clusters than candidates: reuse colours in order (only past ~1,600 clusters)
        PALETTE.push(PALETTE[PALETTE.length % cands.length]);
        continue;
      }
      PALETTE.push(best.rgb);
      markUsed(best.lab);
    }
  }

  function markUsed(lab) {
    for (const c of paletteState.cands) {
      const d = Math.hypot(c.lab[0] - lab[0], c.lab[1] - lab[1], c.lab[2] - lab[2]);
      if (d < c.d) c.d = d;
    }
  }

  function paletteColor(k) {
    if (k >= PALETTE.length) extendPalette(k + 1);
    return PALETTE[k];
  }

  // ------------------------------------------------------------------------------------------------ state
  const S = {
    k: Math.max(0, CLUSTERINGS.findIndex((c) => c.chosen)),
    labels: null,
    clusters: [],
    byLabel: new Map(),
    noise: [],
    showNoise: true,
    showLabels: true,
    focus: null, // a cluster label, -1 for noise, or null
    query: '',
    selection: null, // Int32Array of point indices
    selMask: null,
    matched: new Uint8Array(N),
    visible: new Uint8Array(N),
    nShown: 0,
    nDrawn: 0,
    anyFilter: false,
    hover: -1,
    current: -1,
    galleryHover: -1,
    view: { cx: 0, cy: 0, scale: 1 },
    home: { cx: 0, cy: 0, scale: 1 },
    animating: false,
    frames: 0,
    ready: false,
    panel: 'overview',
  };

  function computeClusters(k) {
    const labels = labelsOf(k);
    const groups = new Map();
    const noise = [];
    for (let i = 0; i < N; i++) {
      if (!VALID[i]) continue;
      const l = labels[i];
      if (l < 0) {
        noise.push(i);
        continue;
      }
      let g = groups.get(l);
      if (!g) groups.set(l, (g = []));
      g.push(i);
    }
    const byProb = (a, b) => (prob(b) || 0) - (prob(a) || 0) || a - b;
    const clusters = [...groups.entries()]
      .map(([label, members]) => ({ label, members }))
      .sort((a, b) => b.members.length - a.members.length || a.label - b.label);
    clusters.forEach((c, rank) => {
      c.members.sort(byProb);
      c.rank = rank;
      c.color = paletteColor(rank);
      let sx = 0;
      let sy = 0;
      let sp = 0;
      for (const i of c.members) {
        sx += X[i];
        sy += Y[i];
        sp += prob(i) || 0;
      }
      c.cx = sx / c.members.length;
      c.cy = sy / c.members.length;
      c.meanProb = PROB ? sp / c.members.length : NaN;
    });
    noise.sort((a, b) => (OUTLIER ? OUTLIER[b] - OUTLIER[a] : 0) || a - b);
    S.labels = labels;
    S.clusters = clusters;
    S.byLabel = new Map(clusters.map((c) => [c.label, c]));
    S.noise = noise;
  }

  function colorOf(i) {
    const l = S.labels[i];
    if (l < 0) return NOISE_RGB;
    return S.byLabel.get(l).color;
  }

  function clusterName(label) {
    return label < 0 ? 'Noise' : `Cluster ${label}`;
  }

  // ------------------------------------------------------------------------------------------------ search
  let haystack = null;
  function ensureHaystack() {
    if (haystack) return;
    haystack = new Array(N);
    for (let i = 0; i < N; i++) {
      haystack[i] = `${IDS[i] ?? ''}\n${URLS[i] ?? ''}\n${textOf(i) ?? ''}`.toLowerCase();
    }
  }

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

  // ------------------------------------------------------------------------------------------------ filters
  function applyFilters() {
    const q = S.query.trim().toLowerCase();
    if (q) ensureHaystack();
    const focus = S.focus;
    S.anyFilter = focus !== null || !!q || !!S.selMask;
    let shown = 0;
    let drawn = 0;
    for (let i = 0; i < N; i++) {
      const isNoise = S.labels[i] < 0;
      const vis = VALID[i] && (!isNoise || S.showNoise) ? 1 : 0;
      const m =
        vis &&
        (focus === null || S.labels[i] === focus) &&
        (!q || haystack[i].includes(q)) &&
        (!S.selMask || S.selMask[i])
          ? 1
          : 0;
      S.visible[i] = vis;
      S.matched[i] = m;
      drawn += vis;
      shown += m;
    }
    S.nShown = shown;
    S.nDrawn = drawn;
    if (S.hover >= 0 && !S.matched[S.hover]) hideTooltip();
    uploadPoints();
    updateStatus();
    requestDraw();
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
    requestDraw();
  }

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
        requestDraw();
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
    } else {
      if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3) {
        drag.moved = true;
        overlay.classList.add('dragging');
      }
      if (drag.moved) {
        const scale = S.view.scale;
        S.view = { cx: drag.cx - (x - drag.x) / scale, cy: drag.cy + (y - drag.y) / scale, scale };
      }
    }
    requestDraw();
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
      requestDraw();
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
  $('all-clusters').addEventListener('click', () => focusCluster(null));
  $('panel-back').addEventListener('click', () => {
    S.current = -1;
    if (S.selection) showSelection();
    else if (S.focus !== null) showCluster(S.focus);
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
    requestDraw();
  });

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

  document.addEventListener('keydown', (e) => {
    const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
    if (e.key === 'Escape') {
      if (typing) e.target.blur();
      if (S.selection) clearSelection();
      else if (S.focus !== null) focusCluster(null);
      else if (S.query) {
        search.value = '';
        S.query = '';
        applyFilters();
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

  // ------------------------------------------------------------------------------------------------ start
  $('title').textContent = D.title || 'Image map';
  if (D.notice) {
    const notice = $('notice');
    notice.textContent = D.notice;
    notice.title = D.notice;
    notice.hidden = false;
  }
  computeClusters(S.k);
  renderClusterList();
  resize();
  applyFilters();
  updateStats();
  showOverview();
  new ResizeObserver(() => resize()).observe(mapEl);
  requestAnimationFrame(() => {
    frame();
    S.ready = true;
  });

  // ------------------------------------------------------------------------------------------------ read-only API
  /** Read-only state for tests and the curious: counts, screen positions, colours. */
  window.explorer = Object.freeze({
    get ready() {
      return S.ready;
    },
    get idle() {
      return S.ready && !S.animating && !frameRequested;
    },
    get counts() {
      return Object.freeze({
        total: N,
        drawn: S.nDrawn,
        shown: S.nShown,
        rendered: drawCount,
        clusters: S.clusters.length,
        noise: S.noise.length,
        selected: S.selection ? S.selection.length : 0,
        withThumbnail: nWithThumb,
        embeddedThumbnails: THUMBS.length,
      });
    },
    get renderer() {
      return R.kind;
    },
    get clustering() {
      return CLUSTERINGS[S.k].column;
    },
    get clusterings() {
      return CLUSTERINGS.map((c) => c.column);
    },
    get focus() {
      return S.focus;
    },
    get hovered() {
      return S.hover;
    },
    get current() {
      return S.current;
    },
    get panel() {
      return S.panel;
    },
    get frames() {
      return S.frames;
    },
    get view() {
      return Object.freeze(Object.assign({}, S.view));
    },
    /** Page (client) coordinates of point i, or null when it is not on screen. */
    screenPosition(i) {
      if (!(i >= 0 && i < N) || !VALID[i]) return null;
      const r = overlay.getBoundingClientRect();
      const [sx, sy] = toScreen(i);
      if (sx < 0 || sy < 0 || sx > W || sy > H) return null;
      return { x: r.left + sx, y: r.top + sy };
    },
    indexOf(id) {
      return IDS.indexOf(id);
    },
    isShown(i) {
      return !!S.matched[i];
    },
    colorOf(i) {
      return colorOf(i).slice();
    },
    clusterOf(i) {
      return S.labels[i];
    },
    clusterLabels() {
      return S.clusters.map((c) => c.label);
    },
    thumbnailSrc(i) {
      return thumbSrc(i);
    },
    palette(n) {
      return Array.from({ length: n }, (_, k) => paletteColor(k));
    },
  });
})();
