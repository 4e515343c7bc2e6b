/**
 * Who is editing a clause, from the awareness states. Pure, so it is tested in Node.
 */

/** Colour shown for a participant whose colour is missing or not a plain hex colour. */
export const FALLBACK_COLOR = '#6b7280'

const HEX_COLOR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/

/**
 * A colour that is safe to put into a style: a #rgb / #rrggbb hex value, else the fallback.
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
