/**
 * ClauseProvider: keeps one clause's Y.Doc in sync with the CodeDraft server over the
 * Socket.IO namespace "/collab".
 *
 * The transport is any socket-like object with emit(event, payload, ack?), on(event, fn),
 * off(event, fn) and a boolean `connected` (a socket.io-client Socket fits; the tests pass an
 * in-memory fake). The provider never creates or closes the socket, so one socket can carry
 * several clauses.
 *
 * Protocol (frozen; the Python server implements the same):
 *   client -> "join"  {clause}               ack {ok, readonly, suggest_only, user} | {ok: false, error}
 *   both   -> "y"     {clause, msg: frame}   client->server carries an ack {ok} | {ok: false, error}
 *   server -> "y"     {clause, frames}       others' edits: several frames, each a varuint length and its bytes
 *   server -> "role"  {clause, readonly, suggest_only}
 *   server -> "error" {clause, error}
 *   client -> "leave" {clause}
 * After a successful join the server sends its sync step 1; we answer with step 2 and send our
 * own step 1; the server answers with step 2, after which we are "synced".
 *
 * Why we may send step 1 again every `resyncInterval` ms while joined: a fallback only. With
 * several server processes the server itself fills gaps (edits come from a clause feed that every
 * process reads in order, and a process that lost the feed reads the log again and sends us what
 * we lack), so the editor sends one every two minutes, in case something still slipped through.
 *
 * Why we keep local updates until acknowledged: the server acknowledges an update only once it
 * is stored durably. An update whose ack never arrives (connection dropped, server restarted) is
 * not lost: on the next connection the server's step 1 makes us send a step 2 holding everything
 * the server lacks, and the ack of that step 2 settles all updates made before it was encoded.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { ObservableV2 } from 'lib0/observable'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import {
  MESSAGE_AWARENESS,
  MESSAGE_SYNC,
  encodeAwarenessFrame,
  encodeSyncStep1,
  encodeSyncUpdate,
  toBytes,
  unpackFrames
} from './framing.js'
import { safeRemoteState } from './presence.js'

/** The status values a provider reports, for the status indicator. */
export const STATUS = Object.freeze({
  CONNECTING: 'connecting',
  SYNCED: 'synced',
  OFFLINE: 'offline',
  READONLY: 'readonly'
})

/** The longest wait between two attempts to resync after a refused update. */
const MAX_RESYNC_DELAY_MS = 30000

/** How often a joined provider sends its state vector (sync step 1), unless told otherwise: a
 * fallback (the server fills gaps between processes itself), so rarely. */
export const DEFAULT_RESYNC_INTERVAL_MS = 120000

/** Origin used when we remove our own awareness state because the page goes away. */
const UNLOAD_ORIGIN = 'window unload'

/**
 * @typedef {object} SocketLike
 * @property {boolean} connected
 * @property {(event: string, payload?: any, ack?: (response: any) => void) => any} emit
 * @property {(event: string, fn: (...args: any[]) => void) => any} on
 * @property {(event: string, fn: (...args: any[]) => void) => any} off
 */

/**
 * @typedef {object} ServerUser
 * @property {number} id the account's id (suggestion marks carry it)
 * @property {string} name
 * @property {string} color
 */

/**
 * @typedef {object} ProviderEvents
 * @property {(e: {status: string}) => void} status    status changed (see STATUS)
 * @property {(e: {count: number}) => void} pending    the number of unacknowledged local updates changed
 * @property {(e: {readonly: boolean, suggestOnly: boolean, user: ServerUser | null}) => void} joined  the server accepted our join
 * @property {(e: {readonly: boolean, suggestOnly: boolean}) => void} role   the server changed our permission
 * @property {(e: {synced: boolean}) => void} synced   became synced / lost sync
 * @property {(e: {error: string, count: number}) => void} rejected  the server refused `count` local updates
 * @property {(e: {error: string, source: string}) => void} error     join refused, server error, malformed frame
 */

/**
 * Read an acknowledgement defensively: anything but {ok: true} is a refusal.
 *
 * @param {any} ack
 * @returns {{ok: boolean, error: string}}
 */
function readAck (ack) {
  if (ack && ack.ok === true) return { ok: true, error: '' }
  const error = ack && typeof ack.error === 'string' ? ack.error : 'malformed acknowledgement'
  return { ok: false, error }
}

/**
 * @extends {ObservableV2<ProviderEvents>}
 */
export class ClauseProvider extends ObservableV2 {
  /**
   * Start syncing `doc` for `clause` over `socket`; joins at once if the socket is connected,
   * otherwise on its next "connect".
   *
   * @param {SocketLike} socket
   * @param {string} clause the clause uid
   * @param {import('yjs').Doc} doc the clause document (its Y.Text is named "body")
   * @param {object} [options]
   * @param {awarenessProtocol.Awareness} [options.awareness] defaults to a new Awareness on doc
   * @param {EventTarget | null} [options.unloadTarget] where to listen for "pagehide" (the window);
   *   null in tests.
   * @param {number} [options.resyncDelay] first wait (ms) before rejoining to resync after a
   *   refusal that may be temporary; doubles up to 30 s while refusals go on.
   * @param {number} [options.resyncInterval] while joined, send sync step 1 every so many ms, so
   *   that updates whose broadcast was lost between server processes arrive in the step 2
   *   answer; 0 or less never does.
   * @param {Error} [options.refusal] the server's refusal of the socket's connection, when it came
   *   before this provider (collab/socket.js keeps it): the provider starts offline and says why.
   */
  constructor (socket, clause, doc, {
    awareness, unloadTarget = null, resyncDelay = 1000, resyncInterval = DEFAULT_RESYNC_INTERVAL_MS, refusal
  } = {}) {
    super()
    if (typeof clause !== 'string' || clause === '') throw new TypeError('clause uid is required')
    this.socket = socket
    this.clause = clause
    this.doc = doc
    this.awareness = awareness || new awarenessProtocol.Awareness(doc)
    /** An awareness we made is ours to destroy (it runs a timer). */
    this._ownsAwareness = !awareness
    /** Whether the server lets us edit; from the join ack and later "role" events. */
    this.readonly = false
    /** Read-only, but may add and withdraw their own suggestions (suggestion mode). */
    this.suggestOnly = false
    /** The user as the server knows it (name, color), from the join ack. */
    /** @type {ServerUser | null} */
    this.user = null
    /** The last error reported by the server for this clause (join refused, etc.), or ''. */
    this.lastError = ''
    /**
     * True once the server refused a local update for good (we are read-only). The refused
     * change stays in the local doc,
     * and every later local update depends on it, so the server can never integrate them: the
     * replica is stale. The provider then stops sending; the owner must start over with a
     * fresh doc from the server (the editor does so on "rejected").
     */
    this.diverged = false
    /** @type {string} */
    this.status = STATUS.CONNECTING

    this._destroyed = false
    this._connected = false
    this._joined = false
    this._synced = false
    this._joinRefused = false
    /** Bumped on every (re)connection, so that a join ack from an old connection is ignored. */
    this._epoch = 0
    this._step1Sent = false
    /** Highest local sequence number covered by a step 2 sent on this connection; -1 if none. */
    this._step2Seq = -1
    this._seq = 0
    /** Unacknowledged local updates, by sequence number. @type {Map<number, Uint8Array>} */
    this._pending = new Map()
    this._initialResyncDelay = resyncDelay
    this._resyncDelay = resyncDelay
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._resyncTimer = null
    this._resyncInterval = resyncInterval
    /** Sends the periodic step 1; runs only while joined. @type {ReturnType<typeof setInterval> | null} */
    this._periodicStep1Timer = null
    /** Our awareness state saved at "pagehide", restored if the page comes back from the bfcache. */
    this._savedLocalState = null

    this._onConnect = () => this._handleConnect()
    this._onDisconnect = () => this._handleDisconnect()
    this._onY = (/** @type {any} */ payload) => this._handleFrame(payload)
    this._onRole = (/** @type {any} */ payload) => this._handleRole(payload)
    this._onServerError = (/** @type {any} */ payload) => this._handleServerError(payload)
    this._onConnectError = (/** @type {any} */ err) => this._handleConnectError(err)
    this._onDocUpdate = (/** @type {Uint8Array} */ update, /** @type {any} */ origin) => this._handleDocUpdate(update, origin)
    this._onAwarenessUpdate = (/** @type {any} */ change, /** @type {any} */ origin) => this._handleAwarenessUpdate(change, origin)
    this._onPageHide = () => this._handlePageHide()
    this._onPageShow = (/** @type {any} */ event) => this._handlePageShow(event)

    socket.on('connect', this._onConnect)
    socket.on('disconnect', this._onDisconnect)
    socket.on('y', this._onY)
    socket.on('role', this._onRole)
    socket.on('error', this._onServerError)
    socket.on('connect_error', this._onConnectError)
    doc.on('update', this._onDocUpdate)
    this.awareness.on('update', this._onAwarenessUpdate)
    this._unloadTarget = unloadTarget
    if (unloadTarget) {
      unloadTarget.addEventListener('pagehide', this._onPageHide)
      unloadTarget.addEventListener('pageshow', this._onPageShow)
    }
    if (socket.connected) this._handleConnect()
    else if (refusal) this._handleConnectError(refusal)
  }

  /** The number of local updates the server has not acknowledged yet. */
  get unackedCount () {
    return this._pending.size
  }

  /** Whether the server's state has been received on the current connection. */
  get synced () {
    return this._synced
  }

  /**
   * Leave the clause and stop listening. The socket and the doc stay open: they belong to the
   * caller. Safe to call twice.
   */
  destroy () {
    if (this._destroyed) return
    if (this.awareness.getLocalState() !== null) {
      // Tell the others we are gone before we stop talking.
      awarenessProtocol.removeAwarenessStates(this.awareness, [this.awareness.clientID], UNLOAD_ORIGIN)
    }
    if (this._joined) this.socket.emit('leave', { clause: this.clause })
    this._destroyed = true
    this._joined = false
    this._cancelResync()
    this._stopPeriodicStep1()
    this.socket.off('connect', this._onConnect)
    this.socket.off('disconnect', this._onDisconnect)
    this.socket.off('y', this._onY)
    this.socket.off('role', this._onRole)
    this.socket.off('error', this._onServerError)
    this.socket.off('connect_error', this._onConnectError)
    this.doc.off('update', this._onDocUpdate)
    this.awareness.off('update', this._onAwarenessUpdate)
    if (this._ownsAwareness) this.awareness.destroy()
    if (this._unloadTarget) {
      this._unloadTarget.removeEventListener('pagehide', this._onPageHide)
      this._unloadTarget.removeEventListener('pageshow', this._onPageShow)
    }
    super.destroy()
  }

  // --- connection life cycle -------------------------------------------------------------

  _handleConnect () {
    if (this._destroyed) return
    this._stopPeriodicStep1()
    this._connected = true
    this._joined = false
    this._synced = false
    this._joinRefused = false
    this._step1Sent = false
    this._step2Seq = -1
    const epoch = ++this._epoch
    this._updateStatus()
    this.socket.emit('join', { clause: this.clause }, (/** @type {any} */ ack) => this._handleJoinAck(epoch, ack))
  }

  _handleDisconnect () {
    if (this._destroyed) return
    // The next "connect" rejoins and resyncs anyway.
    this._cancelResync()
    this._stopPeriodicStep1()
    this._connected = false
    this._joined = false
    this._epoch++
    this._setSynced(false)
    // Nobody is known to be here while we cannot hear them; they are re-announced after the rejoin.
    this._forgetOthers()
    this._updateStatus()
  }

  /** Drop everyone else's presence: we no longer hear whether they are here. */
  _forgetOthers () {
    const others = Array.from(this.awareness.getStates().keys()).filter((id) => id !== this.awareness.clientID)
    if (others.length > 0) awarenessProtocol.removeAwarenessStates(this.awareness, others, this)
  }

  /**
   * @param {number} epoch the connection the join was sent on
   * @param {any} ack
   */
  _handleJoinAck (epoch, ack) {
    if (this._destroyed || epoch !== this._epoch) return
    const { ok, error } = readAck(ack)
    if (!ok) {
      this._joinRefused = true
      this.lastError = error
      this.emit('error', [{ error, source: 'join' }])
      this._updateStatus()
      return
    }
    this._joined = true
    this.lastError = ''
    this.readonly = ack.readonly === true
    this.suggestOnly = this.readonly && ack.suggest_only === true
    this.user = ack.user && typeof ack.user === 'object'
      ? { id: Number(ack.user.id ?? -1), name: String(ack.user.name ?? ''), color: String(ack.user.color ?? '') }
      : null
    this.emit('joined', [{ readonly: this.readonly, suggestOnly: this.suggestOnly, user: this.user }])
    if (!this._step1Sent) this._sendStep1()
    // Updates typed after our step 2 went out but before the join was confirmed were held back
    // (the server may handle events concurrently, so nothing but step 2 goes out before the ack).
    if (this._step2Seq >= 0 && !this.diverged) {
      for (const [seq, update] of this._pending) {
        if (seq > this._step2Seq) this._sendUpdate(seq, update)
      }
    }
    if (this.awareness.getLocalState() !== null) this._sendAwareness([this.awareness.clientID])
    this._startPeriodicStep1()
    this._updateStatus()
  }

  // --- incoming ---------------------------------------------------------------------------

  /** @param {any} payload {clause, msg: frame}, or {clause, frames: packed frames} for a broadcast of edits */
  _handleFrame (payload) {
    if (this._destroyed || !payload || payload.clause !== this.clause) return
    if (payload.frames === undefined) return this._handleOneFrame(payload.msg)
    let frames
    try {
      frames = unpackFrames(payload.frames)
    } catch (err) {
      this.emit('error', [{ error: `malformed frames: ${err instanceof Error ? err.message : String(err)}`, source: 'frame' }])
      return
    }
    // One transaction for the batch: the editor redraws once, not once per edit.
    this.doc.transact(() => { for (const frame of frames) this._handleOneFrame(frame) }, this)
  }

  /** @param {any} msg one y-websocket frame */
  _handleOneFrame (msg) {
    let decoder
    try {
      decoder = decoding.createDecoder(toBytes(msg))
      const type = decoding.readVarUint(decoder)
      if (type === MESSAGE_SYNC) {
        this._handleSync(decoder)
      } else if (type === MESSAGE_AWARENESS) {
        // Peers' states pass the browser's own check before the editor renders them.
        const update = awarenessProtocol.modifyAwarenessUpdate(decoding.readVarUint8Array(decoder), safeRemoteState)
        awarenessProtocol.applyAwarenessUpdate(this.awareness, update, this)
      } else {
        this.emit('error', [{ error: `unknown frame type ${type}`, source: 'frame' }])
      }
    } catch (err) {
      this.emit('error', [{ error: `malformed frame: ${err instanceof Error ? err.message : String(err)}`, source: 'frame' }])
    }
  }

  /** @param {decoding.Decoder} decoder positioned after the frame type */
  _handleSync (decoder) {
    const reply = encoding.createEncoder()
    encoding.writeVarUint(reply, MESSAGE_SYNC)
    // Remote content is applied with this provider as origin, so it is neither echoed back nor
    // tracked by the local undo manager.
    const step = syncProtocol.readSyncMessage(decoder, reply, this.doc, this, (err) => {
      this.emit('error', [{ error: `bad update from server: ${err.message}`, source: 'frame' }])
    })
    if (step === syncProtocol.messageYjsSyncStep1) {
      if (this.diverged) return
      this._sendStep2(encoding.toUint8Array(reply))
      if (!this._step1Sent) this._sendStep1()
    } else if (step === syncProtocol.messageYjsSyncStep2) {
      this._setSynced(true)
      this._updateStatus()
    }
  }

  /** @param {any} payload */
  _handleRole (payload) {
    if (this._destroyed || !payload || payload.clause !== this.clause) return
    if (payload.removed === true) {
      // Read access lost: the server took this socket out of the clause. Offline, saying why,
      // rather than a text that silently stops changing; a reload asks again.
      this._joined = false
      this._joinRefused = true
      this._stopPeriodicStep1()
      this._forgetOthers()
      this.lastError = typeof payload.error === 'string' && payload.error ? payload.error : 'removed'
      this.emit('error', [{ error: this.lastError, source: 'server' }])
      // Nothing typed here could reach the clause any more: the page stops taking edits and
      // suggestions, as for a reader.
      this.readonly = true
      this.suggestOnly = false
      this.emit('role', [{ readonly: true, suggestOnly: false, removed: true }])
      this._updateStatus()
      return
    }
    const readonly = payload.readonly === true
    const suggestOnly = readonly && payload.suggest_only === true
    if (readonly === this.readonly && suggestOnly === this.suggestOnly) return
    this.readonly = readonly
    this.suggestOnly = suggestOnly
    this.emit('role', [{ readonly, suggestOnly }])
    this._updateStatus()
  }

  /** @param {any} payload */
  _handleServerError (payload) {
    // An error for no clause in particular (signed out, throttled) concerns every clause.
    if (this._destroyed || !payload || (payload.clause !== this.clause && payload.clause != null)) return
    const error = typeof payload.error === 'string' ? payload.error : 'unknown error'
    this.lastError = error
    this.emit('error', [{ error, source: 'server' }])
  }

  /**
   * A connection that could not be made. socket.io-client tries again by itself after a failed
   * transport (the socket stays active), and the page goes on saying "connecting"; a connection
   * the server refused (signed out, too many pages open) is not tried again, so the page says why.
   *
   * @param {any} err
   */
  _handleConnectError (err) {
    if (this._destroyed || this.socket.active) return
    const error = err && typeof err.message === 'string' && err.message ? err.message : 'unknown error'
    this.lastError = error
    this._updateStatus() // offline: never connected, and no retry is coming
    this.emit('error', [{ error, source: 'server' }])
  }

  // --- outgoing ---------------------------------------------------------------------------

  /**
   * @param {Uint8Array} update
   * @param {any} origin
   */
  _handleDocUpdate (update, origin) {
    if (origin === this) return
    const seq = ++this._seq
    this._pending.set(seq, update)
    this._emitPending()
    if (this._joined && !this.diverged) this._sendUpdate(seq, update)
  }

  /**
   * @param {{added: number[], updated: number[], removed: number[]}} change
   * @param {any} origin
   */
  _handleAwarenessUpdate ({ added, updated, removed }, origin) {
    if (origin === this) return
    // Only our own state is ours to announce; the others' states reach everyone from their owners.
    const mine = this.awareness.clientID
    if (!added.includes(mine) && !updated.includes(mine) && !removed.includes(mine)) return
    if (this._joined) this._sendAwareness([mine])
  }

  /** Our step 1 of the join handshake, sent once per join. */
  _sendStep1 () {
    this._step1Sent = true
    this._emitStep1()
  }

  _emitStep1 () {
    this._emitFrame(encodeSyncStep1(this.doc), (ack) => {
      const { ok, error } = readAck(ack)
      if (!ok) this.emit('error', [{ error, source: 'step1' }])
    })
  }

  /** @param {Uint8Array} frame the framed step 2 answering the server's step 1 */
  _sendStep2 (frame) {
    const upTo = this._seq
    this._step2Seq = upTo
    this._emitFrame(frame, (ack) => {
      this._settle((seq) => seq <= upTo, ack, 'step2')
      if (readAck(ack).ok) this._resyncDelay = this._initialResyncDelay
    })
  }

  /**
   * @param {number} seq
   * @param {Uint8Array} update
   */
  _sendUpdate (seq, update) {
    this._emitFrame(encodeSyncUpdate(update), (ack) => this._settle((s) => s === seq, ack, 'update'))
  }

  /** @param {number[]} clients */
  _sendAwareness (clients) {
    this._emitFrame(encodeAwarenessFrame(this.awareness, clients), (ack) => {
      const { ok, error } = readAck(ack)
      if (!ok) this.emit('error', [{ error, source: 'awareness' }])
    })
  }

  /**
   * @param {Uint8Array} frame
   * @param {(ack: any) => void} onAck
   */
  _emitFrame (frame, onAck) {
    this.socket.emit('y', { clause: this.clause, msg: frame }, onAck)
  }

  /**
   * Settle the pending updates selected by `covers` with the server's answer.
   *
   * An ack is true whenever it arrives (the server stored the data), so late acks from an
   * earlier connection are honoured too. A refusal is one of three kinds:
   *  - {resync: true}: held by the server until what it builds on arrives; the server has sent
   *    its step 1, and our step 2 answer will settle it. Nothing to do.
   *  - while we are read-only (the server sends "role" before such a refusal): final. The local
   *    replica is stale; "rejected" tells the owner to start over from the server's doc.
   *  - anything else (throttled, database busy, join raced...): maybe temporary. The updates stay
   *    pending and we rejoin after a growing delay, which resyncs and resends them.
   *
   * @param {(seq: number) => boolean} covers
   * @param {any} ack
   * @param {string} source
   */
  _settle (covers, ack, source) {
    if (this._destroyed) return
    const { ok, error } = readAck(ack)
    const covered = Array.from(this._pending.keys()).filter(covers)
    if (!ok) {
      if (ack && ack.resync === true) return
      this.lastError = error
      if (this.readonly && covered.length > 0) {
        for (const seq of covered) this._pending.delete(seq)
        this.diverged = true
        this.emit('rejected', [{ error, count: covered.length }])
        this._emitPending()
        this._updateStatus()
        return
      }
      this.emit('error', [{ error, source }])
      if (covered.length > 0) this._scheduleResync()
      return
    }
    if (covered.length === 0) return
    for (const seq of covered) this._pending.delete(seq)
    this._emitPending()
    this._updateStatus()
  }

  /** Rejoin after a delay, so that the server's step 1 makes us resend what it lacks. */
  _scheduleResync () {
    if (this._resyncTimer !== null || this._destroyed) return
    const delay = this._resyncDelay
    this._resyncDelay = Math.min(this._resyncDelay * 2, MAX_RESYNC_DELAY_MS)
    this._resyncTimer = setTimeout(() => {
      this._resyncTimer = null
      // A join on a joined clause is answered with a fresh step 1; no "leave", so the others
      // see no flicker in who is here.
      if (this._connected && !this._destroyed && !this.diverged) this._handleConnect()
    }, delay)
  }

  _cancelResync () {
    if (this._resyncTimer !== null) clearTimeout(this._resyncTimer)
    this._resyncTimer = null
  }

  /**
   * Send step 1 every resyncInterval ms until the next disconnect, rejoin or destroy. It is not
   * part of the handshake (the join's step 1 went out already), so it leaves that state alone;
   * the server's step 2 answer is applied like any other.
   */
  _startPeriodicStep1 () {
    this._stopPeriodicStep1()
    if (!(this._resyncInterval > 0)) return
    this._periodicStep1Timer = setInterval(() => {
      // A stale replica sends nothing more (see diverged).
      if (!this.diverged) this._emitStep1()
    }, this._resyncInterval)
  }

  _stopPeriodicStep1 () {
    if (this._periodicStep1Timer !== null) clearInterval(this._periodicStep1Timer)
    this._periodicStep1Timer = null
  }

  // --- page life cycle ----------------------------------------------------------------------

  _handlePageHide () {
    const state = this.awareness.getLocalState()
    if (state === null) return
    this._savedLocalState = state
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.awareness.clientID], UNLOAD_ORIGIN)
  }

  /** @param {any} event */
  _handlePageShow (event) {
    // A page restored from the back/forward cache must announce itself again.
    if (event && event.persisted && this._savedLocalState && this.awareness.getLocalState() === null) {
      this.awareness.setLocalState(this._savedLocalState)
    }
  }

  // --- status -------------------------------------------------------------------------------

  /** @param {boolean} synced */
  _setSynced (synced) {
    if (this._synced === synced) return
    this._synced = synced
    this.emit('synced', [{ synced }])
  }

  _emitPending () {
    this.emit('pending', [{ count: this._pending.size }])
  }

  /** @returns {string} */
  _computeStatus () {
    if (!this._connected || this._joinRefused || this.diverged) return STATUS.OFFLINE
    if (!this._synced) return STATUS.CONNECTING
    return this.readonly && !this.suggestOnly ? STATUS.READONLY : STATUS.SYNCED
  }

  _updateStatus () {
    const status = this._computeStatus()
    if (status === this.status) return
    this.status = status
    this.emit('status', [{ status }])
  }
}
