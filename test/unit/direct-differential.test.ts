/**
 * The direct GET path (direct.ts, through Transport.sendDirect as S3Store uses
 * it) against node:http's parser, the reference it stands in for: the same
 * recorded answers, each written by a local server split at every byte
 * boundary (and once a byte per write), are read by both. The direct path must
 * give node:http's status and bytes, either itself or by handing the answer
 * it received to node:http's parser; where node:http fails, it must fail too,
 * having delivered no byte node:http would not have.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { PluginConfig } from '../../src/config/types.js';
import { DirectResponse } from '../../src/storage/s3/direct.js';
import type { Target } from '../../src/storage/s3/endpoint.js';
import { Transport } from '../../src/storage/s3/transport.js';

interface Recorded {
  name: string;
  bytes: Buffer;
  /** The server closes the connection after the answer. */
  close: boolean;
  /** How the direct path must take it: read itself, or hand to node:http. */
  expect: 'direct' | 'fallback';
  /** The body bytes sent, when node:http fails on them. */
  sent?: Buffer;
  /** For bytes after the body: the body announced. */
  stray?: Buffer;
}

const body = Buffer.from('0123456789abcdef');
const xml = '<Error><Code>SignatureDoesNotMatch</Code><Message>bad signature</Message></Error>';
const raw = (...parts: Array<string | Buffer>) => Buffer.concat(parts.map(p => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
const chunked = (...chunks: string[]) => chunks.map(c => `${c.length.toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n';
const ranged = `Content-Length: 16\r\nContent-Range: bytes 0-15/100\r\n`;

const RECORDED: Recorded[] = [
  { name: '206 with a body', bytes: raw(`HTTP/1.1 206 Partial Content\r\n${ranged}\r\n`, body), close: false, expect: 'direct' },
  { name: '200 with a body', bytes: raw('HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n', body), close: false, expect: 'direct' },
  { name: '200 without a body', bytes: raw('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), close: false, expect: 'direct' },
  { name: '206 of one byte', bytes: raw('HTTP/1.1 206 Partial Content\r\nContent-Length: 1\r\nContent-Range: bytes 0-0/1\r\n\r\nz'), close: false, expect: 'direct' },
  {
    name: '206 with Connection: close',
    bytes: raw(`HTTP/1.1 206 Partial Content\r\n${ranged}Connection: close\r\n\r\n`, body),
    close: true,
    expect: 'direct',
  },
  {
    name: 'chunked data',
    bytes: raw('HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-15/100\r\nTransfer-Encoding: chunked\r\n\r\n', chunked('01234', '56789abcdef')),
    close: false,
    expect: 'fallback',
  },
  {
    name: 'chunked error XML',
    bytes: raw('HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n', chunked(xml.slice(0, 30), xml.slice(30))),
    close: false,
    expect: 'fallback',
  },
  {
    name: 'error XML with a length',
    bytes: raw(`HTTP/1.1 404 Not Found\r\nContent-Length: ${xml.length}\r\n\r\n`, xml),
    close: false,
    expect: 'fallback',
  },
  {
    name: '100 Continue before the answer',
    bytes: raw('HTTP/1.1 100 Continue\r\n\r\n', `HTTP/1.1 206 Partial Content\r\n${ranged}\r\n`, body),
    close: false,
    expect: 'direct',
  },
  { name: 'HTTP/1.0, body until close', bytes: raw('HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n', body), close: true, expect: 'fallback' },
  { name: 'HTTP/1.0 with a length', bytes: raw('HTTP/1.0 200 OK\r\nContent-Length: 16\r\n\r\n', body), close: true, expect: 'fallback' },
  { name: 'short body', bytes: raw(`HTTP/1.1 206 Partial Content\r\n${ranged}\r\n`, body.subarray(0, 10)), close: true, expect: 'direct', sent: body.subarray(0, 10) },
  // Split at every boundary, the extra bytes come in the read that holds the headers too.
  { name: 'long body (extra bytes)', bytes: raw(`HTTP/1.1 206 Partial Content\r\n${ranged}\r\n`, body, 'EXTRA!!!'), close: true, expect: 'direct', sent: body, stray: body },
  { name: 'bad Content-Length', bytes: raw('HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n', body), close: true, expect: 'fallback' },
  {
    name: 'two Content-Lengths',
    bytes: raw('HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Length: 10\r\n\r\n', body),
    close: true,
    expect: 'fallback',
  },
  {
    name: 'Content-Range disagreeing with Content-Length',
    bytes: raw('HTTP/1.1 206 Partial Content\r\nContent-Length: 16\r\nContent-Range: bytes 0-9/100\r\n\r\n', body),
    close: false,
    expect: 'fallback',
  },
  {
    name: 'Content-Encoding gzip',
    bytes: raw('HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 16\r\n\r\n', body),
    close: false,
    expect: 'fallback',
  },
];

/** Every way to cut `bytes` in two, the whole, and one byte a write. */
function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [[bytes]];
  for (let k = 1; k < bytes.length; k++) out.push([bytes.subarray(0, k), bytes.subarray(k)]);
  out.push(Array.from(bytes, b => Buffer.from([b])));
  return out;
}

const SPLITS = RECORDED.map(r => splits(r.bytes));
let server: Server;
let port: number;
const sockets = new Set<Socket>();

const nextTurn = () => new Promise<void>(r => setImmediate(r));

/** The server answers GET /<record>/<split> with that record's bytes cut so, one piece a turn of the event loop. */
before(async () => {
  server = createServer(socket => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    let pending = '';
    let busy = Promise.resolve();
    socket.on('data', d => {
      pending += d.toString('latin1');
      while (pending.includes('\r\n\r\n')) {
        const [, r, k] = /^GET \/(\d+)\/(\d+) /.exec(pending)!;
        pending = pending.slice(pending.indexOf('\r\n\r\n') + 4);
        const rec = RECORDED[Number(r)]!;
        const pieces = SPLITS[Number(r)]![Number(k)]!;
        busy = busy.then(async () => {
          // A piece a turn: the reader sees each piece in a read of its own.
          for (const p of pieces) {
            if (socket.destroyed) return;
            socket.write(p);
            await nextTurn();
          }
          if (rec.close) socket.end();
        });
      }
    });
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>(r => server.close(() => r()));
});

const targetFor = (path: string): Target => ({ https: false, hostname: '127.0.0.1', port, host: `127.0.0.1:${port}`, path });

interface Outcome {
  ok: boolean;
  status?: number;
  body: Buffer;
}

/** Reads a node:http answer to its end; ok only if it ended cleanly. */
async function readAnswer(res: IncomingMessage): Promise<Outcome> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    return { ok: res.complete, status: res.statusCode, body: Buffer.concat(chunks) };
  } catch {
    return { ok: false, status: res.statusCode, body: Buffer.concat(chunks) };
  }
}

/** node:http alone, on a connection of its own. */
function reference(path: string): Promise<Outcome> {
  return new Promise(resolve => {
    const r = httpRequest({ host: '127.0.0.1', port, path, agent: false, headers: { range: 'bytes=0-15' } });
    r.on('error', () => resolve({ ok: false, body: Buffer.alloc(0) }));
    r.on('response', res => void readAnswer(res).then(resolve));
    r.end();
  });
}

/** The Transport S3Store uses, and which answers it handed to node:http. */
async function makeTransport(): Promise<{ transport: Transport; fellBack: Set<string> }> {
  const config = { connectTimeoutMs: 2000, requestTimeoutMs: 2000, lowSpeedLimit: 0, lowSpeedTimeMs: 60_000 } as PluginConfig;
  const transport = await Transport.create(config, 64);
  const fellBack = new Set<string>();
  const readFallback = transport.readFallback.bind(transport);
  transport.readFallback = (fallback, req, path) => {
    fellBack.add(req.target.path);
    return readFallback(fallback, req, path);
  };
  return { transport, fellBack };
}

/** The direct path as S3Store.getRange takes it: a DirectResponse is filled with its Content-Length's bytes. */
async function direct(transport: Transport, path: string): Promise<Outcome> {
  const target = targetFor(path);
  let res: DirectResponse | IncomingMessage;
  try {
    res = await transport.sendDirect({ method: 'GET', target, query: {}, headers: { host: target.host, range: 'bytes=0-15' } }, '');
  } catch {
    return { ok: false, body: Buffer.alloc(0) };
  }
  if (!(res instanceof DirectResponse)) return readAnswer(res);
  const length = Number(res.headers['content-length']);
  // Room for more than announced: a reader that ran past Content-Length would show it.
  const into = Buffer.alloc(length + 64);
  const got = await res.fill(into, 0, length, 0);
  return { ok: !got.error, status: res.statusCode, body: into.subarray(0, got.filled) };
}

/** Runs `fn` over `items`, `width` at a time. */
async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

RECORDED.forEach((rec, r) => {
  test(`${rec.name}: the direct path gives node:http's result at every split`, async () => {
    const { transport, fellBack } = await makeTransport();
    try {
      await inBatches([...SPLITS[r]!.keys()], 32, async k => {
        const path = `/${r}/${k}`;
        const where = `${rec.name}, split ${SPLITS[r]![k]!.map(p => p.length).join('+')}`;
        const [ref, got] = await Promise.all([reference(path), direct(transport, path)]);
        assert.equal(fellBack.has(path) ? 'fallback' : 'direct', rec.expect, `${where}: taken as it should`);
        if (ref.ok) {
          assert.ok(got.ok, `${where}: node:http read it, the direct path failed`);
          assert.equal(got.status, ref.status, where);
          assert.deepEqual(got.body, ref.body, where);
        } else if (got.ok && rec.stray) {
          // node:http fails when the stray bytes come in the read that ends the body; the direct
          // reader, whose last read is cut at Content-Length, may see them only after: it then
          // delivered exactly the announced body, and dropped the socket.
          assert.deepEqual(got.body, rec.stray, where);
        } else {
          assert.ok(!got.ok, `${where}: node:http failed, the direct path did not`);
          // What it delivered before failing is a part of what was sent as the body.
          assert.deepEqual(got.body, (rec.sent ?? ref.body).subarray(0, got.body.length), where);
        }
      });
    } finally {
      transport.destroy();
    }
  });
});

test('the recorded answers cover what they should: node:http reads them as the S3 client relies on', async () => {
  const whole = (name: string) => reference(`/${RECORDED.findIndex(r => r.name === name)}/0`);
  assert.deepEqual((await whole('chunked data')).body, body);
  const err = await whole('chunked error XML');
  assert.equal(err.status, 403);
  assert.equal(err.body.toString(), xml);
  assert.equal((await whole('short body')).ok, false);
  assert.equal((await whole('bad Content-Length')).ok, false);
  assert.equal((await whole('long body (extra bytes)')).ok, false);
  assert.deepEqual((await whole('HTTP/1.0, body until close')).body, body);
});
