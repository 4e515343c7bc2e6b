/**
 * Framing of the messages carried in the "y" event of the /collab namespace.
 *
 * A frame is the y-websocket framing: a varuint message type (0 = sync, 1 = awareness)
 * followed by the payload. A sync payload is a y-protocols sync message (step 1, step 2 or
 * update); an awareness payload is a y-protocols awareness update as a var-length byte array.
 * The Python server (pycrdt) reads and writes exactly these bytes, so nothing here may change
 * without changing the server too.
 *
 * This module is pure: no socket, no DOM.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'

/** Frame type: a y-protocols sync message follows. */
export const MESSAGE_SYNC = 0
/** Frame type: a y-protocols awareness update follows. */
export const MESSAGE_AWARENESS = 1

/** Sync sub-types, as y-protocols numbers them. */
export const SYNC_STEP1 = syncProtocol.messageYjsSyncStep1
export const SYNC_STEP2 = syncProtocol.messageYjsSyncStep2
export const SYNC_UPDATE = syncProtocol.messageYjsUpdate

/**
 * Turn whatever the transport handed us into a Uint8Array without copying.
 *
 * socket.io-client gives an ArrayBuffer in browsers and a Buffer (a Uint8Array) in Node.
 *
 * @param {ArrayBuffer | ArrayBufferView} msg
 * @returns {Uint8Array}
 * @throws {TypeError} when msg is not binary (the server sent something malformed).
 */
export function toBytes (msg) {
  if (msg instanceof Uint8Array) return msg
  if (msg instanceof ArrayBuffer) return new Uint8Array(msg)
  if (ArrayBuffer.isView(msg)) return new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength)
  throw new TypeError('collab frame is not binary')
}

/**
 * The frames of a server broadcast ("y" {clause, frames}): the edits of a clause stored within a
 * few milliseconds, each frame as a varuint length and its bytes, one after another.
 * Throws on a cut-short buffer.
 *
 * @param {any} frames
 * @returns {Uint8Array[]}
 */
export function unpackFrames (frames) {
  const decoder = decoding.createDecoder(toBytes(frames))
  const out = []
  while (decoding.hasContent(decoder)) out.push(decoding.readVarUint8Array(decoder))
  return out
}

/**
 * Frame a sync step 1 (our state vector) for the clause document.
 *
 * @param {Y.Doc} doc
 * @returns {Uint8Array}
 */
export function encodeSyncStep1 (doc) {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  syncProtocol.writeSyncStep1(encoder, doc)
  return encoding.toUint8Array(encoder)
}

/**
 * Frame a sync step 2: everything in doc that a peer with stateVector lacks.
 *
 * @param {Y.Doc} doc
 * @param {Uint8Array} [stateVector] the peer's encoded state vector; omitted = the whole doc.
 * @returns {Uint8Array}
 */
export function encodeSyncStep2 (doc, stateVector) {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  syncProtocol.writeSyncStep2(encoder, doc, stateVector)
  return encoding.toUint8Array(encoder)
}

/**
 * Frame one Yjs update (as emitted by doc.on('update')) as a sync update message.
 *
 * @param {Uint8Array} update
 * @returns {Uint8Array}
 */
export function encodeSyncUpdate (update) {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

/**
 * Frame the awareness states of the given clients (removed clients are encoded as null states).
 *
 * @param {awarenessProtocol.Awareness} awareness
 * @param {number[]} clients
 * @returns {Uint8Array}
 */
export function encodeAwarenessFrame (awareness, clients) {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, clients))
  return encoding.toUint8Array(encoder)
}

/**
 * @typedef {object} DecodedFrame
 * @property {number} type MESSAGE_SYNC or MESSAGE_AWARENESS (or an unknown number).
 * @property {number | null} syncStep for sync frames: SYNC_STEP1, SYNC_STEP2 or SYNC_UPDATE.
 * @property {Uint8Array} payload for sync frames the state vector (step 1) or the update
 *   (step 2, update); for awareness frames the awareness update.
 */

/**
 * Split a frame into its type and payload, without applying anything.
 *
 * @param {ArrayBuffer | ArrayBufferView} msg
 * @returns {DecodedFrame}
 * @throws {Error} when the frame is truncated or not binary.
 */
export function decodeFrame (msg) {
  const decoder = decoding.createDecoder(toBytes(msg))
  const type = decoding.readVarUint(decoder)
  if (type === MESSAGE_SYNC) {
    const syncStep = decoding.readVarUint(decoder)
    return { type, syncStep, payload: decoding.readVarUint8Array(decoder) }
  }
  if (type === MESSAGE_AWARENESS) {
    return { type, syncStep: null, payload: decoding.readVarUint8Array(decoder) }
  }
  return { type, syncStep: null, payload: new Uint8Array(0) }
}

/**
 * Name a frame for logs and tests: "step1", "step2", "update", "awareness" or "unknown".
 *
 * @param {ArrayBuffer | ArrayBufferView} msg
 * @returns {string}
 */
export function frameKind (msg) {
  const { type, syncStep } = decodeFrame(msg)
  if (type === MESSAGE_AWARENESS) return 'awareness'
  if (type !== MESSAGE_SYNC) return 'unknown'
  if (syncStep === SYNC_STEP1) return 'step1'
  if (syncStep === SYNC_STEP2) return 'step2'
  if (syncStep === SYNC_UPDATE) return 'update'
  return 'unknown'
}

/**
 * Whether a Yjs update would change nothing (no new items, no deletions).
 *
 * The fake server in the tests uses this to accept an empty step 2 from a read-only client.
 *
 * @param {Uint8Array} update
 * @returns {boolean}
 */
export function isEmptyUpdate (update) {
  const { structs, ds } = Y.decodeUpdate(update)
  return structs.length === 0 && ds.clients.size === 0
}
