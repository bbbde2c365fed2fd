/** The checksum policy of the S3 client: what counts as a refusal, and what each state sends. */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { log } from '../../src/log/gplog.js';
import { ChecksumPolicy, isChecksumRefusal, md5Base64 } from '../../src/storage/s3/checksums.js';
import { StoreRequestError } from '../../src/storage/store.js';

mock.method(log, 'verbose', () => {});

const err = (status: number, code: string) => new StoreRequestError(`x: ${code}`, status, code);

test('refusals: B2\'s 400 InvalidArgument, any 501, a bodiless 400 to a HEAD; InvalidPart only on completion; never a bad digest', () => {
  assert.ok(isChecksumRefusal(err(400, 'InvalidArgument')));
  assert.ok(isChecksumRefusal(err(501, 'NotImplemented')));
  assert.ok(isChecksumRefusal(err(501, 'HTTP501')));
  assert.ok(isChecksumRefusal(err(400, 'BadRequest')));
  assert.ok(isChecksumRefusal(err(400, 'InvalidPart'), true));
  assert.ok(!isChecksumRefusal(err(400, 'InvalidPart')));
  for (const code of ['BadDigest', 'InvalidDigest', 'EntityTooSmall']) assert.ok(!isChecksumRefusal(err(400, code), true), code);
  assert.ok(!isChecksumRefusal(err(403, 'AccessDenied')));
  assert.ok(!isChecksumRefusal(err(500, 'InternalError')));
  assert.ok(!isChecksumRefusal(new Error('ECONNRESET')));
});

test('auto: both kinds until the server tells; CRC-32 alone once validated; Content-MD5 alone once ignored or refused', () => {
  const p = new ChecksumPolicy('auto');
  assert.deepEqual([p.sendFlexible, p.sendMd5, p.askChecksumMode], [true, true, true]);
  p.validated('PutObject');
  assert.deepEqual([p.sendFlexible, p.sendMd5], [true, false]);
  const ignoring = new ChecksumPolicy('auto');
  ignoring.ignored('UploadPart');
  assert.deepEqual([ignoring.sendFlexible, ignoring.sendMd5, ignoring.askChecksumMode], [false, true, true]);
  const refusing = new ChecksumPolicy('auto');
  refusing.refused('PutObject', 'InvalidArgument, HTTP 400');
  assert.deepEqual([refusing.sendFlexible, refusing.sendMd5, refusing.askChecksumMode], [false, true, false]);
  refusing.validated('PutObject'); // a refusal is final
  assert.equal(refusing.state, 'refused');
});

test('crc32, md5 and off send one kind, or none, whatever the server says', () => {
  const crc = new ChecksumPolicy('crc32');
  crc.ignored('PutObject');
  assert.deepEqual([crc.sendFlexible, crc.sendMd5, crc.mayFallBack], [true, false, false]);
  const md5 = new ChecksumPolicy('md5');
  assert.deepEqual([md5.sendFlexible, md5.sendMd5, md5.askChecksumMode], [false, true, false]);
  const off = new ChecksumPolicy('off');
  assert.deepEqual([off.sendFlexible, off.sendMd5, off.askChecksumMode], [false, false, false]);
});

test('md5Base64 is the Content-MD5 form', () => {
  assert.equal(md5Base64(Buffer.from('')), '1B2M2Y8AsgTpgAmY7PhCfg==');
});
