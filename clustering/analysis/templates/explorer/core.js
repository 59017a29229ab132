/* clipcluster explorer: a WebGL scatter of the images with hover cards, a detail panel, cluster galleries, search,
 * lasso selection and CSV export. Vanilla JS, no dependencies, works from file://.
 *
 * The page script is these feature files, concatenated in order (explorer_page.SCRIPT_FILES) inside one strict-mode
 * function scope: they share the constants and state declared here and in state.js. This file: constants, DOM helpers
 * and the decoded page data.
 *
 * Safety rule for every file: data (ids, URLs, texts, column names, titles) only ever reaches the DOM through
 * textContent and attribute setters; there is no HTML parsing of data anywhere. Links are made only for http(s) URLs.
 */
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
