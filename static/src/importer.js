/**
 * Applying an import with a progress bar (templates/importer/preview.html).
 *
 * Without scripts the form posts and the browser waits for the redirect. With this script the
 * form is sent with fetch (asking for JSON), and while the server writes, the bar follows
 * GET data-progress-url about three times a second. On success the page moves to the code; on
 * a refusal the message is shown and the form can be sent again.
 */

const POLL_MS = 300

/**
 * Show a percentage in the progress area.
 *
 * @param {Element} area the data-import-progress element
 * @param {number} value 0-100
 */
export function showProgress (area, value) {
  const clamped = Math.max(0, Math.min(100, Number(value) || 0))
  const bar = area.querySelector('progress')
  const percent = area.querySelector('[data-import-percent]')
  if (bar) bar.value = clamped
  if (percent) percent.textContent = `${clamped} %`
}

/**
 * Send the form and follow its progress until the server answers.
 *
 * @param {HTMLFormElement} form
 */
async function applyWithProgress (form) {
  const area = form.querySelector('[data-import-progress]')
  const message = area.querySelector('[data-import-message]')
  const button = form.querySelector('button[type="submit"]')
  area.hidden = false
  button.disabled = true
  message.textContent = ''
  let finished = false
  const poll = async () => {
    while (!finished) {
      try {
        const response = await fetch(form.dataset.progressUrl, { headers: { Accept: 'application/json' } })
        if (response.ok) showProgress(area, (await response.json()).progress)
      } catch (error) { /* the apply request decides the outcome */ }
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
  }
  poll()
  try {
    const response = await fetch(form.action, {
      method: 'POST', body: new FormData(form), headers: { Accept: 'application/json' }, credentials: 'same-origin'
    })
    const answer = await response.json().catch(() => ({}))
    finished = true
    if (response.ok && typeof answer.redirect === 'string' && answer.redirect.startsWith('/')) {
      showProgress(area, 100)
      message.textContent = answer.message || ''
      window.location.assign(answer.redirect)
      return
    }
    message.textContent = answer.error || `The import failed (${response.status}).`
  } catch (error) {
    finished = true
    message.textContent = 'The server could not be reached; nothing was applied. Try again.'
  }
  button.disabled = false
}

// Only in a page (the module is also loaded by node's tests, which have no document).
if (typeof document !== 'undefined') {
  document.addEventListener('DOMContentLoaded', () => {
    for (const form of document.querySelectorAll('form[data-import-apply]')) {
      form.addEventListener('submit', event => {
        event.preventDefault()
        applyWithProgress(form)
      })
    }
  })
}
