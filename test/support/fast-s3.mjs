// A fast in-memory S3 stand-in, for benchmarks only (scripts/bench.mjs): s3rver and moto_server
// are slower than the plugin, so against them a benchmark measures the server. This one keeps
// objects in memory and answers the few path-style requests the plugin makes: PUT, GET (with
// Range), HEAD, DELETE of an object; multipart create/part/complete/abort/list; ListObjectsV2;
// multi-object delete; HEAD and GET ?location of a bucket; GET /__requests counts the requests. It checks no signature and no body
// checksum (it trusts the x-amz-checksum-crc32 a client sends and echoes it, as AWS echoes the
// checksums it validated, so the plugin takes the fast path it takes on AWS): never use it to
// test correctness.
//
//   node test/support/fast-s3.mjs [port]   prints "listening <port>" and serves until killed.
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';

/** bucket -> key -> { data, etag, crc, meta, checksumType } */
const buckets = new Map();
/** uploadId -> { bucket, key, parts: Map<number, Buffer>, meta } */
const uploads = new Map();
let nextUpload = 1;

const xml = body => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
const esc = s => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function send(res, status, body = '', headers = {}) {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-length': buf.length, ...headers });
  res.end(buf);
}

function error(res, status, code, method) {
  if (method === 'HEAD') return send(res, status);
  send(res, status, xml(`<Error><Code>${code}</Code><Message>${code}</Message></Error>`), { 'content-type': 'application/xml' });
}

function readBody(req) {
  const len = Number(req.headers['content-length'] ?? -1);
  return new Promise((resolve, reject) => {
    if (len >= 0) {
      // One buffer of the announced length: no chunk list, no concat.
      const buf = Buffer.allocUnsafe(len);
      let at = 0;
      req.on('data', c => {
        c.copy(buf, at);
        at += c.length;
      });
      req.on('end', () => resolve(buf.subarray(0, at)));
    } else {
      const chunks = [];
      req.on('data', c => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
    }
    req.on('error', reject);
  });
}

function userMeta(headers) {
  const meta = {};
  for (const [k, v] of Object.entries(headers)) if (k.startsWith('x-amz-meta-')) meta[k] = v;
  return meta;
}

/** The client's CRC-32 handed back, as AWS answers a PUT or UploadPart whose checksum it validated. */
function echoChecksum(req) {
  const crc = req.headers['x-amz-checksum-crc32'];
  return crc ? { 'x-amz-checksum-crc32': crc } : {};
}

function crcXml(req) {
  const crc = req.headers['x-amz-checksum-crc32'];
  return crc ? `<ChecksumCRC32>${esc(crc)}</ChecksumCRC32><ChecksumType>FULL_OBJECT</ChecksumType>` : '';
}

function objectHeaders(obj, withChecksum) {
  const h = { etag: obj.etag, 'last-modified': obj.modified, 'accept-ranges': 'bytes', ...obj.meta };
  if (withChecksum && obj.crc) {
    h['x-amz-checksum-crc32'] = obj.crc;
    h['x-amz-checksum-type'] = obj.checksumType;
  }
  return h;
}

/** Requests served, by method, since the last GET /__requests (which answers them as JSON and starts again). */
let requests = {};

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const q = url.searchParams;
  const path = decodeURIComponent(url.pathname).slice(1);
  if (path === '__requests') {
    const counted = requests;
    requests = {};
    return send(res, 200, JSON.stringify(counted));
  }
  requests[req.method] = (requests[req.method] ?? 0) + 1;
  const slash = path.indexOf('/');
  const bucketName = slash < 0 ? path : path.slice(0, slash);
  const key = slash < 0 ? '' : path.slice(slash + 1);
  const method = req.method;
  let bucket = buckets.get(bucketName);

  if (!key) {
    if (method === 'PUT') {
      await readBody(req);
      if (!bucket) buckets.set(bucketName, new Map());
      return send(res, 200);
    }
    if (!bucket) return error(res, 404, 'NoSuchBucket', method);
    if (method === 'HEAD') return send(res, 200, '', { 'x-amz-bucket-region': 'us-east-1' });
    if (method === 'GET' && q.has('location')) return send(res, 200, xml('<LocationConstraint/>'));
    if (method === 'GET' && q.has('uploads')) {
      const prefix = q.get('prefix') ?? '';
      const items = [...uploads.entries()]
        .filter(([, u]) => u.bucket === bucketName && u.key.startsWith(prefix))
        .map(([id, u]) => `<Upload><Key>${esc(u.key)}</Key><UploadId>${id}</UploadId></Upload>`);
      return send(res, 200, xml(`<ListMultipartUploadsResult><Bucket>${bucketName}</Bucket>${items.join('')}<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`));
    }
    if (method === 'GET') {
      const prefix = q.get('prefix') ?? '';
      const keys = [...bucket.keys()].filter(k => k.startsWith(prefix)).sort();
      const items = keys.map(k => `<Contents><Key>${esc(k)}</Key><Size>${bucket.get(k).data.length}</Size><ETag>${esc(bucket.get(k).etag)}</ETag></Contents>`);
      return send(res, 200, xml(`<ListBucketResult><Name>${bucketName}</Name><Prefix>${esc(prefix)}</Prefix><KeyCount>${keys.length}</KeyCount><IsTruncated>false</IsTruncated>${items.join('')}</ListBucketResult>`));
    }
    if (method === 'POST' && q.has('delete')) {
      const body = (await readBody(req)).toString();
      for (const m of body.matchAll(/<Key>([^<]*)<\/Key>/g)) bucket.delete(m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
      return send(res, 200, xml('<DeleteResult/>'));
    }
    return error(res, 405, 'MethodNotAllowed', method);
  }
  if (!bucket) return error(res, 404, 'NoSuchBucket', method);

  if (method === 'PUT' && q.has('uploadId')) {
    const u = uploads.get(q.get('uploadId'));
    if (!u) return error(res, 404, 'NoSuchUpload', method);
    const data = await readBody(req);
    u.parts.set(Number(q.get('partNumber')), data);
    return send(res, 200, '', { etag: `"p${q.get('partNumber')}-${data.length}"`, ...echoChecksum(req) });
  }
  if (method === 'PUT') {
    const data = await readBody(req);
    const etag = `"${createHash('md5').update(data).digest('hex')}"`;
    bucket.set(key, { data, etag, crc: req.headers['x-amz-checksum-crc32'], checksumType: 'FULL_OBJECT', meta: userMeta(req.headers), modified: new Date().toUTCString() });
    return send(res, 200, '', { etag, ...echoChecksum(req) });
  }
  if (method === 'POST' && q.has('uploads')) {
    await readBody(req);
    const id = String(nextUpload++);
    uploads.set(id, { bucket: bucketName, key, parts: new Map(), meta: userMeta(req.headers) });
    return send(res, 200, xml(`<InitiateMultipartUploadResult><Bucket>${bucketName}</Bucket><Key>${esc(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`));
  }
  if (method === 'POST' && q.has('uploadId')) {
    const id = q.get('uploadId');
    const u = uploads.get(id);
    if (!u) return error(res, 404, 'NoSuchUpload', method);
    const body = (await readBody(req)).toString();
    const numbers = [...body.matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map(m => Number(m[1]));
    if (numbers.some(n => !u.parts.has(n))) return error(res, 400, 'InvalidPart', method);
    const data = Buffer.concat(numbers.map(n => u.parts.get(n)));
    const etag = `"${id.padStart(32, '0')}-${numbers.length}"`;
    uploads.delete(id);
    bucket.set(key, { data, etag, crc: req.headers['x-amz-checksum-crc32'], checksumType: 'FULL_OBJECT', meta: u.meta, modified: new Date().toUTCString() });
    return send(res, 200, xml(`<CompleteMultipartUploadResult><Bucket>${bucketName}</Bucket><Key>${esc(key)}</Key><ETag>${esc(etag)}</ETag>${crcXml(req)}</CompleteMultipartUploadResult>`));
  }
  if (method === 'DELETE' && q.has('uploadId')) {
    uploads.delete(q.get('uploadId'));
    return send(res, 204);
  }
  if (method === 'DELETE') {
    bucket.delete(key);
    return send(res, 204);
  }
  const obj = bucket.get(key);
  if (!obj) return error(res, 404, 'NoSuchKey', method);
  const withChecksum = req.headers['x-amz-checksum-mode'] === 'ENABLED';
  if (method === 'HEAD') {
    res.writeHead(200, { 'content-length': obj.data.length, ...objectHeaders(obj, withChecksum) });
    return res.end();
  }
  if (method === 'GET') {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!range) return send(res, 200, obj.data, objectHeaders(obj, withChecksum));
    const size = obj.data.length;
    const start = Number(range[1]);
    const end = Math.min(range[2] ? Number(range[2]) : size - 1, size - 1);
    if (start >= size) return error(res, 416, 'InvalidRange', method);
    return send(res, 206, obj.data.subarray(start, end + 1), { ...objectHeaders(obj, withChecksum), 'content-range': `bytes ${start}-${end}/${size}` });
  }
  return error(res, 405, 'MethodNotAllowed', method);
}

/** Starts the server on 127.0.0.1:port (0: any); resolves with { port, close() }. */
export function startFastS3(port = 0) {
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    handle(req, res).catch(err => {
      if (!res.headersSent) error(res, 500, 'InternalError', req.method);
      else res.destroy(err);
    });
  });
  return new Promise(resolve =>
    server.listen(port, '127.0.0.1', () =>
      resolve({ port: server.address().port, close: () => new Promise(r => { server.closeAllConnections(); server.close(() => r()); }) }),
    ),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await startFastS3(Number(process.argv[2] ?? 0));
  process.stdout.write(`listening ${port}\n`);
}
