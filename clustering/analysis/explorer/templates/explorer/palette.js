/* Cluster colours: the run's palette (clustering/analysis/palette.py), the same as map.png's and the montages' frames,
 * so cluster k has one colour everywhere. Colour k goes to the k-th largest cluster of the view, as labels are numbered. */
// ------------------------------------------------------------------------------------------------ palette
const PALETTE = (META.palette || []).map((hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));

function paletteColor(k) {
  if (k < PALETTE.length) return PALETTE[k]; // the payload holds a colour for every cluster of every view
  // Past them (the clusters a person's review splits off, review.js): golden-angle hues, light on the dark map.
  const h = ((k * 137.508) % 360) / 60;
  const c = 0.55;
  const x = c * (1 - Math.abs((h % 2) - 1));
  const [r, g, b] = [[c, x, 0], [x, c, 0], [0, c, x], [0, x, c], [x, 0, c], [c, 0, x]][Math.floor(h) % 6];
  return [r, g, b].map((v) => Math.round(255 * (v + 0.35)));
}
