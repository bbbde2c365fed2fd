/** The S3 client's pure parts: SigV4, CRC-32 combining, XML, addressing. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { PluginConfig } from '../../src/config/types.js';
import { crc32, crc32Combine, crc32FromBase64, crc32ToBase64 } from '../../src/storage/crc32.js';
import { Endpoint } from '../../src/storage/s3/endpoint.js';
import { EMPTY_SHA256, Signer, canonicalQuery, uriEncode } from '../../src/storage/s3/sigv4.js';
import { elements, text, xmlEncode } from '../../src/storage/s3/xml.js';

test('SigV4 matches the GET Object example of the S3 documentation', () => {
  const headers: Record<string, string> = { host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9' };
  new Signer('us-east-1', 's3').sign(
    { method: 'GET', path: '/test.txt', query: {}, headers, payloadHash: EMPTY_SHA256 },
    { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
    new Date('2013-05-24T00:00:00Z'),
  );
  assert.equal(
    headers.authorization,
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
      'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
      'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  );
  assert.equal(headers['x-amz-date'], '20130524T000000Z');
});

test('SigV4 adds the session token and encodes query and path as S3 wants', () => {
  const headers: Record<string, string> = { host: 'h' };
  new Signer('eu-west-1', 's3').sign(
    { method: 'GET', path: '/b/k', query: {}, headers, payloadHash: EMPTY_SHA256 },
    { accessKeyId: 'A', secretAccessKey: 'S', sessionToken: 'T' },
  );
  assert.equal(headers['x-amz-security-token'], 'T');
  assert.match(headers.authorization!, /SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,/);
  assert.equal(canonicalQuery({ uploads: '', 'b c': "x*y'", a: '1/2' }), 'a=1%2F2&b%20c=x%2Ay%27&uploads=');
  assert.equal(uriEncode('folder//backups/a b+(c)', true), 'folder//backups/a%20b%2B%28c%29');
});

test('CRC-32 of parts combines into the CRC-32 of the whole', () => {
  for (const [a, b] of [
    [0, 0],
    [1, 0],
    [0, 1],
    [7, 5],
    [100_000, 3_000_001],
  ] as const) {
    const x = randomBytes(a);
    const y = randomBytes(b);
    assert.equal(crc32Combine(crc32(x), crc32(y), y.length), crc32(Buffer.concat([x, y])), `${a}+${b}`);
  }
  // 5 GiB of zeros after a part: lengths past 2^32 bits work (no 32-bit overflow).
  const zeros = 5 * 2 ** 30;
  const viaCombine = crc32Combine(crc32(Buffer.from('abc')), 0, zeros);
  assert.equal(typeof viaCombine, 'number');
  assert.ok(viaCombine >= 0 && viaCombine < 2 ** 32);
  assert.equal(crc32ToBase64(crc32(Buffer.from('hello'))), 'NhCmhg==');
  assert.equal(crc32FromBase64('NhCmhg=='), crc32(Buffer.from('hello')));
  assert.equal(crc32FromBase64('not a crc'), undefined);
});

test('XML: elements and entities, and encoding of keys', () => {
  const xml =
    '<?xml version="1.0"?><ListBucketResult><Contents><Key>a&amp;b&#x1;</Key><Size>3</Size></Contents>' +
    '<Contents><Key>c</Key><Size>0</Size></Contents><IsTruncated>false</IsTruncated></ListBucketResult>';
  const items = elements(xml, 'Contents');
  assert.equal(items.length, 2);
  assert.equal(text(items[0]!, 'Key'), 'a&b\u0001');
  assert.equal(text(xml, 'IsTruncated'), 'false');
  assert.equal(text(xml, 'Missing'), undefined);
  assert.equal(xmlEncode(`<k>&'"\u0002`), '&lt;k&gt;&amp;&apos;&quot;&#x2;');
});

test('addressing: path style, virtual-hosted, remove_duplicate_bucket, AWS regions', () => {
  const base = { bucket: 'bk', useTls: false, forcePathStyle: true, removeDuplicateBucket: false } as PluginConfig;
  const at = (c: Partial<PluginConfig>, key?: string) => new Endpoint({ ...base, ...c }).target(key);
  assert.deepEqual(at({ endpoint: 'minio:9000' }, 'f/a b'), {
    https: false,
    hostname: 'minio',
    port: 9000,
    host: 'minio:9000',
    path: '/bk/f/a%20b',
  });
  assert.equal(at({ endpoint: 'https://rgw.example.com/' }).path, '/bk');
  assert.equal(at({ endpoint: 'https://rgw.example.com/' }).port, 443);
  assert.equal(at({ endpoint: 'http://h:1/base/', removeDuplicateBucket: true }, 'k').path, '/base/k');
  const vhost = at({ endpoint: 'http://localhost:9000', forcePathStyle: false }, 'k');
  assert.equal(vhost.host, 'bk.localhost:9000');
  assert.equal(vhost.path, '/k');
  const aws = at({ region: 'eu-west-1', useTls: true }, 'k');
  assert.equal(aws.host, 's3.eu-west-1.amazonaws.com');
  assert.equal(aws.path, '/bk/k');
  assert.equal(at({ region: 'cn-north-1', useTls: true }).host, 's3.cn-north-1.amazonaws.com.cn');
  assert.equal(new Endpoint({ ...base, endpoint: 'h' }).region, 'us-east-1');
  assert.equal(at({ endpoint: 'http://[::1]:9000' }).hostname, '::1');
});
