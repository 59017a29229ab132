/* Cluster colours: distinct, readable on the dark map, and far from the noise grey. */
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
