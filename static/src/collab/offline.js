/**
 * Offline work survives the tab: a clause's Y.Doc is kept in the browser's IndexedDB
 * (y-indexeddb), and closing a page with edits the server has not acknowledged asks first.
 *
 * The stored document is loaded before the clause joins the server, so edits typed while offline
 * (even in a tab or browser closed since) are part of the document the provider syncs: the
 * server's sync step 1 makes the provider answer with everything the server lacks, and that
 * answer is acknowledged once it is stored. Only people who may edit or suggest keep a copy; a
 * copy holding an update the server refused is deleted, since it could never be merged.
 */
import { IndexeddbPersistence } from 'y-indexeddb'

/** IndexedDB database name prefix; one database per clause uid. */
export const OFFLINE_DB_PREFIX = 'codedraft-clause-'

/** How long to wait for IndexedDB before opening the clause without the stored copy. */
const RESTORE_TIMEOUT_MS = 3000

/**
 * Attach IndexedDB persistence to ``ydoc`` and wait until the stored copy (if any) is loaded.
 *
 * @param {import('yjs').Doc} ydoc
 * @param {string} clauseUid
 * @param {{timeoutMs?: number, indexedDB?: any}} [options]
 * @returns {Promise<IndexeddbPersistence | null>} null where IndexedDB is unavailable (private
 *   modes, old browsers): the editor then works as before, online only.
 */
export async function restoreOffline (ydoc, clauseUid, { timeoutMs = RESTORE_TIMEOUT_MS, indexedDB = globalThis.indexedDB } = {}) {
  if (!indexedDB) return null
  let persistence
  try {
    persistence = new IndexeddbPersistence(OFFLINE_DB_PREFIX + clauseUid, ydoc)
  } catch (err) {
    return null
  }
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer
  const timeout = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs) })
  await Promise.race([persistence.whenSynced, timeout])
  clearTimeout(timer)
  return persistence
}

/**
 * Forget the stored copy of a clause (after the server refused one of its updates).
 *
 * @param {IndexeddbPersistence | null} persistence
 * @returns {Promise<void>}
 */
export async function forgetOffline (persistence) {
  if (!persistence) return
  try {
    await persistence.clearData()
  } catch (err) {
    // Nothing more to do: a copy that cannot be deleted is refused again on the next visit.
  }
}

/**
 * Ask before the page is closed or left while ``hasPending()`` says edits are not saved yet.
 *
 * @param {EventTarget} target the window
 * @param {() => boolean} hasPending
 * @returns {() => void} removes the guard
 */
export function guardUnsavedEdits (target, hasPending) {
  /** @param {BeforeUnloadEvent} event */
  const onBeforeUnload = (event) => {
    if (!hasPending()) return undefined
    // Browsers show their own words; these two lines are what makes them ask.
    event.preventDefault()
    event.returnValue = ''
    return ''
  }
  target.addEventListener('beforeunload', onBeforeUnload)
  return () => target.removeEventListener('beforeunload', onBeforeUnload)
}
