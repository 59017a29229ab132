/* clipcluster explorer: a WebGL scatter of the images with hover cards, a detail panel, cluster galleries, levels from
 * themes to subclusters, a timeline, account and text search, lasso selection and CSV export. Vanilla JS, no
 * dependencies, works offline from file://.
 *
 * The page script is these feature files, concatenated in order (explorer_page.SCRIPT_FILES) inside one strict-mode
 * async function scope: they share the constants and state declared here, in data.js and in state.js. This file:
 * constants and DOM helpers.
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
const LABEL_MAX_CHARS = 26;
// A cluster is labelled only where its points cover at least this much of the screen at the current zoom (its dots,
// or the disc of its spread if smaller): labels sit on points a person can see, and zooming in reveals finer ones.
const LABEL_VISIBLE_PX = 400;
// Level of detail: the map is cut into TILE_SIDE x TILE_SIDE tiles, and a frame draws at most `budget` points on screen
// (a random sample of every tile, the same sample every frame). Software GL (SwiftShader, 2 cores) draws 200k points
// in ~67-150 ms, a GPU in well under 1 ms: while the view moves, the budget shrinks after slow frames; at rest a frame
// draws as many points as fit in LOD_REST_MS, measured on the previous rest frame (every point, on a GPU).
const TILE_SIDE = 16;
const LOD_FULL = { webgl: 300000, canvas2d: 60000 }; // before the first measured frame
const LOD_REST_FLOOR = { webgl: 100000, canvas2d: 30000 };
const LOD_REST_MS = 250; // one frame after the view stops; hover and rings redraw only the overlay
const LOD_MIN = 20000;
const LOD_SLOW_MS = 45; // a frame interval above this during interaction halves the lag by drawing fewer points
const LOD_FAST_MS = 22;
const LOD_SETTLE_MS = 160; // this long after the view last moved, it rests: draw the full frame
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

/** `text` cut to `max` characters with an ellipsis. */
const cut = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** "2024-09-03" for whole days since 1970-01-01 (UTC). */
const isoDay = (day) => new Date(day * 86400000).toISOString().slice(0, 10);

const rgbCss = (c, a) => (a === undefined ? `rgb(${c[0]},${c[1]},${c[2]})` : `rgba(${c[0]},${c[1]},${c[2]},${a})`);

