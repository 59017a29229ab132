/* Posted together and lineage: the "Posted together" menu keeps the posts of one group of accounts that posted the
 * same images within seconds of each other, repeatedly (coordinated_group); the point panel of a post in a repost
 * group draws the group's lineage: its posts in time order, by account, with the delay from the first post. The data
 * shows timing only, so the wording says what happened ("posted together"), never why. */
// ------------------------------------------------------------------------------------------------ groups
const LINEAGE_ROWS = 200; // posts listed in a lineage; the rest are counted

/** Per group of accounts: its posts (time order) and its distinct accounts; null when the run found none. */
const TOGETHER_GROUPS = (function groups() {
  if (!TOGETHER) return null;
  const byGroup = new Map();
  for (let i = 0; i < N; i++) {
    const g = TOGETHER[i];
    if (g < 0) continue;
    if (!byGroup.has(g)) byGroup.set(g, []);
    byGroup.get(g).push(i);
  }
  if (!byGroup.size) return null;
  const out = new Map();
  for (const [g, posts] of [...byGroup.entries()].sort((a, b) => a[0] - b[0])) {
    posts.sort((a, b) => (timeOf(a) ?? Infinity) - (timeOf(b) ?? Infinity) || a - b);
    const accounts = [...new Set(posts.map(accountOf).filter((a) => a !== null))].sort();
    out.set(g, { posts, accounts });
  }
  return out;
})();

const togetherBox = $('together-box');
const togetherSelect = $('together');
const windowText = () => (META.coordination && META.coordination.window !== null ? META.coordination.window : null);

function togetherLabel(g) {
  const { posts, accounts } = TOGETHER_GROUPS.get(g);
  const names = accounts.slice(0, 3).join(', ') + (accounts.length > 3 ? ', …' : '');
  return `Group ${g} · ${accounts.length} accounts (${cut(names, 50)}) · ${fmt.format(posts.length)} posts`;
}

/** Keep the posts of group g (-1: every post). */
function setTogether(g) {
  S.together = g;
  togetherSelect.value = String(g);
  applyFilters();
  if (g >= 0) {
    showTogether(g);
    const points = matchedPoints();
    if (points.length) zoomToPoints(points);
  } else if (S.panel === 'together') showOverview();
}

/** The panel of group g: its accounts, what they did (in careful words), their posts in time order. */
function showTogether(g) {
  S.current = -1;
  const { posts, accounts } = TOGETHER_GROUPS.get(g);
  setPanel('together', `Posted together · group ${g}`);
  const seconds = windowText();
  const images = new Set(posts.map((i) => REPOST[i])).size;
  panelBody.appendChild(
    kv([
      ['Accounts', `${fmt.format(accounts.length)}: ${accounts.join(', ')}`],
      ['Posted together', `${seconds !== null ? `within ${seconds} seconds, ` : ''}${fmt.format(images)} times`],
      ['Posts', `${fmt.format(posts.length)} (the images they shared)`],
    ]),
  );
  panelBody.appendChild(
    el('div', 'muted', 'The data shows when these accounts posted, not why. Scores against chance are in the ' +
      'report and coordination.csv.'), // prettier-ignore
  );
  panelBody.appendChild(breakdownChips(posts));
  const clr = el('button', '', 'Show every post', { type: 'button' });
  clr.addEventListener('click', () => setTogether(-1));
  panelBody.appendChild(clr);
  panelBody.appendChild(gallery(posts));
  requestOverlay();
}

if (TOGETHER_GROUPS) {
  togetherSelect.appendChild(el('option', '', 'All posts', { value: '-1' }));
  for (const g of TOGETHER_GROUPS.keys()) togetherSelect.appendChild(el('option', '', togetherLabel(g), { value: g }));
  togetherSelect.addEventListener('change', () => setTogether(Number(togetherSelect.value)));
  togetherBox.hidden = false;
}

// ------------------------------------------------------------------------------------------------ lineage
/** "+12 s", "+3 min", "+2.5 h", "+4.0 d". */
function delayText(s) {
  if (s < 60) return `+${Math.round(s)} s`;
  if (s < 3600) return `+${Math.round(s / 60)} min`;
  if (s < 86400) return `+${(s / 3600).toFixed(1)} h`;
  return `+${(s / 86400).toFixed(1)} d`;
}

/** The posts of repost group `group` in lineage order (the analysis's order; else by time, undated last). */
function lineagePosts(group) {
  const posts = [];
  for (let j = 0; j < N; j++) if (REPOST[j] === group) posts.push(j);
  if (REPOST_ORDER) return posts.sort((a, b) => REPOST_ORDER[a] - REPOST_ORDER[b] || a - b);
  return posts.sort((a, b) => (timeOf(a) ?? Infinity) - (timeOf(b) ?? Infinity) || a - b);
}

/** Seconds after the group's first post, or null when unknown. */
function delayOf(j, first) {
  if (REPOST_DELAY && REPOST_DELAY[j] >= 0) return REPOST_DELAY[j];
  const t = timeOf(j);
  const t0 = timeOf(first);
  return t !== null && t0 !== null ? t - t0 : null;
}

/** The lineage view of point i's repost group: one row per post, a dot on a shared time axis, the account, the delay
 * and the variant; a click shows that post. Null when i is in no repost group. */
function lineageView(i) {
  if (!REPOST || REPOST[i] < 0) return null;
  const group = REPOST[i];
  const posts = lineagePosts(group);
  const delays = posts.map((j) => delayOf(j, posts[0]));
  const last = Math.max(1, ...delays.filter((d) => d !== null));
  const variants = COLUMNS.find((c) => c.name === 'repost_variant') || null;
  const box = el('div', 'lineage');
  box.id = 'lineage';
  const accounts = new Set(posts.map(accountOf).filter((a) => a !== null)).size;
  const span = delays[delays.length - 1];
  box.appendChild(
    el('div', 'muted', `${fmt.format(posts.length)} posts by ${fmt.format(accounts)} accounts` +
      (span !== null && span !== undefined && posts.length > 1 ? ` over ${delayText(span).slice(1)}` : '') +
      '; first post first.'), // prettier-ignore
  );
  const list = el('ol', 'lineage-list');
  posts.slice(0, LINEAGE_ROWS).forEach((j, k) => {
    const item = el('li', j === i ? 'lineage-row current' : 'lineage-row');
    item.dataset.point = String(j);
    const button = el('button', '', null, { type: 'button', title: idOf(j) });
    const axis = el('span', 'lineage-axis');
    const dot = el('span', 'lineage-dot');
    if (delays[k] !== null) dot.style.left = `${(100 * delays[k]) / last}%`;
    else dot.classList.add('undated');
    axis.appendChild(dot);
    button.appendChild(axis);
    button.appendChild(el('span', 'lineage-account', accountOf(j) ?? '(no account)'));
    button.appendChild(el('span', 'lineage-delay', k === 0 ? 'first' : delays[k] === null ? 'undated' : delayText(delays[k])));
    const variant = variants ? variants.value(j) : null;
    if (variant && k > 0) button.appendChild(el('span', 'lineage-variant muted', variant.replace('_', ' ')));
    button.addEventListener('click', () => showPoint(j, { pan: true }));
    item.appendChild(button);
    list.appendChild(item);
  });
  box.appendChild(list);
  if (posts.length > LINEAGE_ROWS) {
    box.appendChild(el('div', 'muted', `and ${fmt.format(posts.length - LINEAGE_ROWS)} more`));
  }
  return box;
}
