/**
 * Progressive enhancement for ordinary pages. Every page works without it; with it:
 *  - <html> gets the class "js" (a CSS hook for things only worth showing with scripts on);
 *  - a button, link or form with data-confirm="Question?" asks before it acts
 *    (e.g. withdrawing a comment, closing a feedback round, publishing a draft).
 * No inline scripts exist anywhere (strict CSP), so this bundle is the place for such glue.
 */

/**
 * Ask the question in `element`'s data-confirm; true when the person agreed or there is none.
 *
 * @param {Element} element
 * @returns {boolean}
 */
function confirmed (element) {
  const question = element.getAttribute('data-confirm')
  return !question || window.confirm(question)
}

/**
 * Install the delegated listeners on a document. Idempotent per document.
 *
 * @param {Document} doc
 */
export function enhancePage (doc = document) {
  if (doc.documentElement.dataset.enhanced === 'true') return
  doc.documentElement.dataset.enhanced = 'true'
  doc.documentElement.classList.add('js')

  // Buttons and links: ask on click (covers keyboard activation too, which fires click).
  doc.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target.closest('a[data-confirm], button[data-confirm], input[type="submit"][data-confirm]') : null
    if (target && !confirmed(target)) {
      event.preventDefault()
      event.stopImmediatePropagation()
    }
  })

  // Forms: ask on submit, unless the submitting button already asked.
  doc.addEventListener('submit', (event) => {
    const form = event.target
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-confirm')) return
    const submitter = /** @type {SubmitEvent} */ (event).submitter
    if (submitter && submitter.hasAttribute('data-confirm')) return
    if (!confirmed(form)) event.preventDefault()
  })
}

enhancePage()
