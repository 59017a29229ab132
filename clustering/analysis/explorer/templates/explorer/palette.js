/* Cluster colours: the run's palette (clustering/analysis/palette.py), the same as map.png's and the montages' frames,
 * so cluster k has one colour everywhere. Colour k goes to the k-th largest cluster of the view, as labels are numbered. */
// ------------------------------------------------------------------------------------------------ palette
const PALETTE = (META.palette || []).map((hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));

function paletteColor(k) {
  if (!PALETTE.length) return NOISE_RGB;
  return PALETTE[k % PALETTE.length]; // the payload holds a colour for every cluster of every view
}
