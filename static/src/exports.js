/**
 * Progress of a background export (templates/exports/job.html).
 *
 * The page works without scripts (a <noscript> refresh and a "Refresh" link). With this script,
 * the element marked data-export-job polls its data-status-url (GET /exports/<id>.json) about
 * once a second, moves the <progress> bar, announces the state through the polite live region
 * and reveals the download link when the file is ready. Polling stops when the job finishes,
 * when the page is left, or after repeated network errors.
 */

import { gettext } from './i18n.js'

const POLL_MS = 1000
const MAX_ERRORS = 5

/**
 * @typedef {{status: string, progress: number, message: string, finished: boolean,
 *            download_url: string|null, download_name: string|null}} JobState
 */

/**
 * Show one job state in the page.
 *
 * @param {Element} root the data-export-job element
 * @param {JobState} state
 */
export function showState (root, state) {
  const bar = root.querySelector('progress')
  const percent = root.querySelector('[data-job-percent]')
  const message = root.querySelector('[data-job-message]')
  const download = root.querySelector('[data-job-download]')
  const link = root.querySelector('[data-job-link]')
  const refresh = root.querySelector('[data-job-refresh]')
  const value = Math.max(0, Math.min(100, Number(state.progress) || 0))
  if (bar) bar.value = value
  if (percent) percent.textContent = `${value} %`
  if (message) {
    const text = state.status === 'done'
      ? gettext('Ready.')
      : state.status === 'failed'
        ? gettext('The export failed: %(message)s', { message: state.message || '' })
        : state.status === 'running' ? gettext('Exporting…') : gettext('Waiting to start…')
    // Only change the live region when the words change, so screen readers are not flooded.
    if (message.textContent.trim() !== text) message.textContent = text
  }
  if (state.status === 'done' && download && link && state.download_url) {
    link.setAttribute('href', state.download_url)
    if (state.download_name) link.textContent = gettext('Download %(name)s', { name: state.download_name })
    download.hidden = false
  }
  if (state.finished && refresh) refresh.hidden = true
}

/**
 * Poll one job until it finishes.
 *
 * @param {Element} root
 * @param {typeof fetch} [fetchImpl]
 * @returns {Promise<JobState|null>} the final state, or null when polling gave up
 */
export async function pollJob (root, fetchImpl = fetch) {
  const url = root.getAttribute('data-status-url')
  if (!url) return null
  let errors = 0
  for (;;) {
    try {
      const response = await fetchImpl(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
      /** @type {JobState} */
      const state = await response.json()
      errors = 0
      showState(root, state)
      if (state.finished) return state
    } catch (err) {
      errors += 1
      if (errors >= MAX_ERRORS) return null // the Refresh link still works
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

for (const root of document.querySelectorAll('[data-export-job]')) {
  pollJob(root)
}
