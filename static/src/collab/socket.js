/**
 * A page's Socket.IO connection to /collab, for the clause it shows.
 *
 * The clause goes in the connection's query, which socket.io-client sends with every request of
 * the session (the long-polling requests and the websocket's). Behind deploy/nginx.conf the proxy
 * hashes it, so everyone in a clause reaches the same process and only that process holds the
 * clause: the others never apply its edits (docs/deploy.md, "Several processes"). Any process can
 * still serve any clause, through the clause feeds, so a page that joins a second clause on the
 * same connection, or a process that dies, costs a little more work and nothing else.
 *
 * A clause page's editor and its feedback panel share one connection: both are in the clause's
 * room, and a second connection for the same namespace is one more that the server pays for
 * (memory, a slot of its connections, the account's allowance). They are separate bundles, each
 * with its own copy of this module, so the page's connections are kept on the window under a
 * registered symbol, which both copies name alike.
 */
import { io } from 'socket.io-client'

const PAGE = Symbol.for('codedraft.collab-page')

/**
 * @typedef {object} PageConnections
 * @property {Map<string, import('socket.io-client').Socket>} byClause one each, whichever bundle asks first opens it
 * @property {WeakMap<object, Error>} refusals why the server refused a connection, for those it refused
 */

/** @returns {PageConnections} this page's, shared by every bundle on it */
function page () {
  const holder = /** @type {any} */ (globalThis)
  if (!holder[PAGE]) holder[PAGE] = { byClause: new Map(), refusals: new WeakMap() }
  return holder[PAGE]
}

/**
 * The server's refusal of ``socket``'s connection, if it refused it (no retry follows one).
 *
 * @param {object} socket
 * @returns {Error | undefined}
 */
export function refusalOf (socket) {
  return page().refusals.get(socket)
}

/**
 * @param {string} clauseUid
 * @returns {import('socket.io-client').Socket}
 */
export function collabSocket (clauseUid) {
  const { byClause, refusals } = page()
  let socket = byClause.get(clauseUid)
  if (socket === undefined) {
    const made = io('/collab', { withCredentials: true, query: { clause: clauseUid } })
    // A refusal can come before the page's parts listen (the editor first reads its offline
    // copy): it is kept on the socket, where a part that comes later finds it (provider.js).
    made.on('connect_error', (/** @type {Error} */ err) => { if (!made.active) refusals.set(made, err) })
    made.on('connect', () => { refusals.delete(made) })
    byClause.set(clauseUid, made)
    socket = made
  }
  return socket
}
