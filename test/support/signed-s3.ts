/**
 * The two S3 requests the e2e tier makes itself (create a bucket, list its objects), SigV4-signed with
 * @smithy/signature-v4 for servers that check signatures (Ceph RGW) and sent with fetch: the AWS SDK
 * client would add its Node-version warning to the tier's output.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from './personas/framing.js';
import { TEST_ACCESS_KEY, TEST_SECRET_KEY } from './s3server.js';

const signer = new SignatureV4({
  credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY },
  region: 'us-east-1',
  service: 's3',
  sha256: Sha256,
  uriEscapePath: false,
  applyChecksum: false,
});
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

async function send(endpoint: string, method: string, path: string, query: Record<string, string> = {}): Promise<string> {
  const url = new URL(path, endpoint);
  const signed = await signer.sign({
    method,
    protocol: 'http:',
    hostname: url.host,
    path: url.pathname,
    query,
    headers: { host: url.host, 'x-amz-content-sha256': EMPTY_SHA256 },
  });
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const { host: _host, ...headers } = signed.headers;
  const res = await fetch(url, { method, headers });
  const body = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${body.slice(0, 300)}`);
  return body;
}

export async function createBucket(endpoint: string, bucket: string): Promise<void> {
  await send(endpoint, 'PUT', `/${bucket}`);
}

/** Every object under the prefix, with its size. */
export async function listObjects(endpoint: string, bucket: string, prefix: string): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  let token: string | undefined;
  do {
    const xml = await send(endpoint, 'GET', `/${bucket}`, { 'list-type': '2', prefix, ...(token ? { 'continuation-token': token } : {}) });
    for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
      const key = /<Key>([\s\S]*?)<\/Key>/.exec(m[1])?.[1] ?? '';
      out.push({ key: key.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>'), size: Number(/<Size>(\d+)<\/Size>/.exec(m[1])?.[1] ?? 0) });
    }
    token = /<IsTruncated>true<\/IsTruncated>/.test(xml) ? /<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml)?.[1] : undefined;
  } while (token);
  return out;
}
