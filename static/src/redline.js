/**
 * Change-by-change reading of the redline page (templates/exports/compare.html).
 *
 * The page is complete without this script: an index of changed clauses and "previous / next
 * changed clause" links are plain HTML. With it, the toolbar marked data-redline-nav appears:
 * "Previous change" and "Next change" buttons (and the keys p/k and n/j) move the focus from one
 * change to the next, each change outlined and announced as "Change 3 of 120" through the
 * toolbar's polite live region. The toolbar's words come from the page, already translated.
 */

const MARKS = 'ins.redline-ins, del.redline-del'

/**
 * The changes of a redline, in reading order: a deletion followed directly by an insertion (a
 * replaced word) is one change, not two.
 *
 * @param {ParentNode} root
 * @returns {Element[]}
 */
export function changeStops (root) {
  const stops = []
  let previous = null
  for (const mark of root.querySelectorAll(MARKS)) {
    if (!(previous && mark.previousSibling === previous)) stops.push(mark)
    previous = mark
  }
  return stops
}

/**
 * Wire one toolbar to the redline it navigates.
 *
 * @param {Element} toolbar the data-redline-nav element
 * @param {ParentNode} redline the element holding the redline
 * @param {Document} doc
 * @returns {{go: (step: number) => number, stops: Element[]}}
 */
export function wireNavigation (toolbar, redline, doc = document) {
  const stops = changeStops(redline)
  const status = toolbar.querySelector('[data-change-status]')
  const template = status?.getAttribute('data-template') || '{n} / {total}'
  let current = -1

  function show (index) {
    const previous = stops[current]
    if (previous) previous.classList.remove('redline-current')
    current = index
    const stop = stops[current]
    stop.classList.add('redline-current')
    stop.setAttribute('tabindex', '-1')
    stop.focus({ preventScroll: true })
    stop.scrollIntoView({ block: 'center' })
    if (status) status.textContent = template.replace('{n}', String(current + 1)).replace('{total}', String(stops.length))
  }

  /** Move by ``step`` changes (clamped); returns the new position, -1 when there is none. */
  function go (step) {
    if (!stops.length) return -1
    const target = current < 0 ? (step > 0 ? 0 : stops.length - 1) : Math.min(stops.length - 1, Math.max(0, current + step))
    show(target)
    return current
  }

  toolbar.querySelector('[data-change-next]')?.addEventListener('click', () => go(1))
  toolbar.querySelector('[data-change-prev]')?.addEventListener('click', () => go(-1))
  doc.addEventListener('keydown', (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return
    const target = /** @type {Element|null} */ (event.target)
    if (target && target.closest('input, select, textarea, [contenteditable="true"]')) return
    if (event.key === 'n' || event.key === 'j') { go(1); event.preventDefault() }
    if (event.key === 'p' || event.key === 'k') { go(-1); event.preventDefault() }
  })
  if (status && !stops.length) status.textContent = status.getAttribute('data-none') || ''
  toolbar.hidden = false
  return { go, stops }
}

if (typeof document !== 'undefined') {
  const toolbar = document.querySelector('[data-redline-nav]')
  const redline = document.querySelector('[data-redline]')
  if (toolbar && redline) wireNavigation(toolbar, redline)
}
