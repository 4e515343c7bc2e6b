/**
 * What the status indicator says, from the provider's state. Pure, so it is tested in Node.
 */
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
  const changes = pending === 1 ? '1 change' : `${pending} changes`
  if (status === STATUS.OFFLINE) {
    if (error) return { text: `Cannot edit this clause: ${error}`, state: 'error' }
    return { text: pending > 0 ? `Offline — ${changes} pending` : 'Offline', state: 'offline' }
  }
  if (status === STATUS.CONNECTING) {
    return { text: pending > 0 ? `Connecting… ${changes} pending` : 'Connecting…', state: 'connecting' }
  }
  if (status === STATUS.READONLY) return { text: 'Read-only', state: 'readonly' }
  if (pending > 0) return { text: 'Saving…', state: 'saving' }
  return { text: 'Saved', state: 'saved' }
}
