/* Review mode's controls (review.js holds the actions): the Review button and bar, the merge picks in the cluster list,
 * rename in a cluster's panel, split and noise in a selection's panel, and the review panel listing the actions. */
// ------------------------------------------------------------------------------------------------ review bar
const reviewToggle = $('review-toggle');
const reviewBar = $('review-bar');
const reviewHint = $('review-hint');
const reviewUndo = $('review-undo');
const reviewCount = $('review-actions');
const reviewExport = $('review-export');

function setReviewing(on) {
  RV.active = on;
  if (!on) RV.picked = [];
  document.body.classList.toggle('reviewing', on);
  if (on && S.k !== REVIEW_VIEW) setView(REVIEW_VIEW);
  else renderClusterList();
  updateReviewBar();
  if (on) showReview();
  else if (S.panel === 'review' || S.panel === 'merge') showOverview();
  else if (S.panel === 'cluster' && S.focus !== null) showCluster(S.focus);
  else if (S.panel === 'selection' && S.selection) showSelection();
}

const actionsWord = (n) => `${fmt.format(n)} action${n === 1 ? '' : 's'}`;

function updateReviewBar() {
  const n = RV.actions.length;
  reviewToggle.setAttribute('aria-pressed', String(RV.active));
  reviewToggle.textContent = n ? `Review · ${fmt.format(n)}` : 'Review';
  reviewBar.hidden = !RV.active;
  reviewUndo.disabled = !n;
  reviewExport.disabled = !n;
  reviewCount.textContent = actionsWord(n);
  reviewHint.textContent =
    S.k === REVIEW_VIEW
      ? 'Click a cluster to rename it · tick clusters to merge them · shift + drag a lasso to split its images ' +
        'off or send them to noise'
      : `Review works on the ${VIEWS[REVIEW_VIEW].title.toLowerCase()} level: switch to it to make changes`;
}

reviewToggle.addEventListener('click', () => setReviewing(!RV.active));
$('review-done').addEventListener('click', () => setReviewing(false));
reviewUndo.addEventListener('click', undoReview);
reviewExport.addEventListener('click', exportReview);
reviewCount.addEventListener('click', showReview);

// ------------------------------------------------------------------------------------------------ merge picks
/** The pick box of cluster `label` in the list (review mode on the chosen level), or null. */
function reviewPick(label) {
  if (!reviewing() || label < 0) return null;
  const order = RV.picked.indexOf(label);
  const box = el('label', 'pick', null, { title: order === 0 ? 'Picked first: keeps its label' : 'Pick for a merge' });
  const input = el('input', '', null, { type: 'checkbox', 'aria-label': `Pick ${clusterTag(label)} for a merge` });
  input.checked = order >= 0;
  input.addEventListener('change', () => togglePick(label));
  box.appendChild(input);
  box.appendChild(el('span', 'pick-order', order >= 0 ? String(order + 1) : ''));
  return box;
}

function togglePick(label) {
  const at = RV.picked.indexOf(label);
  if (at >= 0) RV.picked.splice(at, 1);
  else RV.picked.push(label);
  renderClusterList();
  if (RV.picked.length) showMerge();
  else if (S.panel === 'merge') showReview();
}

/** A text input for a name, at most REVIEW_NAME_CHARS characters; Enter runs `onEnter`. */
function nameInput(id, value, placeholder, onEnter) {
  const input = el('input', 'name-input', null, { type: 'text', maxlength: REVIEW_NAME_CHARS, placeholder,
    spellcheck: 'false', autocomplete: 'off', 'aria-label': placeholder }); // prettier-ignore
  input.id = id;
  input.value = value;
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') onEnter();
  });
  return input;
}

function showMerge() {
  const picked = RV.picked;
  setPanel('merge', `Merge · ${fmt.format(picked.length)} picked`);
  panelBody.appendChild(el('div', 'muted', 'Every image of the picked clusters joins the first one picked, which ' +
    'keeps its label, and its name unless you give one. Tick more clusters in the list, or untick one to drop it.'));
  const list = el('ol', 'picked-list');
  for (const [k, label] of picked.entries()) {
    const c = S.byLabel.get(label);
    const li = el('li');
    const sw = el('span', 'swatch');
    sw.style.background = rgbCss(c ? c.color : NOISE_RGB);
    li.appendChild(sw);
    const size = c ? fmt.format(c.members.length) : '0';
    li.appendChild(el('span', '', `${clusterTag(label)} · ${cut(clusterName(label), 40)} · ${size}`));
    if (k === 0) li.appendChild(el('span', 'badge', 'keeps its label'));
    list.appendChild(li);
  }
  panelBody.appendChild(list);
  const go = () => reviewMerge(RV.picked, name.value);
  const name = nameInput('merge-name', '', 'Name (optional)', go);
  panelBody.appendChild(name);
  const row = el('div', 'row');
  const merge = el('button', 'primary', `Merge ${fmt.format(picked.length)} clusters`, { type: 'button' });
  merge.id = 'merge-go';
  merge.disabled = picked.length < 2;
  merge.addEventListener('click', go);
  const clr = el('button', '', 'Clear picks', { type: 'button' });
  clr.addEventListener('click', () => {
    RV.picked = [];
    renderClusterList();
    showReview();
  });
  row.appendChild(merge);
  row.appendChild(clr);
  panelBody.appendChild(row);
  requestOverlay();
}

// ------------------------------------------------------------------------------------------------ panel sections
/** Rename and pick, in the panel of cluster `label` of the chosen level (review mode), or null. */
function reviewClusterSection(label, k) {
  if (!reviewing() || k !== REVIEW_VIEW || label < 0) return null;
  const box = el('div', 'review-box');
  box.appendChild(sectionTitle('Review'));
  const info = VIEWS[REVIEW_VIEW].info.get(label);
  const go = () => reviewRename(label, input.value);
  const input = nameInput('rename-input', info && info.name ? info.name : '', 'New name', go);
  const row = el('div', 'row');
  const rename = el('button', 'primary', 'Rename', { type: 'button' });
  rename.id = 'rename-go';
  rename.addEventListener('click', go);
  const picked = RV.picked.includes(label);
  const pick = el('button', '', picked ? 'Unpick' : 'Pick for a merge', { type: 'button' });
  pick.id = 'pick-go';
  pick.addEventListener('click', () => togglePick(label));
  row.appendChild(input);
  row.appendChild(rename);
  box.appendChild(row);
  box.appendChild(pick);
  return box;
}

/** Split off and send to noise, in the panel of a lasso selection (review mode), or null. */
function reviewSelectionSection() {
  if (!reviewing()) return null;
  const box = el('div', 'review-box');
  box.appendChild(sectionTitle('Review'));
  const split = () => reviewSelection('split', name.value);
  const name = nameInput('split-name', '', 'Name of the new cluster (optional)', split);
  box.appendChild(name);
  const row = el('div', 'row');
  const splitButton = el('button', 'primary', 'Split off as a new cluster', { type: 'button' });
  splitButton.id = 'split-go';
  splitButton.addEventListener('click', split);
  const noise = el('button', '', 'Send to noise', { type: 'button' });
  noise.id = 'noise-go';
  noise.addEventListener('click', () => reviewSelection('noise'));
  row.appendChild(splitButton);
  row.appendChild(noise);
  box.appendChild(row);
  return box;
}

// ------------------------------------------------------------------------------------------------ review panel
const images = (n) => `${fmt.format(n)} image${n === 1 ? '' : 's'}`;
const quoted = (name) => `\u201c${cut(name, 60)}\u201d`;

function describeAction(a) {
  const d = a.doc;
  const tag = (l) => clusterTag(l, REVIEW_VIEW);
  if (d.kind === 'rename') return `Renamed ${tag(d.cluster)} ${quoted(d.name)} (${images(a.size)})`;
  if (d.kind === 'merge') {
    const rest = d.clusters.slice(1).map(tag).join(', ');
    return `Merged ${rest} into ${tag(d.clusters[0])}${d.name ? ` as ${quoted(d.name)}` : ''} (${images(a.size)})`;
  }
  if (d.kind === 'split') return `Split ${images(a.size)} off as ${tag(a.label)}${d.name ? ` ${quoted(d.name)}` : ''}`;
  return `Sent ${images(a.size)} to noise`;
}

let discardArmed = 0;
function showReview() {
  const n = RV.actions.length;
  setPanel('review', `Review · ${actionsWord(n)}`);
  reviewStore();
  const info = META.info || {};
  panelBody.appendChild(
    kv([
      ['Level', `${VIEWS[REVIEW_VIEW].title} (column ${VIEWS[REVIEW_VIEW].column})`],
      ['Analysis', info.input],
      ['Kept', RV.note],
    ]),
  );
  const row = el('div', 'row');
  const undo = el('button', '', 'Undo last', { type: 'button' });
  undo.disabled = !n;
  undo.addEventListener('click', undoReview);
  const exp = el('button', 'primary', 'Export review.json', { type: 'button' });
  exp.disabled = !n;
  exp.addEventListener('click', exportReview);
  const discard = el('button', '', 'Discard all', { type: 'button' });
  discard.disabled = !n;
  discard.addEventListener('click', () => {
    if (Date.now() - discardArmed < 4000) return discardReview();
    discardArmed = Date.now();
    discard.textContent = `Click again to discard ${actionsWord(n)}`;
  });
  row.appendChild(undo);
  row.appendChild(exp);
  row.appendChild(discard);
  panelBody.appendChild(row);
  if (n) {
    const list = el('ol', 'review-list');
    list.id = 'review-list';
    for (const a of RV.actions) list.appendChild(el('li', '', describeAction(a)));
    panelBody.appendChild(list);
  } else {
    panelBody.appendChild(el('div', 'muted', 'No changes yet.'));
  }
  panelBody.appendChild(sectionTitle('How to review'));
  const help = el('ul', 'help');
  for (const line of [
    'Rename: click a cluster in the list, type its name in the panel, Enter.',
    'Merge: tick two or more clusters in the list; the first ticked keeps its label.',
    'Split or noise: shift + drag a lasso around images, then choose in the panel.',
    'Each change shows at once; Undo takes back the last one. Export review.json and run ' +
      'jobs/analyze.py --review review.json to apply the review to the analysis.',
  ]) {
    help.appendChild(el('li', '', line));
  }
  panelBody.appendChild(help);
  requestOverlay();
}
