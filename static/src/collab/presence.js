/**
 * Who is editing a clause, from the awareness states. Pure, so it is tested in Node.
 */

/** Colour shown for a participant whose colour is missing or not a plain hex colour. */
export const FALLBACK_COLOR = '#6b7280'

const HEX_COLOR = /^#[0-9a-fA-F]{6}$/
/** The largest account id there can be (codedraft.collab.core.MAX_ACCOUNT_ID). */
const MAX_ACCOUNT_ID = 2 ** 31 - 1

/**
 * A colour that is safe to put into a style: a #rrggbb hex value, else the fallback.
 *
 * Awareness states are written by other clients, so their colour is untrusted input.
 *
 * @param {unknown} color
 * @returns {string}
 */
export function safeColor (color) {
  return typeof color === 'string' && HEX_COLOR.test(color) ? color : FALLBACK_COLOR
}

/**
 * An account id as the server stamps it into presence (`user.id`), or null for anything else.
 *
 * @param {unknown} value
 * @returns {number | null}
 */
export function accountId (value) {
  return Number.isInteger(value) && /** @type {number} */ (value) >= 0 && /** @type {number} */ (value) <= MAX_ACCOUNT_ID
    ? /** @type {number} */ (value)
    : null
}

/**
 * @typedef {object} Participant
 * @property {number} clientId
 * @property {number | null} account the account's id, when the state carries one
 * @property {string} name
 * @property {string} color a safe hex colour
 * @property {boolean} isSelf
 * @property {number} tabs how many of the person's editors (tabs, windows) are here
 */

/**
 * The participants to list: one per person, yourself first, then the others by name. States
 * with the same account id are one person open in several tabs (the entry counts them); states
 * without an id are listed one each. States without a user are skipped. Names are trimmed and
 * capped at 80 characters.
 *
 * @param {Map<number, any>} states awareness.getStates()
 * @param {number} selfId awareness.clientID
 * @returns {Participant[]}
 */
export function participants (states, selfId) {
  /** @type {Map<string, Participant>} */
  const people = new Map()
  for (const [clientId, state] of states) {
    const user = state && typeof state === 'object' ? state.user : null
    if (!user || typeof user !== 'object') continue
    const account = accountId(user.id)
    const key = account === null ? `client:${clientId}` : `account:${account}`
    const isSelf = clientId === selfId
    const known = people.get(key)
    if (known) {
      known.tabs += 1
      if (isSelf) Object.assign(known, { clientId, isSelf })
      continue
    }
    people.set(key, { clientId, account, ...shownUser(user), isSelf, tabs: 1 })
  }
  const list = [...people.values()]
  list.sort((a, b) => Number(b.isSelf) - Number(a.isSelf) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
  return list
}

/**
 * The name and colour "Here now" shows for account `by`, if one of its editors is present: the
 * server stamps both from the account, so a suggestion by someone new is named at once.
 *
 * @param {Map<number, any>} states awareness.getStates()
 * @param {number} by an account id, as a suggestion mark names it
 * @returns {{name: string, color: string} | null}
 */
export function presentAuthor (states, by) {
  for (const state of states.values()) {
    const user = state && typeof state === 'object' ? state.user : null
    if (user && typeof user === 'object' && accountId(user.id) === by) return shownUser(user)
  }
  return null
}

/**
 * A user field as "Here now" shows it: the name trimmed and capped at 80 characters (else
 * "Anonymous"), the colour checked.
 *
 * @param {any} user
 * @returns {{name: string, color: string}}
 */
function shownUser (user) {
  const rawName = typeof user.name === 'string' ? user.name.trim() : ''
  return { name: rawName ? rawName.slice(0, 80) : 'Anonymous', color: safeColor(user.color) }
}

/**
 * A remote awareness state reduced to what the editor may see: the user's name and a checked
 * colour (the server stamps both from the account; this is the browser's own check, since
 * y-codemirror.next writes colours into style attributes), and a cursor only if it has the
 * shape y-codemirror.next writes. Everything else a peer put in its state is dropped.
 *
 * @param {any} state one client's awareness state, null when it left
 * @returns {any}
 */
export function safeRemoteState (state) {
  if (state === null || typeof state !== 'object') return null
  const user = state.user && typeof state.user === 'object' ? state.user : {}
  const name = typeof user.name === 'string' ? user.name.trim().slice(0, 100) : ''
  const color = safeColor(user.color)
  /** @type {any} */
  const safe = { user: { name: name || 'Anonymous', color, colorLight: `${color}33` } }
  const account = accountId(user.id)
  if (account !== null) safe.user.id = account
  const cursor = state.cursor
  if (cursor && typeof cursor === 'object' && isPlainObject(cursor.anchor) && isPlainObject(cursor.head)) {
    safe.cursor = { anchor: cursor.anchor, head: cursor.head }
  }
  return safe
}

/** @param {unknown} value */
function isPlainObject (value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
