'use strict';
/**
 * Starts s3rver (the npm package, a filesystem-backed S3 server) on 127.0.0.1
 * and prints `listening <port>` once it accepts requests.
 *
 * s3rver 3.7 implements neither AbortMultipartUpload nor ListMultipartUploads,
 * which the plugin uses to leave no orphaned upload behind and the tests use to
 * prove it. Both are added here as Koa middleware over s3rver's own upload
 * store (`<dir>/<bucket>/.../uploads/<id>/`), so they act on the real parts.
 *
 * Nor does s3rver implement S3's flexible checksums: it ignores their headers,
 * so an object would keep no checksum. The CRC32 kind is added here (see
 * flexibleChecksums below), as AWS S3 behaves:
 * - PutObject with `x-amz-checksum-crc32`: the CRC-32 of the bytes stored is
 *   checked against it (mismatch: 400 BadDigest and the object is removed;
 *   s3rver writes in place, so unlike AWS an older object at that key is gone
 *   too), kept with the object and echoed in the response.
 * - CreateMultipartUpload with `x-amz-checksum-algorithm: CRC32` and
 *   `x-amz-checksum-type: FULL_OBJECT` (s3rver already keeps the request's
 *   headers with the upload): every part of such an upload gets its CRC-32
 *   computed and kept, and checked against `x-amz-checksum-crc32` when the
 *   part carries one (400 BadDigest, part discarded).
 * - CompleteMultipartUpload: each `<ChecksumCRC32>` listed must match its part
 *   (400 InvalidPart); the object's CRC-32 is combined from the parts' and
 *   checked against the `x-amz-checksum-crc32` header (400 BadDigest; the
 *   upload is left as it was), then kept with the object and returned.
 * - HeadObject, and GetObject without Range, with `x-amz-checksum-mode:
 *   ENABLED` answer `x-amz-checksum-crc32` and `x-amz-checksum-type:
 *   FULL_OBJECT` for an object that has one.
 * - CopyObject gives the copy the source's checksum (same bytes).
 * And a multipart object gets AWS's kind of ETag, `"<md5 of the parts' MD5s>-<parts>"`
 * (s3rver gives it the MD5 of its bytes), by which clients tell a multipart
 * object, whose checksum only a HEAD tells, from a single PUT's.
 * The checksum lives in the object's metadata.json, which s3rver rewrites on
 * every PutObject and CompleteMultipartUpload and removes with the object, so
 * no stale checksum outlives the bytes it describes. Bytes are hashed once, as
 * they arrive. Other algorithms, the COMPOSITE type and trailing (aws-chunked)
 * checksums are refused with 501 rather than silently ignored.
 *
 * Nor does s3rver say anything of server-side encryption. AWS confirms it in the answers to
 * PutObject, CreateMultipartUpload, UploadPart and CompleteMultipartUpload with
 * `x-amz-server-side-encryption` (and the KMS key's header); so does this server (see
 * sseAnswers below), for the requests (or the upload) that asked for it. It encrypts nothing.
 *
 * Must run with --openssl-legacy-provider: s3rver's ListObjectsV2 continuation
 * tokens use a cipher OpenSSL 3 only has in its legacy provider.
 *
 * Usage: node --openssl-legacy-provider s3rver-main.cjs <directory> [port]
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { Readable, Transform } = require('node:stream');
const { crc32 } = require('node:zlib');
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');
const S3Error = require('s3rver/lib/models/error');
// The XML parser s3rver itself reads CompleteMultipartUpload bodies with.
const xmlParser = require(require.resolve('fast-xml-parser', { paths: [path.dirname(require.resolve('s3rver'))] }));

// s3rver's only key pair is S3RVER/S3RVER, whose secret equals its key ID: a test that greps the
// plugin's output for the secret could not tell one from the other. This pair can (s3server.ts).
DUMMY_ACCOUNT.createKeyPair('GPBTESTACCESSKEY', 'gpb-Test/Secret+Key-do-not-print-0123456789');

const [directory, portArg] = process.argv.slice(2);
if (!directory) {
  process.stderr.write('usage: s3rver-main.cjs <directory> [port]\n');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(portArg || 0),
  silent: true,
  directory,
});

function uploadsDir(bucket) {
  return server.store.getResourcePath(bucket, undefined, 'uploads');
}

function xmlEscape(s) {
  return s.replace(/[<>&'"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);
}

async function multipartExtensions(ctx, next) {
  const match = /^\/([^/]+)\/?(.*)$/.exec(ctx.path);
  if (!match) return next();
  const [, bucket, key] = match;
  if (ctx.method === 'DELETE' && key && ctx.query.uploadId !== undefined) {
    const id = String(ctx.query.uploadId);
    const dir = path.join(uploadsDir(bucket), path.basename(id));
    // A folder without its key is an upload already aborted (see below).
    if (!fs.existsSync(path.join(dir, 'key'))) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    // A part being written now would find its folder gone (s3rver's write stream then fails
    // unhandled and the server exits): only the key goes now, which refuses any further part, and
    // the folder once the last part in flight has ended.
    const writing = partsInFlight.get(id);
    if (writing) {
      fs.rmSync(path.join(dir, 'key'));
      writing.thenRemove = dir;
    } else {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    ctx.status = 204;
    return;
  }
  if (ctx.method === 'GET' && !key && ctx.query.uploads !== undefined) {
    const root = uploadsDir(bucket);
    const ids = fs.existsSync(root) ? fs.readdirSync(root) : [];
    // As S3: only keys under ?prefix=, each with the time it was begun.
    const prefix = String(ctx.query.prefix ?? '');
    const uploads = ids.flatMap(id => {
      const keyFile = path.join(root, id, 'key');
      // A folder without its key is what a part that was still being written at the abort left behind.
      if (!fs.existsSync(keyFile)) return [];
      const k = fs.readFileSync(keyFile, 'utf8');
      if (!k.startsWith(prefix)) return [];
      const initiated = fs.statSync(keyFile).mtime.toISOString();
      return [`<Upload><Key>${xmlEscape(k)}</Key><UploadId>${xmlEscape(id)}</UploadId><Initiated>${initiated}</Initiated></Upload>`];
    });
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${xmlEscape(bucket)}</Bucket><IsTruncated>false</IsTruncated>${uploads.join('')}</ListMultipartUploadsResult>`;
    return;
  }
  return next();
}

/** Parts being written, per upload ID: how many, and the folder to remove after them (an abort's). */
const partsInFlight = new Map();

/**
 * s3rver's putPart creates the upload's folder when it is missing, so a part still in flight when its
 * upload is aborted would bring the upload back (without its key); AWS answers NoSuchUpload. A part
 * let through is counted until it has ended, so that an abort leaves its folder to it (multipartExtensions).
 */
async function refuseAbortedUploadParts(ctx, next) {
  const match = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
  const { uploadId, partNumber } = ctx.query;
  if (!match || ctx.method !== 'PUT' || uploadId === undefined || partNumber === undefined) return next();
  if (!fs.existsSync(path.join(uploadDir(match[1], uploadId), 'key'))) {
    throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId });
  }
  const id = String(uploadId);
  const entry = partsInFlight.get(id) ?? { count: 0, thenRemove: undefined };
  partsInFlight.set(id, entry);
  entry.count++;
  try {
    return await next();
  } finally {
    if (--entry.count === 0) {
      partsInFlight.delete(id);
      if (entry.thenRemove) fs.rmSync(entry.thenRemove, { recursive: true, force: true });
    }
  }
}

// ------------------------------------------------------------ flexible checksums (CRC32)

const CHECKSUM_HEADER = 'x-amz-checksum-crc32';
const CHECKSUM_TYPE_HEADER = 'x-amz-checksum-type';
const FULL_OBJECT = 'FULL_OBJECT';

/** The reflected CRC-32 polynomial (zlib's, S3's CRC32). */
const CRC32_POLY = 0xedb88320;

/**
 * a(x) * b(x) modulo the CRC-32 polynomial, both in the reflected bit order CRC-32 registers use
 * (bit 31 is x^0, bit 0 is x^31).
 */
function multiplyModPoly(a, b) {
  let product = 0;
  for (let bit = 0x80000000; bit !== 0; bit >>>= 1) {
    if (a & bit) product ^= b;
    b = b & 1 ? (b >>> 1) ^ CRC32_POLY : b >>> 1; // b *= x
  }
  return product >>> 0;
}

/** x^(8 * bytes) modulo the polynomial: what appending `bytes` zero bytes does to a CRC register. */
function zeroBytesOperator(bytes) {
  let result = 0x80000000; // x^0
  let square = 0x00800000; // x^8
  for (let n = bytes; n > 0; n = Math.floor(n / 2)) {
    if (n % 2 === 1) result = multiplyModPoly(result, square);
    square = multiplyModPoly(square, square);
  }
  return result;
}

/**
 * CRC-32 of A followed by B from crc(A), crc(B) and B's length: the parts' CRCs, computed as
 * they arrived, give the object's without reading its bytes again.
 */
function crc32Combine(crcA, crcB, lengthB) {
  return (multiplyModPoly(zeroBytesOperator(lengthB), crcA) ^ crcB) >>> 0;
}

function crc32ToBase64(crc) {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
}

/** The CRC-32 a header or XML element gives (base64 of 4 big-endian bytes), undefined if absent. */
function parseCrc32(value, name) {
  if (value === undefined || value === '') return undefined;
  const text = String(value).trim();
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== 4 || bytes.toString('base64') !== text) {
    throw new S3Error('InvalidRequest', `Value for ${name} is invalid.`);
  }
  return bytes.readUInt32BE(0);
}

function badDigest() {
  return new S3Error('BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
}

/** Checksums this server does not implement are refused rather than silently dropped. */
function refuseUnsupportedChecksums(headers) {
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-amz-checksum-') && ![CHECKSUM_HEADER, CHECKSUM_TYPE_HEADER, 'x-amz-checksum-algorithm', 'x-amz-checksum-mode'].includes(name)) {
      throw new S3Error('NotImplemented', `s3rver-main.cjs implements only CRC32 checksums, not ${name}`);
    }
  }
  if (/x-amz-checksum-/i.test(headers['x-amz-trailer'] || '')) {
    throw new S3Error('NotImplemented', 's3rver-main.cjs does not implement trailing checksums');
  }
}

/** Passes the request body on (as ctx.req, which s3rver's controllers read) while computing its CRC-32. */
function tapRequestCrc32(ctx) {
  const tapped = { crc: 0 };
  const tap = new Transform({
    transform(chunk, _encoding, callback) {
      tapped.crc = crc32(chunk, tapped.crc);
      callback(null, chunk);
    },
  });
  ctx.req.pipe(tap);
  ctx.req = tap;
  return tapped;
}

async function readRequestBody(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  ctx.req = Readable.from([body]); // for s3rver's own parser
  return body;
}

function ignoreMissing(err) {
  if (err.code !== 'ENOENT') throw err;
}

/** The base64 CRC-32 kept with an object, if any. */
async function storedChecksum(bucket, key) {
  const metadataPath = server.store.getResourcePath(bucket, key, 'metadata.json');
  const metadata = await fs.promises.readFile(metadataPath, 'utf8').then(JSON.parse, err => ignoreMissing(err));
  return metadata?.[CHECKSUM_HEADER];
}

async function keepChecksum(bucket, key, crc) {
  const metadataPath = server.store.getResourcePath(bucket, key, 'metadata.json');
  const metadata = JSON.parse(await fs.promises.readFile(metadataPath, 'utf8'));
  metadata[CHECKSUM_HEADER] = crc32ToBase64(crc);
  metadata[CHECKSUM_TYPE_HEADER] = FULL_OBJECT;
  await fs.promises.writeFile(metadataPath, JSON.stringify(metadata, null, 2));
}

function uploadDir(bucket, uploadId) {
  return path.join(uploadsDir(bucket), path.basename(String(uploadId)));
}

/** The request headers of CreateMultipartUpload, which s3rver keeps with the upload. */
function uploadHeaders(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'metadata'), 'utf8'));
  } catch (err) {
    ignoreMissing(err);
    return undefined;
  }
}

function isCrc32Upload(headers) {
  return String(headers?.['x-amz-checksum-algorithm'] || '').toUpperCase() === 'CRC32';
}

async function putObjectWithChecksum(ctx, next) {
  const expected = parseCrc32(ctx.get(CHECKSUM_HEADER), CHECKSUM_HEADER);
  if (expected === undefined) return next();
  const tapped = tapRequestCrc32(ctx);
  await next();
  const { bucket, key } = ctx.params;
  if (tapped.crc !== expected) {
    await server.store.deleteObject(bucket, key);
    throw badDigest();
  }
  await keepChecksum(bucket, key, expected);
  ctx.set(CHECKSUM_HEADER, crc32ToBase64(expected));
  ctx.set(CHECKSUM_TYPE_HEADER, FULL_OBJECT);
}

async function copyObjectWithChecksum(ctx, next) {
  const source = decodeURI(ctx.get('x-amz-copy-source')).replace(/^\//, '');
  const [sourceBucket, ...sourceKey] = source.split('/');
  const checksum = await storedChecksum(sourceBucket, sourceKey.join('/'));
  await next();
  if (checksum !== undefined) await keepChecksum(ctx.params.bucket, ctx.params.key, parseCrc32(checksum, CHECKSUM_HEADER));
}

function initiateUploadWithChecksum(ctx, next) {
  const algorithm = ctx.get('x-amz-checksum-algorithm');
  const type = ctx.get(CHECKSUM_TYPE_HEADER);
  if (!algorithm && !type) return next();
  if (algorithm.toUpperCase() !== 'CRC32' || type.toUpperCase() !== FULL_OBJECT) {
    throw new S3Error('NotImplemented', `s3rver-main.cjs implements only CRC32 FULL_OBJECT checksums, not ${algorithm || '-'} ${type || 'COMPOSITE'}`);
  }
  return next();
}

async function uploadPartWithChecksum(ctx, bucket, next) {
  const expected = parseCrc32(ctx.get(CHECKSUM_HEADER), CHECKSUM_HEADER);
  const dir = uploadDir(bucket, ctx.query.uploadId);
  if (expected === undefined && !isCrc32Upload(uploadHeaders(dir))) return next();
  const tapped = tapRequestCrc32(ctx);
  await next();
  const partPath = path.join(dir, String(ctx.query.partNumber)); // as s3rver names it
  if (expected !== undefined && tapped.crc !== expected) {
    await Promise.all([partPath, `${partPath}.md5`].map(p => fs.promises.unlink(p).catch(ignoreMissing)));
    throw badDigest();
  }
  await fs.promises.writeFile(`${partPath}.crc32`, crc32ToBase64(tapped.crc));
  ctx.set(CHECKSUM_HEADER, crc32ToBase64(tapped.crc));
}

function invalidPart(partNumber) {
  return new S3Error(
    'InvalidPart',
    'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag or checksum may not have matched the part.',
    { PartNumber: partNumber },
  );
}

/** The parts a CompleteMultipartUpload body lists, in the order s3rver assembles them; undefined if unreadable. */
function listedParts(body) {
  if (xmlParser.validate(body) !== true) return undefined;
  const listed = [].concat(xmlParser.parse(body).CompleteMultipartUpload?.Part ?? []);
  if (listed.length === 0) return undefined;
  return listed
    .map(part => ({ number: Number(part.PartNumber), crc: parseCrc32(part.ChecksumCRC32, 'ChecksumCRC32') }))
    .sort((a, b) => a.number - b.number);
}

/**
 * The object's CRC-32, combined from the CRC-32 each part got when it arrived, after checking
 * the ones the request lists.
 */
async function combinedPartsCrc32(dir, parts) {
  let objectCrc = 0;
  for (const part of parts) {
    const partPath = path.join(dir, String(part.number));
    let partCrc;
    let partSize;
    try {
      partCrc = parseCrc32(await fs.promises.readFile(`${partPath}.crc32`, 'utf8'), 'ChecksumCRC32');
      partSize = (await fs.promises.stat(partPath)).size;
    } catch (err) {
      ignoreMissing(err);
      throw invalidPart(part.number);
    }
    if (part.crc !== undefined && part.crc !== partCrc) throw invalidPart(part.number);
    objectCrc = crc32Combine(objectCrc, partCrc, partSize);
  }
  return objectCrc;
}

/** AWS's ETag of a multipart object: the MD5 of its parts' MD5s, then `-<number of parts>`. */
async function multipartEtag(dir, parts) {
  const md5 = crypto.createHash('md5');
  for (const part of parts) {
    const hex = await fs.promises.readFile(path.join(dir, `${part.number}.md5`), 'utf8').catch(err => {
      ignoreMissing(err);
      throw invalidPart(part.number);
    });
    md5.update(Buffer.from(hex, 'hex'));
  }
  return `${md5.digest('hex')}-${parts.length}`;
}

async function completeUpload(ctx, bucket, next) {
  const expected = parseCrc32(ctx.get(CHECKSUM_HEADER), CHECKSUM_HEADER);
  const dir = uploadDir(bucket, ctx.query.uploadId);
  const headers = uploadHeaders(dir);
  if (!headers) return next(); // no such upload: s3rver answers
  const withChecksum = isCrc32Upload(headers);
  if (!withChecksum && expected !== undefined) {
    throw new S3Error('InvalidRequest', 'The upload was created without a checksum algorithm; a CRC32 checksum cannot be given to complete it.');
  }
  const type = ctx.get(CHECKSUM_TYPE_HEADER);
  if (type && type.toUpperCase() !== FULL_OBJECT) {
    throw new S3Error('InvalidRequest', `The upload was created with checksum type ${FULL_OBJECT}, not ${type}.`);
  }

  const parts = listedParts((await readRequestBody(ctx)).toString('utf8'));
  if (!parts) return next(); // s3rver answers MalformedXML
  const objectCrc = withChecksum ? await combinedPartsCrc32(dir, parts) : undefined;
  if (expected !== undefined && expected !== objectCrc) throw badDigest();
  const etag = await multipartEtag(dir, parts);

  const key = fs.readFileSync(path.join(dir, 'key'), 'utf8'); // the key s3rver stores the object under
  await next();
  // s3rver keeps an object's ETag (unquoted) in <object>.md5.
  await fs.promises.writeFile(`${server.store.getResourcePath(bucket, key, 'object')}.md5`, etag);
  const result = ctx.body?.CompleteMultipartUploadResult;
  if (result) result.ETag = JSON.stringify(etag);
  if (objectCrc === undefined) return;
  await keepChecksum(bucket, key, objectCrc);
  if (result) {
    result.ChecksumCRC32 = crc32ToBase64(objectCrc);
    result.ChecksumType = FULL_OBJECT;
  }
}

async function getObjectWithChecksum(ctx, next) {
  await next();
  // A ranged GET (206) carries no full-object checksum; nor does a GET of a subresource (?acl, ...).
  if (ctx.status !== 200 || !ctx.params?.key || ctx.params.queryMethod) return;
  if (ctx.get('x-amz-checksum-mode').toUpperCase() !== 'ENABLED') return;
  const checksum = await storedChecksum(ctx.params.bucket, ctx.params.key);
  if (checksum === undefined) return;
  ctx.set(CHECKSUM_HEADER, checksum);
  ctx.set(CHECKSUM_TYPE_HEADER, FULL_OBJECT);
}

/** A subresource (?tagging, ?acl, ...) makes a request something else than an object write. */
function hasSubresource(query) {
  return Object.keys(query).some(name => name !== 'x-id' && !/^x-amz-/i.test(name));
}

async function flexibleChecksums(ctx, next) {
  const match = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
  if (!match) return next(); // only object requests carry checksums
  const bucket = match[1];
  const { query } = ctx;
  switch (ctx.method) {
    case 'PUT':
      refuseUnsupportedChecksums(ctx.headers);
      if (query.uploadId !== undefined) return uploadPartWithChecksum(ctx, bucket, next);
      if (hasSubresource(query)) return next();
      if (ctx.get('x-amz-copy-source')) return copyObjectWithChecksum(ctx, next);
      return putObjectWithChecksum(ctx, next);
    case 'POST':
      refuseUnsupportedChecksums(ctx.headers);
      if (query.uploads !== undefined) return initiateUploadWithChecksum(ctx, next);
      if (query.uploadId !== undefined) return completeUpload(ctx, bucket, next);
      return next();
    case 'GET':
    case 'HEAD':
      return getObjectWithChecksum(ctx, next);
    default:
      return next();
  }
}

// ------------------------------------------------------------ server-side encryption, as AWS answers it

const SSE_HEADERS = ['x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id'];

function confirmEncryption(ctx, headers) {
  if (ctx.status >= 300) return;
  for (const name of SSE_HEADERS) if (headers?.[name]) ctx.set(name, headers[name]);
}

async function sseAnswers(ctx, next) {
  const match = /^\/([^/]+)\/(.+)$/.exec(ctx.path);
  if (!match || (ctx.method !== 'PUT' && ctx.method !== 'POST')) return next();
  const { query } = ctx;
  if (query.uploadId !== undefined) {
    // UploadPart and CompleteMultipartUpload answer with what the upload was created with (read first: completion removes it).
    const headers = uploadHeaders(uploadDir(match[1], query.uploadId));
    await next();
    return confirmEncryption(ctx, headers);
  }
  await next();
  if (ctx.method === 'PUT' || query.uploads !== undefined) confirmEncryption(ctx, ctx.headers);
}

// Ahead of s3rver's router, after its request logger.
server.middleware.splice(1, 0, multipartExtensions);
// Right before s3rver's router (its last middleware): after its virtual-host rewrite, so the path
// is /<bucket>/<key>, and inside its XML encoder, so a result can still be added to.
server.middleware.splice(server.middleware.length - 1, 0, refuseAbortedUploadParts);
server.middleware.splice(server.middleware.length - 1, 0, flexibleChecksums);
server.middleware.splice(server.middleware.length - 1, 0, sseAnswers);

server.run().then(
  ({ port }) => process.stdout.write(`listening ${port}\n`),
  err => {
    process.stderr.write(`s3rver failed to start: ${err.message}\n`);
    process.exit(1);
  },
);

function stop() {
  server.close().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
