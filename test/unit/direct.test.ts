/**
 * The direct GET path (src/storage/s3/direct.ts) against a raw TCP server on
 * 127.0.0.1 that answers byte for byte as told: answers split anywhere, bodies
 * arriving with the headers, keep-alive reuse, early closes, answers refused
 * for node:http (errors, chunked, HTTP/1.0), and bytes beyond the answer.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { crc32 } from '../../src/storage/crc32.js';
import { DirectFallback, DirectGetter } from '../../src/storage/s3/direct.js';
import type { Target } from '../../src/storage/s3/endpoint.js';

/** What the server does with the next connection's requests: a list of writes per request. */
let script: Array<(socket: Socket) => Promise<void>> = [];
let connections = 0;
let server: Server;
let target: Target;

before(async () => {
  server = createServer(socket => {
    connections++;
    let pending = '';
    socket.on('data', async d => {
      pending += d.toString('latin1');
      while (pending.includes('\r\n\r\n')) {
        pending = pending.slice(pending.indexOf('\r\n\r\n') + 4);
        const step = script.shift();
        if (step) await step(socket);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  target = { https: false, hostname: '127.0.0.1', port, host: `127.0.0.1:${port}`, path: '/b/k' };
});

after(() => new Promise<void>(r => server.close(() => r())));

const pause = (ms: number) => new Promise(r => setTimeout(r, ms));
const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) & 255));

/** Bytes of `parts` in order (strings as latin1: one byte a character). */
const bytes = (...parts: Array<string | Buffer>) => Buffer.concat(parts.map(p => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));

/** Writes `parts` one after another with a pause between, as a slow network would. */
function answer(...parts: Array<string | Buffer>) {
  return async (socket: Socket) => {
    for (const p of parts) {
      socket.write(bytes(p));
      await pause(5);
    }
  };
}

const head = (status: string, headers: Record<string, string | number>) =>
  `HTTP/1.1 ${status}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

test('a body split anywhere, partly with the headers, lands whole in the buffer, with its CRC-32; the socket is reused', async () => {
  const getter = new DirectGetter(2000, 2000);
  const start = connections;
  const h = head('206 Partial Content', { 'Content-Length': body.length, 'Content-Range': `bytes 0-${body.length - 1}/${body.length}`, ETag: '"x-3"' });
  for (let round = 0; round < 2; round++) {
    script.push(answer(h.slice(0, 10), bytes(h.slice(10), body.subarray(0, 1000)), body.subarray(1000, 70_000), body.subarray(70_000)));
    const res = await getter.get(target, '/b/k', { host: target.host, range: 'bytes=0-199999' });
    assert.equal(res.statusCode, 206);
    assert.equal(res.headers.etag, '"x-3"');
    const into = Buffer.alloc(body.length + 10);
    const got = await res.fill(into, 10, body.length, 0);
    assert.equal(got.error, undefined);
    assert.equal(got.filled, body.length + 10);
    assert.ok(into.subarray(10).equals(body));
    assert.equal(got.crc, crc32(body));
  }
  assert.equal(connections - start, 1, 'the second GET reused the first socket');
  getter.destroy();
});

test('a connection closed mid-body: fill stops where the bytes stopped and says why', async () => {
  const getter = new DirectGetter(2000, 2000);
  script.push(async socket => {
    socket.write(bytes(head('200 OK', { 'Content-Length': body.length }), body.subarray(0, 5000)));
    await pause(10);
    socket.end();
  });
  const res = await getter.get(target, '/b/k', { host: target.host });
  const into = Buffer.alloc(body.length);
  const got = await res.fill(into, 0, body.length, 0);
  assert.equal(got.filled, 5000);
  assert.ok(got.error);
  assert.ok(into.subarray(0, 5000).equals(body.subarray(0, 5000)));
  getter.destroy();
});

test('a stalled body times out', async () => {
  const getter = new DirectGetter(2000, 300);
  script.push(answer(head('200 OK', { 'Content-Length': 10 }) + 'abc'));
  const res = await getter.get(target, '/b/k', { host: target.host });
  const got = await res.fill(Buffer.alloc(10), 0, 10, 0);
  assert.equal(got.filled, 3);
  assert.match(String(got.error?.message), /^no answer from 127\.0\.0\.1:\d+ for 0\.3 s$/);
  getter.destroy();
});

test('answers it cannot read exactly (errors, chunked, HTTP/1.0) are refused before any body byte, for node:http to read', async () => {
  const getter = new DirectGetter(2000, 2000);
  const xml = '<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>';
  script.push(answer(head('404 Not Found', { 'Content-Length': xml.length }), xml));
  await assert.rejects(getter.get(target, '/b/k', { host: target.host }), (err: Error) => err instanceof DirectFallback && /status 404/.test(err.message));
  script.push(answer(head('200 OK', { 'Transfer-Encoding': 'chunked' }), '3\r\nabc\r\n0\r\n\r\n'));
  await assert.rejects(getter.get(target, '/b/k', { host: target.host }), /Transfer-Encoding: chunked/);
  script.push(answer('HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc'));
  await assert.rejects(getter.get(target, '/b/k', { host: target.host }), /HTTP\/1\.0/);
  getter.destroy();
});

test('bytes beyond the announced body in the read that ends it fail the answer (as node:http) and end that socket; an answer that is not HTTP fails the exchange', async () => {
  const getter = new DirectGetter(2000, 2000);
  script.push(answer(head('200 OK', { 'Content-Length': 3 }) + 'abcdef'));
  const before = connections;
  const res = await getter.get(target, '/b/k', { host: target.host });
  const into = Buffer.alloc(6);
  const got = await res.fill(into, 0, 3, 0);
  assert.match(String(got.error?.message), /more bytes than its answer announced/);
  assert.ok(got.filled <= 3, 'nothing past Content-Length');
  assert.equal(into.subarray(got.filled).toString(), '\0'.repeat(6 - got.filled));
  script.push(answer(head('200 OK', { 'Content-Length': 2 }) + 'ok'));
  const next = await getter.get(target, '/b/k', { host: target.host });
  assert.equal((await next.fill(Buffer.alloc(2), 0, 2, 0)).filled, 2);
  assert.equal(connections - before, 2, 'the out-of-step socket was not reused');

  script.push(answer('SSH-2.0-OpenSSH\r\n\r\n'));
  await assert.rejects(getter.get(target, '/b/k', { host: target.host }), /not an HTTP answer/);
  getter.destroy();
});

test('a refused connection and an abort', async () => {
  const getter = new DirectGetter(2000, 2000);
  const closed = { ...target, port: 9, host: '127.0.0.1:9' };
  await assert.rejects(getter.get(closed, '/b/k', { host: closed.host }), /connection refused/);
  script.push(async () => {}); // never answers
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('interrupted by SIGTERM')), 50);
  await assert.rejects(getter.get(target, '/b/k', { host: target.host }, ac.signal), /SIGTERM/);
  getter.destroy();
});
