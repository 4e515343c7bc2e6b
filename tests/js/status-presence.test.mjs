import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeStatus } from '../../static/src/collab/status.js'
import { FALLBACK_COLOR, participants, presentAuthor, safeColor, safeRemoteState } from '../../static/src/collab/presence.js'

test('the status line reads Saved / Saving… / Offline — N changes pending / Read-only', () => {
  assert.deepEqual(describeStatus({ status: 'synced', pending: 0 }), { text: 'Saved', state: 'saved' })
  assert.deepEqual(describeStatus({ status: 'synced', pending: 2 }), { text: 'Saving…', state: 'saving' })
  assert.deepEqual(describeStatus({ status: 'offline', pending: 3 }), { text: 'Offline — 3 changes pending', state: 'offline' })
  assert.deepEqual(describeStatus({ status: 'offline', pending: 1 }), { text: 'Offline — 1 change pending', state: 'offline' })
  assert.deepEqual(describeStatus({ status: 'offline', pending: 0 }), { text: 'Offline', state: 'offline' })
  assert.deepEqual(describeStatus({ status: 'connecting', pending: 0 }), { text: 'Connecting…', state: 'connecting' })
  assert.deepEqual(describeStatus({ status: 'readonly', pending: 0 }), { text: 'Read-only', state: 'readonly' })
  assert.deepEqual(describeStatus({ status: 'offline', pending: 0, error: 'forbidden' }), { text: 'Not connected: forbidden', state: 'error' })
})

test('only #rrggbb colours from other clients reach a style', () => {
  assert.equal(safeColor('#1a2B3c'), '#1a2B3c')
  for (const bad of ['#abc', 'red; background:url(https://evil.example/x)', 'url(x)', '#12345', '#1234567', '', null, 42,
    'expression(alert(1))', '#123456; position:fixed']) {
    assert.equal(safeColor(bad), FALLBACK_COLOR, String(bad))
  }
})

test('participants: yourself first, then by name; states without a user are skipped', () => {
  const states = new Map([
    [7, { user: { name: 'Zoë (civil society)', color: '#00aa00' } }],
    [3, { user: { name: '  ana  ', color: 'javascript:1' } }],
    [9, { cursor: null }],
    [5, { user: { name: '', color: '#123456' } }],
    [4, { user: { name: 'x'.repeat(200), color: '#fff' } }]
  ])
  const list = participants(states, 7)
  assert.deepEqual(list.map((p) => [p.clientId, p.isSelf]), [[7, true], [3, false], [5, false], [4, false]])
  assert.equal(list[1].name, 'ana')
  assert.equal(list[1].color, FALLBACK_COLOR)
  assert.equal(list[2].name, 'Anonymous')
  assert.equal(list[3].name.length, 80)
})

test('a remote awareness state keeps only a checked user and a well-shaped cursor (SECURITY-CASES 34)', () => {
  const hostile = {
    user: { name: '  Mallory  ', color: 'red;position:fixed;inset:0', colorLight: 'url(x)' },
    cursor: { anchor: { assoc: 0 }, head: { assoc: 0 } },
    extra: { big: 'x'.repeat(1000) }
  }
  assert.deepEqual(safeRemoteState(hostile), {
    user: { name: 'Mallory', color: FALLBACK_COLOR, colorLight: `${FALLBACK_COLOR}33` },
    cursor: { anchor: { assoc: 0 }, head: { assoc: 0 } }
  })
  assert.deepEqual(safeRemoteState({ user: { name: 'Ana', color: '#0b57d0' }, cursor: 'nonsense' }),
    { user: { name: 'Ana', color: '#0b57d0', colorLight: '#0b57d033' } })
  assert.equal(safeRemoteState(null), null)
  assert.equal(safeRemoteState('text'), null)
})

test('one person open in several tabs is one participant; states without an account id stay one each', () => {
  const states = new Map([
    [11, { user: { name: 'Chiara Chair', color: '#aa0000', id: 2 } }],
    [12, { user: { name: 'Chiara Chair', color: '#aa0000', id: 2 } }],
    [13, { user: { name: 'Olga Office', color: '#0000aa', id: 1 } }],
    [20, { user: { name: 'Olga Office', color: '#0000aa', id: 1 } }],
    [30, { user: { name: 'Legacy', color: '#00aa00' } }],
    [31, { user: { name: 'Legacy', color: '#00aa00', id: 'x' } }]
  ])
  const list = participants(states, 20)
  assert.deepEqual(list.map((p) => [p.name, p.clientId, p.isSelf, p.tabs, p.account]), [
    ['Olga Office', 20, true, 2, 1],
    ['Chiara Chair', 11, false, 2, 2],
    ['Legacy', 30, false, 1, null],
    ['Legacy', 31, false, 1, null]
  ])
})

test('a suggester present in the clause is named from presence; an absent one is not guessed', () => {
  const states = new Map([
    [5, { user: { name: '  Piotr Provider ', color: '#123abc', id: 7 } }],
    [6, { user: { name: 'No id', color: '#123abc' } }]
  ])
  assert.deepEqual(presentAuthor(states, 7), { name: 'Piotr Provider', color: '#123abc' })
  assert.equal(presentAuthor(states, 8), null)
  assert.equal(presentAuthor(new Map(), 7), null)
})

test('a remote state keeps an account id only if it is one the server could have stamped', () => {
  assert.deepEqual(safeRemoteState({ user: { name: 'Ana', color: '#0b57d0', id: 42 } }),
    { user: { name: 'Ana', color: '#0b57d0', colorLight: '#0b57d033', id: 42 } })
  for (const bad of [-1, 2 ** 31, 1.5, NaN, Infinity, '42', null, { valueOf: () => 1 }, [1]]) {
    assert.equal('id' in safeRemoteState({ user: { name: 'Ana', color: '#0b57d0', id: bad } }).user, false, String(bad))
  }
})
