/**
 * The low-speed limit on node:http exchanges (transport.ts), both directions,
 * against raw servers on 127.0.0.1: a request body the server stops taking and
 * an answer body that trickles are abandoned after low_speed_time; the wait for
 * an answer to begin and an answer the plugin itself is slow to read are not.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { PluginConfig } from '../../src/config/types.js';
import type { Target } from '../../src/storage/s3/endpoint.js';
import { Transport } from '../../src/storage/s3/transport.js';

/** What the server does with the next connection. */
let behaviour: (socket: Socket) => void = () => {};
let server: Server;
let target: Target;
const sockets = new Set<Socket>();

before(async () => {
  server = createServer(socket => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    behaviour(socket);
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  target = { https: false, hostname: '127.0.0.1', port, host: `127.0.0.1:${port}`, path: '/b/k' };
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>(r => server.close(() => r()));
});

const pause = (ms: number) => new Promise(r => setTimeout(r, ms));
const LIMIT = { lowSpeedLimit: 1024, lowSpeedTimeMs: 1000 };

async function transport(): Promise<Transport> {
  return Transport.create({ connectTimeoutMs: 2000, requestTimeoutMs: 30_000, ...LIMIT } as PluginConfig, 4);
}

/** Calls `then` once the request's head and `bodyBytes` of its body have arrived. */
function afterRequest(socket: Socket, bodyBytes: number, then: () => void): void {
  let seen = Buffer.alloc(0);
  const onData = (d: Buffer) => {
    seen = Buffer.concat([seen, d]);
    const end = seen.indexOf('\r\n\r\n');
    if (end >= 0 && seen.length - end - 4 >= bodyBytes) {
      socket.off('data', onData);
      then();
    }
  };
  socket.on('data', onData);
}

const ok = (socket: Socket, body = 'done') => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);

test('a request body the server stops taking is abandoned after low_speed_time', async () => {
  behaviour = socket => socket.pause(); // reads nothing: the kernel's buffers fill, then nothing moves
  const t = await transport();
  const started = Date.now();
  await assert.rejects(
    t.send({ method: 'PUT', target, query: {}, headers: { host: target.host, 'content-length': String(64 << 20) }, body: Buffer.alloc(64 << 20) }, ''),
    /moved less than 1024 bytes a second for 1 s \(low_speed_limit, low_speed_time\)/,
  );
  assert.ok(Date.now() - started < 10_000);
  t.destroy();
});

/** Answers the next request with `head`, then `piece` every 200 ms, 20 times at the most. */
function trickle(head: string, piece: string): (socket: Socket) => void {
  return socket =>
    afterRequest(socket, 0, async () => {
      socket.write(head);
      for (let i = 0; i < 20 && !socket.destroyed; i++) {
        socket.write(piece);
        await pause(200);
      }
    });
}

/** Reads `body` to its end, which must fail for the low-speed limit. */
async function rejectsAsLowSpeed(body: AsyncIterable<unknown>): Promise<void> {
  await assert.rejects(
    (async () => {
      for await (const _ of body) {
        // read on
      }
    })(),
    /moved less than 1024 bytes a second for 1 s/,
  );
}

test('an answer body that trickles is abandoned; its reader gets the reason', async () => {
  behaviour = trickle('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', 'x');
  const t = await transport();
  const res = await t.send({ method: 'GET', target, query: {}, headers: { host: target.host } }, '');
  await rejectsAsLowSpeed(res);
  t.destroy();
});

test('the wait for an answer to begin, and an answer the caller is slow to read, are not low speed', async () => {
  // The server takes the whole body, thinks for 2.5 s (request_timeout's concern), then answers.
  behaviour = socket => afterRequest(socket, 100_000, () => setTimeout(() => ok(socket, 'x'.repeat(200_000)), 2500));
  const t = await transport();
  const res = await t.send({ method: 'PUT', target, query: {}, headers: { host: target.host, 'content-length': '100000' }, body: Buffer.alloc(100_000) }, '');
  assert.equal(res.statusCode, 200);
  await pause(2500); // the caller does not read yet: the bytes wait in its buffers
  let got = 0;
  for await (const chunk of res) got += (chunk as Buffer).length;
  assert.equal(got, 200_000);
  t.destroy();
});

test('a direct GET whose answer node:http reads instead (chunked) is held to the limit too', async () => {
  behaviour = trickle('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '1\r\nx\r\n');
  const t = await transport();
  const started = Date.now();
  const res = await t.sendDirect({ method: 'GET', target, query: {}, headers: { host: target.host } }, '');
  assert.ok(!('fill' in res), 'the chunked answer is read by node:http');
  await rejectsAsLowSpeed(res as AsyncIterable<Buffer>);
  assert.ok(Date.now() - started < 3500);
  t.destroy();
});
