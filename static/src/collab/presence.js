/**
 * Who is editing a clause, from the awareness states. Pure, so it is tested in Node.
 */

/** Colour shown for a participant whose colour is missing or not a plain hex colour. */
export const FALLBACK_COLOR = '#6b7280'

const HEX_COLOR = /^#[0-9a-fA-F]{6}$/

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
 * @typedef {object} Participant
 * @property {number} clientId
 * @property {string} name
 * @property {string} color a safe hex colour
 * @property {boolean} isSelf
 */

/**
 * The participants to list, one per awareness state that carries a user; yourself first,
 * then the others by name. Names are trimmed and capped at 80 characters.
 *
 * @param {Map<number, any>} states awareness.getStates()
 * @param {number} selfId awareness.clientID
 * @returns {Participant[]}
 */
export function participants (states, selfId) {
  /** @type {Participant[]} */
  const list = []
  for (const [clientId, state] of states) {
    const user = state && typeof state === 'object' ? state.user : null
    if (!user || typeof user !== 'object') continue
    const rawName = typeof user.name === 'string' ? user.name.trim() : ''
    list.push({
      clientId,
      name: rawName ? rawName.slice(0, 80) : 'Anonymous',
      color: safeColor(user.color),
      isSelf: clientId === selfId
    })
  }
  list.sort((a, b) => Number(b.isSelf) - Number(a.isSelf) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
  return list
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
