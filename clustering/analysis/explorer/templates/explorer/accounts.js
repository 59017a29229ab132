/* The account filter: type part of an account name, pick one of the best matches (most posts first), and the map,
 * timeline and panel keep that account's posts. */
// ------------------------------------------------------------------------------------------------ accounts
const ACCOUNT_MATCHES = 10;

/** Distinct accounts, their post counts and the codes ordered by posts (most first); null without an account column. */
const ACCOUNTS = (function accounts() {
  if (!ACCOUNT_COL) return null;
  const names = ACCOUNT_COL.dict.values();
  const counts = new Int32Array(names.length);
  const codes = ACCOUNT_COL.codes;
  for (let i = 0; i < N; i++) if (codes[i] >= 0) counts[codes[i]]++;
  const byPosts = Int32Array.from(names.keys()).sort((a, b) => counts[b] - counts[a] || a - b);
  return { names, counts, byPosts, lower: null };
})();

const accountInput = $('account');
const accountList = $('account-list');
let accountActive = -1; // highlighted entry of the open list

function accountMatches(query) {
  const q = query.trim().toLowerCase();
  if (!ACCOUNTS.lower) ACCOUNTS.lower = ACCOUNTS.names.map((s) => s.toLowerCase());
  const out = [];
  for (const code of ACCOUNTS.byPosts) {
    if (!q || ACCOUNTS.lower[code].includes(q)) out.push(code);
    if (out.length >= ACCOUNT_MATCHES) break;
  }
  return out;
}

function openAccountList() {
  const matches = accountMatches(accountInput.value);
  clear(accountList);
  accountActive = matches.length ? 0 : -1;
  matches.forEach((code, k) => {
    const li = el('li', '', null, { role: 'option', 'aria-selected': k === accountActive });
    li.dataset.code = String(code);
    li.appendChild(el('span', 'name', ACCOUNTS.names[code]));
    li.appendChild(el('span', 'count', fmt.format(ACCOUNTS.counts[code])));
    li.addEventListener('pointerdown', (e) => {
      e.preventDefault(); // keep the input focused until the choice is made
      setAccount(code);
    });
    accountList.appendChild(li);
  });
  if (!matches.length) accountList.appendChild(el('li', 'muted', 'No such account'));
  accountList.hidden = false;
  accountInput.setAttribute('aria-expanded', 'true');
}

function closeAccountList() {
  accountList.hidden = true;
  accountInput.setAttribute('aria-expanded', 'false');
}

function moveAccountActive(step) {
  const items = accountList.querySelectorAll('li[data-code]');
  if (!items.length) return;
  accountActive = (accountActive + step + items.length) % items.length;
  items.forEach((li, k) => li.setAttribute('aria-selected', String(k === accountActive)));
}

/** Keep the posts of account `code` (-1: every account). */
function setAccount(code) {
  S.account = code;
  closeAccountList();
  accountInput.value = code >= 0 ? ACCOUNTS.names[code] : '';
  applyFilters();
  if (code >= 0) {
    showAccount(code);
    const points = matchedPoints();
    if (points.length) zoomToPoints(points);
  } else if (S.panel === 'account') showOverview();
}

if (ACCOUNTS) {
  accountInput.addEventListener('focus', openAccountList);
  accountInput.addEventListener('input', () => {
    if (!accountInput.value && S.account >= 0) setAccount(-1);
    openAccountList();
  });
  accountInput.addEventListener('blur', closeAccountList);
  accountInput.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      if (accountList.hidden) openAccountList();
      else moveAccountActive(e.key === 'ArrowDown' ? 1 : -1);
    } else if (e.key === 'Enter') {
      const item = accountList.querySelectorAll('li[data-code]')[accountActive];
      if (item) setAccount(Number(item.dataset.code));
    } else if (e.key === 'Escape' && !accountList.hidden) {
      e.stopPropagation();
      closeAccountList();
    }
  });
} else {
  accountInput.disabled = true;
  accountInput.placeholder = 'No account column';
  accountInput.title = 'The data has no account column (set one with --account-column).';
}
