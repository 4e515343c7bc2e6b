/**
 * What the status indicator says, from the provider's state. Pure, so it is tested in Node.
 */
import { gettext, ngettext } from '../i18n.js'
import { STATUS } from './provider.js'

/**
 * @typedef {object} StatusInput
 * @property {string} status one of STATUS
 * @property {number} pending unacknowledged local updates
 * @property {string} [error] the last error reported for this clause, if any
 */

/**
 * @typedef {object} StatusView
 * @property {string} text what a person reads, e.g. "Saved", "Saving…", "Offline — 3 changes pending"
 * @property {string} state a stable key for styling: saved | saving | connecting | offline | readonly | error
 */

/**
 * Describe the collaboration status for the indicator next to the editor.
 *
 * @param {StatusInput} input
 * @returns {StatusView}
 */
export function describeStatus ({ status, pending, error = '' }) {
  const changes = ngettext('%(num)s change', '%(num)s changes', pending)
  if (status === STATUS.OFFLINE) {
    if (error) return { text: gettext('Not connected: %(error)s', { error }), state: 'error' }
    return { text: pending > 0 ? gettext('Offline — %(changes)s pending', { changes }) : gettext('Offline'), state: 'offline' }
  }
  if (status === STATUS.CONNECTING) {
    return { text: pending > 0 ? gettext('Connecting… %(changes)s pending', { changes }) : gettext('Connecting…'), state: 'connecting' }
  }
  if (status === STATUS.READONLY) return { text: gettext('Read-only'), state: 'readonly' }
  if (pending > 0) return { text: gettext('Saving…'), state: 'saving' }
  return { text: gettext('Saved'), state: 'saved' }
}
