/**
 * A page's Socket.IO connection to /collab, for the clause it shows.
 *
 * The clause goes in the connection's query, which socket.io-client sends with every request of
 * the session (the long-polling requests and the websocket's). Behind deploy/nginx.conf the proxy
 * hashes it, so everyone in a clause reaches the same process and only that process holds the
 * clause: the others never apply its edits (docs/deploy.md, "Several processes"). Any process can
 * still serve any clause, through the clause feeds, so a page that joins a second clause on the
 * same connection, or a process that dies, costs a little more work and nothing else.
 */
import { io } from 'socket.io-client'

/**
 * @param {string} clauseUid
 * @returns {import('socket.io-client').Socket}
 */
export function collabSocket (clauseUid) {
  return io('/collab', { withCredentials: true, query: { clause: clauseUid } })
}
