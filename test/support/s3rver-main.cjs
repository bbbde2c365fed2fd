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
 * Must run with --openssl-legacy-provider: s3rver's ListObjectsV2 continuation
 * tokens use a cipher OpenSSL 3 only has in its legacy provider.
 *
 * Usage: node --openssl-legacy-provider s3rver-main.cjs <directory> [port]
 */
const fs = require('node:fs');
const path = require('node:path');
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

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
    const dir = path.join(uploadsDir(bucket), path.basename(String(ctx.query.uploadId)));
    if (!fs.existsSync(dir)) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  if (ctx.method === 'GET' && !key && ctx.query.uploads !== undefined) {
    const root = uploadsDir(bucket);
    const ids = fs.existsSync(root) ? fs.readdirSync(root) : [];
    const uploads = ids.map(id => {
      const k = fs.readFileSync(path.join(root, id, 'key'), 'utf8');
      return `<Upload><Key>${xmlEscape(k)}</Key><UploadId>${xmlEscape(id)}</UploadId></Upload>`;
    });
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${xmlEscape(bucket)}</Bucket><IsTruncated>false</IsTruncated>${uploads.join('')}</ListMultipartUploadsResult>`;
    return;
  }
  return next();
}

// Ahead of s3rver's router, after its request logger.
server.middleware.splice(1, 0, multipartExtensions);

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
