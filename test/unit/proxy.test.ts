/** The proxy choice (src/storage/s3/proxy.ts) against Go's ProxyFromEnvironment rules. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseProxy, exemptByNoProxy, parseProxyUrl } from '../../src/storage/s3/proxy.js';

const P = 'http://proxy.corp:3128';

test('HTTPS_PROXY for https, HTTP_PROXY for http; upper case wins; lower case works alone', () => {
  assert.equal(chooseProxy(undefined, true, 's3.example.com', 443, { HTTPS_PROXY: P, HTTP_PROXY: 'http://other:1' })?.source, 'HTTPS_PROXY');
  assert.equal(chooseProxy(undefined, false, 's3.example.com', 80, { HTTPS_PROXY: P }), undefined);
  assert.equal(chooseProxy(undefined, false, 's3.example.com', 80, { http_proxy: P })?.source, 'http_proxy');
  assert.equal(chooseProxy(undefined, true, 's3.example.com', 443, { HTTPS_PROXY: P, https_proxy: 'http://x:1' })?.url.host, 'proxy.corp:3128');
});

test('the http_proxy option applies to every request, loopback included', () => {
  assert.equal(chooseProxy(P, true, '127.0.0.1', 9000, { NO_PROXY: '*' })?.source, 'http_proxy');
});

test('never for localhost or loopback addresses, as Go', () => {
  for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]']) assert.equal(chooseProxy(undefined, true, host, 443, { HTTPS_PROXY: P }), undefined, host);
  assert.ok(chooseProxy(undefined, true, '10.0.0.1', 443, { HTTPS_PROXY: P }));
});

test('HTTP_PROXY is ignored in a CGI environment (REQUEST_METHOD set)', () => {
  assert.equal(chooseProxy(undefined, false, 's3.example.com', 80, { HTTP_PROXY: P, REQUEST_METHOD: 'GET' }), undefined);
});

test('NO_PROXY: *, domains, leading dots, ports, addresses, CIDR blocks', () => {
  assert.ok(exemptByNoProxy('*', 'any.host', 443));
  assert.ok(exemptByNoProxy('example.com', 'example.com', 443));
  assert.ok(exemptByNoProxy('example.com', 's3.example.com', 443));
  assert.ok(!exemptByNoProxy('example.com', 'badexample.com', 443));
  assert.ok(!exemptByNoProxy('.example.com', 'example.com', 443));
  assert.ok(exemptByNoProxy('.example.com', 's3.example.com', 443));
  assert.ok(exemptByNoProxy('*.example.com', 's3.example.com', 443));
  assert.ok(exemptByNoProxy('foo.com, example.com:9000', 'minio.example.com', 9000));
  assert.ok(!exemptByNoProxy('example.com:9000', 'minio.example.com', 443));
  assert.ok(exemptByNoProxy('10.1.2.3', '10.1.2.3', 443));
  assert.ok(exemptByNoProxy('10.0.0.0/8', '10.200.0.1', 443));
  assert.ok(!exemptByNoProxy('10.0.0.0/8', 'example.com', 443));
  assert.ok(exemptByNoProxy(' EXAMPLE.com ', 'example.com', 443));
  assert.equal(chooseProxy(undefined, true, 'S3.Example.com', 443, { HTTPS_PROXY: P, no_proxy: 'example.com' }), undefined);
});

test('a proxy given as host:port is http; socks is refused', () => {
  assert.equal(parseProxyUrl('proxy.corp:3128').href, 'http://proxy.corp:3128/');
  assert.equal(parseProxyUrl('https://p:443').protocol, 'https:');
  assert.throws(() => parseProxyUrl('socks5://p:1080'), /not supported/);
});
