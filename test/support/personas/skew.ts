/**
 * A server whose clock is 20 minutes ahead, and which refuses, as S3 does, a request whose
 * X-Amz-Date is more than 15 minutes from its clock: 403 RequestTimeTooSkewed (no body for
 * HEAD), with a Date header of its clock. Requests within the window pass to the S3 server;
 * every answer carries the persona's Date.
 */
import { s3Error, startFront, type Front } from './front.js';

export const SKEW_MS = 20 * 60_000;
const MAX_SKEW_MS = 15 * 60_000;

function amzDateMs(stamp: string | undefined): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp ?? '');
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : Number.NaN;
}

function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export function startSkewedServer(targetPort: number): Promise<Front> {
  const clock = () => new Date(Date.now() + SKEW_MS);
  return startFront(targetPort, {
    answer(req) {
      const signed = amzDateMs(req.headers['x-amz-date'] as string | undefined);
      const now = clock();
      if (!Number.isNaN(signed) && Math.abs(signed - now.getTime()) <= MAX_SKEW_MS) return undefined;
      return {
        status: 403,
        headers: { date: now.toUTCString(), 'content-type': 'application/xml' },
        body: s3Error(
          'RequestTimeTooSkewed',
          'The difference between the request time and the current time is too large.',
          `<RequestTime>${req.headers['x-amz-date']}</RequestTime><ServerTime>${now.toISOString()}</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>`,
        ),
      };
    },
    // s3rver checks X-Amz-Date against its own (right) clock, not the signature: a request this
    // server accepts is passed on dated in the S3 server's time.
    forwardHeaders(raw) {
      return raw.map((v, i) => (i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'x-amz-date' ? amzDate(new Date(amzDateMs(v) - SKEW_MS)) : v));
    },
    rewrite(headers) {
      headers.date = clock().toUTCString();
    },
  });
}
