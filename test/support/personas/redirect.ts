/**
 * Redirecting servers: one that answers every request 301 PermanentRedirect naming another
 * region (x-amz-bucket-region, as S3 does for a bucket of another region), and one that answers
 * every request 307 Temporary Redirect to the real S3 server (as S3 does while a new bucket's
 * DNS name propagates).
 */
import { s3Error, startFront, type Front } from './front.js';

export function startWrongRegionServer(targetPort: number, region: string): Promise<Front> {
  return startFront(targetPort, {
    answer: () => ({
      status: 301,
      headers: { 'x-amz-bucket-region': region, 'content-type': 'application/xml' },
      body: s3Error(
        'PermanentRedirect',
        'The bucket you are attempting to access must be addressed using the specified endpoint.',
        `<Endpoint>s3.${region}.amazonaws.com</Endpoint>`,
      ),
    }),
  });
}

export function startTemporaryRedirectServer(targetPort: number): Promise<Front> {
  return startFront(targetPort, {
    answer: req => ({
      status: 307,
      headers: { location: `http://127.0.0.1:${targetPort}${req.url}`, 'content-type': 'application/xml' },
      body: s3Error('TemporaryRedirect', 'Please re-send this request to the specified temporary endpoint.'),
    }),
  });
}
