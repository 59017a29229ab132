/* The page data: the JSON header, the packed per-point arrays (gzip, inflated with the browser's DecompressionStream),
 * text columns decoded on first use, and the thumbnails: embedded in the page or in sidecar chunk scripts that are
 * added when one of their images is first needed (a script element loads from file://, a fetch would be refused). */
// ------------------------------------------------------------------------------------------------ arrays
const META = JSON.parse($('explorer-data').textContent);
const N = META.n;
const TIMINGS = { start: performance.now() };

function base64Bytes(text) {
  if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(text);
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

async function inflate(bytes) {
  if (typeof DecompressionStream !== 'function') {
    throw new Error('this browser has no DecompressionStream (Chrome 80, Firefox 113, Safari 16.4 or later needed)');
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).arrayBuffer();
}

const BUFFER = await inflate(base64Bytes($('explorer-bin').textContent));
TIMINGS.decoded = performance.now();
const TYPED = { i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array, i4: Int32Array, u4: Uint32Array,
  f4: Float32Array, f8: Float64Array };
const utf8 = new TextDecoder();

/** The typed array packed under `key` (a view, no copy), or null. */
function arrayOf(key) {
  if (!key) return null;
  const d = META.arrays[key];
  return new TYPED[d.dtype](BUFFER, d.offset, d.length);
}

/** A NUL-joined text blob: `value(i)`, all `values()` (split once), and the raw text for search. */
function textColumn(key, count, nullsKey) {
  const nulls = nullsKey ? arrayOf(nullsKey) : null;
  let raw = null;
  let values = null;
  const rawText = () => {
    if (raw === null) {
      const d = META.arrays[key];
      raw = utf8.decode(new Uint8Array(BUFFER, d.offset, d.length));
    }
    return raw;
  };
  const all = () => values || (values = count ? rawText().split('\0') : []);
  return {
    count,
    nulls,
    rawText,
    values: all,
    value: (i) => (nulls && nulls[i] ? null : all()[i]),
  };
}

/** A passthrough column: numbers (NaN = none), text, or dictionary codes into a short list of distinct values. */
function makeColumn(spec) {
  const col = { name: spec.name, kind: spec.kind };
  if (spec.kind === 'number') {
    const v = arrayOf(spec.values);
    col.value = (i) => (Number.isFinite(v[i]) ? v[i] : null);
  } else if (spec.codes) {
    col.codes = arrayOf(spec.codes);
    col.dict = textColumn(spec.dict, spec.size);
    col.value = (i) => (col.codes[i] < 0 ? null : col.dict.value(col.codes[i]));
  } else {
    col.text = textColumn(spec.text, N, spec.nulls);
    col.value = (i) => col.text.value(i);
  }
  return col;
}

const X = arrayOf(META.x) || new Float32Array(0);
const Y = arrayOf(META.y) || new Float32Array(0);
const PROB = arrayOf(META.probability);
const OUTLIER = arrayOf(META.outlier_score);
const IDS = textColumn(META.id.text, N, META.id.nulls);
const URLS = META.url ? textColumn(META.url.text, N, META.url.nulls) : null;
const DUPLICATE_OF = META.duplicate_of ? textColumn(META.duplicate_of.text, N, META.duplicate_of.nulls) : null;
const REPOST = arrayOf(META.repost_group);
const REPOST_ORDER = arrayOf(META.repost_order); // place in its repost group's lineage, -1: none
const REPOST_DELAY = arrayOf(META.repost_delay); // seconds after the group's first post, -1: unknown
const TOGETHER = arrayOf(META.coordinated_group); // the group of accounts that posted it together, -1: none
const TIME = META.time.key ? arrayOf(META.time.key) : null; // seconds after META.time.origin; -1: no date
const COLUMNS = META.columns.map(makeColumn);
const TEXT_COL = META.text_column === null ? null : COLUMNS[META.text_column];
const ACCOUNT_COL = META.account_column === null ? null : COLUMNS[META.account_column];
const VALID = new Uint8Array(N);
for (let i = 0; i < N; i++) VALID[i] = Number.isFinite(X[i]) && Number.isFinite(Y[i]) ? 1 : 0;

const idOf = (i) => IDS.value(i) ?? '';
const urlOf = (i) => (URLS ? URLS.value(i) : null);
const prob = (i) => (PROB ? PROB[i] : NaN);
const textOf = (i) => (TEXT_COL ? TEXT_COL.value(i) : null);
const accountOf = (i) => (ACCOUNT_COL ? ACCOUNT_COL.value(i) : null);
/** Epoch seconds of point i's post, or null. */
const timeOf = (i) => (TIME && TIME[i] >= 0 ? META.time.origin + TIME[i] : null);

// ------------------------------------------------------------------------------------------------ thumbnails
const TH = META.thumbs;
const THUMB_OF = arrayOf(TH.point); // image per point, -1: none
const THUMB_LEN = arrayOf(TH.lengths);
const THUMB_CHUNK = new Int32Array(TH.n_images); // position in TH.chunks
const THUMB_START = new Float64Array(TH.n_images); // byte offset inside the chunk
TH.chunks.forEach((c, k) => {
  let offset = 0;
  for (let j = c.first; j < c.first + c.count; j++) {
    THUMB_CHUNK[j] = k;
    THUMB_START[j] = offset;
    offset += THUMB_LEN[j];
  }
  c.state = c.src === null ? 'embedded' : 'idle';
  c.data = null;
  c.waiting = [];
});
let nWithThumb = 0;
for (let i = 0; i < N; i++) if (THUMB_OF[i] >= 0) nWithThumb++;
const nEmbedded = TH.chunks.filter((c) => c.src === null).reduce((s, c) => s + c.count, 0);

function chunkData(c) {
  if (c.state === 'embedded' && !c.data) c.data = base64Bytes($('explorer-thumbs').textContent);
  return c.data;
}

function finishChunk(c, state) {
  c.state = state;
  const waiting = c.waiting;
  c.waiting = [];
  for (const done of waiting) done();
}

// A chunk script calls this with its build id, its number and its images as base64; a chunk of another build (a
// stale folder next to a rebuilt page) is refused rather than shown under the wrong points.
window.clipclusterThumbs = function (build, number, b64) {
  const c = TH.chunks.find((x) => x.number === number && x.src !== null);
  if (!c || build !== TH.build || c.state === 'loaded') {
    console.warn(`explorer: ignored thumbnail chunk ${number} (build ${build}, this page is ${TH.build})`);
    return;
  }
  c.data = base64Bytes(b64);
  finishChunk(c, 'loaded');
};

function loadChunk(c) {
  if (c.state !== 'idle') return;
  c.state = 'loading';
  const script = document.createElement('script');
  script.src = TH.base + c.src;
  script.addEventListener('error', () => finishChunk(c, 'failed'));
  script.addEventListener('load', () => {
    if (c.state === 'loading') finishChunk(c, 'failed'); // the file ran but was not a chunk of this page
  });
  document.head.appendChild(script);
}

function imageMime(b) {
  if (b[0] === 0x89 && b[1] === 0x50) return 'image/png';
  if (b[0] === 0x47 && b[1] === 0x49) return 'image/gif';
  if (b[0] === 0x52 && b[8] === 0x57) return 'image/webp';
  return 'image/jpeg';
}

const blobUrls = new Map();
/** The blob: URL of an image whose chunk is in memory, or null. */
function imageUrl(image) {
  let url = blobUrls.get(image);
  if (url) return url;
  const c = TH.chunks[THUMB_CHUNK[image]];
  const data = c.state === 'embedded' || c.state === 'loaded' ? chunkData(c) : null;
  if (!data) return null;
  const start = THUMB_START[image];
  const bytes = data.subarray(start, start + THUMB_LEN[image]);
  url = URL.createObjectURL(new Blob([bytes], { type: imageMime(bytes) }));
  blobUrls.set(image, url);
  return url;
}

const hasThumb = (i) => THUMB_OF[i] >= 0;
const thumbNow = (i) => (THUMB_OF[i] >= 0 ? imageUrl(THUMB_OF[i]) : null);

/** Call `done(url)` with point i's thumbnail: at once when its chunk is in memory, else once it has loaded; null when
 * the point has none or its chunk cannot be read (the page was moved without its folder). */
function withThumb(i, done) {
  const image = THUMB_OF[i];
  if (image < 0) return done(null);
  const c = TH.chunks[THUMB_CHUNK[image]];
  if (c.state === 'embedded' || c.state === 'loaded') return done(imageUrl(image));
  if (c.state === 'failed') return done(null);
  c.waiting.push(() => done(c.state === 'loaded' ? imageUrl(image) : null));
  loadChunk(c);
}

/** Show point i's thumbnail in `img` when it is available; `onMissing` runs when there is none. */
function setThumb(img, i, onMissing) {
  img.dataset.point = String(i);
  withThumb(i, (url) => {
    if (img.dataset.point !== String(i)) return; // the element shows another point by now
    if (url) img.setAttribute('src', url);
    else {
      img.removeAttribute('src');
      if (onMissing) onMissing();
    }
  });
}

// Gallery and list images load when they scroll into view, so a long list does not pull in every chunk.
const lazyImages = new IntersectionObserver(
  (entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      lazyImages.unobserve(e.target);
      setThumb(e.target, Number(e.target.dataset.point));
    }
  },
  { rootMargin: '300px' },
);
function lazyThumb(img, i) {
  img.dataset.point = String(i);
  lazyImages.observe(img);
}
