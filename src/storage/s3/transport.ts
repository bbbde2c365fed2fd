/**
 * One HTTP exchange with the server: keep-alive sockets, connect and idle
 * timeouts, TLS verified against the runtime's roots, the host's system store
 * and ca_bundle (or AWS_CA_BUNDLE) (trust.ts), a proxy chosen per host
 * (proxy.ts: the http_proxy option, else HTTPS_PROXY/HTTP_PROXY/NO_PROXY),
 * request bodies held to the upload bandwidth. Resolves with the response as
 * soon as its headers arrive. GETs that go to the server directly may instead
 * go through DirectGetter (direct.ts), which reads their bodies straight into
 * the caller's buffers.
 *
 * The same agents (same proxy, same trust) serve the AWS SDK's STS, SSO and
 * web-identity calls (sdkRequestHandler).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { PluginConfig } from '../../config/types.js';
import { THROTTLE_SLICE, type Throttle } from '../throttle.js';
import { DirectFallback, DirectGetter, type DirectResponse } from './direct.js';
import { Endpoint, type Target } from './endpoint.js';
import { LowSpeedWatch, lowSpeedError, type LowSpeedLimit } from './lowspeed.js';
import { connectTimedOut, describeNetworkError, describeProxy, requestTimedOut } from './network.js';
import { chooseProxy, type ProxyChoice } from './proxy.js';
import { trustedContext } from './trust.js';

export interface HttpRequest {
  method: string;
  target: Target;
  query: Record<string, string>;
  /** Lower-case names, signed already. */
  headers: Record<string, string>;
  body?: Buffer;
  /** Holds the body to the upload bandwidth. */
  throttle?: Throttle;
  signal?: AbortSignal;
}

/** Agents for direct connections and for each proxy, made on first use. */
class Agents {
  private readonly pool = new Map<string, HttpAgent>();
  private proxyAgents: { HttpProxyAgent: typeof import('http-proxy-agent').HttpProxyAgent; HttpsProxyAgent: typeof import('https-proxy-agent').HttpsProxyAgent } | undefined;

  constructor(
    private readonly config: PluginConfig,
    private readonly options: { keepAlive: boolean; maxSockets?: number },
    private readonly trust: () => SecureContext,
  ) {}

  /** The proxy for a connection to hostname:port, if any. */
  proxyFor(https: boolean, hostname: string, port: number): ProxyChoice | undefined {
    return chooseProxy(this.config.httpProxy, https, hostname, port);
  }

  /** Loads the proxy agents' code when a proxy may be used (the option or a *_PROXY variable is set). */
  async load(): Promise<void> {
    const env = process.env;
    if (!(this.config.httpProxy || env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy)) return;
    const [{ HttpProxyAgent }, { HttpsProxyAgent }] = await Promise.all([import('http-proxy-agent'), import('https-proxy-agent')]);
    this.proxyAgents = { HttpProxyAgent, HttpsProxyAgent };
  }

  /** The agent for a request to hostname:port, and the proxy it goes through. */
  agentFor(https: boolean, hostname: string, port: number): { agent: HttpAgent; proxy?: ProxyChoice } {
    const proxy = this.proxyFor(https, hostname, port);
    const name = `${https ? 'https' : 'http'} ${proxy?.url.href ?? 'direct'}`;
    let agent = this.pool.get(name);
    if (!agent) {
      // The TLS context goes in the agent's options (connections to the server and to an https
      // proxy) and in each request's (send(), routingAgent): https-proxy-agent's tunnel takes those.
      const needsTls = https || proxy?.url.protocol === 'https:';
      const options = { ...this.options, rejectUnauthorized: true, secureContext: needsTls ? this.trust() : undefined };
      if (!proxy) agent = https ? new HttpsAgent(options) : new HttpAgent(options);
      else if (https) agent = new this.proxyAgents!.HttpsProxyAgent(proxy.url, options);
      else agent = new this.proxyAgents!.HttpProxyAgent(proxy.url, options);
      this.pool.set(name, agent);
    }
    return { agent, proxy };
  }

  destroy(): void {
    for (const agent of this.pool.values()) agent.destroy();
    this.pool.clear();
  }
}

/**
 * An agent the AWS SDK's NodeHttpHandler can hold, that hands each request to the agent
 * Agents picks for its host: the SDK's hosts (STS, SSO, AWS_ENDPOINT_URL_STS) are known only
 * per request. ClientRequest uses nothing of an agent but addRequest, protocol and defaultPort.
 */
function routingAgent(agents: Agents, https: boolean, trust: () => SecureContext): HttpAgent {
  const router = https ? new HttpsAgent() : new HttpAgent();
  const route = router as unknown as {
    addRequest(req: ClientRequest, options: { host?: string; hostname?: string; port?: number | string; secureContext?: SecureContext }): void;
  };
  route.addRequest = (req, options) => {
    const host = (options.hostname ?? options.host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
    const port = Number(options.port) || (https ? 443 : 80);
    // A CONNECT tunnel's TLS takes the request's options, not the agent's: the context goes in both.
    if (https) options.secureContext ??= trust();
    (agents.agentFor(https, host, port).agent as unknown as typeof route).addRequest(req, options);
  };
  return router;
}

/** Resolves when `r` can take more, or is closed; leaves no listener behind (a body has thousands of slices). */
function drained(r: ClientRequest): Promise<void> {
  return new Promise<void>(resolve => {
    const done = () => {
      r.off('drain', done);
      r.off('close', done);
      resolve();
    };
    r.on('drain', done);
    r.on('close', done);
  });
}

/**
 * The answer of `r` once its headers are in, or its first error: the abort's reason when `signal`
 * ended it, else `describe(err)`. An abort of `signal` destroys the request.
 */
function answerOf(r: ClientRequest, signal: AbortSignal | undefined, describe: (err: NodeJS.ErrnoException) => Error): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = () => r.destroy(signal!.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    r.on('close', () => signal?.removeEventListener('abort', onAbort));
    r.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      reject(signal?.aborted ? (signal.reason as Error) : describe(err));
    });
    r.on('response', res => {
      settled = true;
      resolve(res);
    });
  });
}

export class Transport {
  private sdkHandler: { httpAgent: HttpAgent; httpsAgent: HttpsAgent } | undefined;

  private constructor(
    private readonly trust: () => SecureContext,
    private readonly agents: Agents,
    private readonly sdkAgents: Agents,
    private readonly connectTimeoutMs: number,
    private readonly requestTimeoutMs: number,
    /** GETs to an endpoint reached without a proxy, read straight into their buffers (direct.ts). */
    private readonly direct: DirectGetter | undefined,
    private readonly lowSpeed: LowSpeedLimit,
  ) {}

  /** Set once a server answered a GET with a 2xx the direct reader does not read (chunked, HTTP/1.0...). */
  private directRefused = false;

  /** Whether GETs can go through sendDirect() (the endpoint is reached without a proxy, nor to a server whose framing it refused). */
  get canSendDirect(): boolean {
    return this.direct !== undefined && !this.directRefused;
  }

  /**
   * A GET whose body the caller reads into its own buffers (DirectResponse.fill); an answer the
   * direct reader does not read exactly (an error, chunked, HTTP/1.0, ...) is read by node:http.
   */
  async sendDirect(req: HttpRequest, queryString: string): Promise<DirectResponse | IncomingMessage> {
    const { target } = req;
    const path = queryString ? `${target.path}?${queryString}` : target.path;
    try {
      return await this.direct!.get(target, path, req.headers, req.signal);
    } catch (err) {
      if (!(err instanceof DirectFallback)) throw err;
      // A server that frames its data so will frame the next answers so too: spare them the
      // refused first attempt. Error answers say nothing about how data is framed.
      if (err.status >= 200 && err.status < 300) this.directRefused = true;
      return this.readFallback(err, req, path);
    }
  }

  /** node:http's client reads an answer the direct reader refused, from the bytes it received on. */
  readFallback(fallback: DirectFallback, req: HttpRequest, path: string): Promise<IncomingMessage> {
    const { target } = req;
    const r = httpRequest({
      method: req.method,
      host: target.hostname,
      port: target.port,
      path,
      headers: req.headers,
      createConnection: () => fallback.stream,
    });
    const answer = answerOf(r, req.signal, err => describeNetworkError(err, target));
    let res: IncomingMessage | undefined;
    r.once('response', got => (res = got));
    // Cut mid-answer (request_timeout, low_speed_limit), the answer's reader gets that reason itself,
    // not node:http's "aborted": ahead of node:http's own listener.
    fallback.stream.prependListener('error', err => res?.destroy(err));
    r.end();
    return answer;
  }

  static async create(config: PluginConfig, maxSockets: number): Promise<Transport> {
    const trust = trustedContext(config);
    const agents = new Agents(config, { keepAlive: true, maxSockets }, trust);
    const sdkAgents = new Agents(config, { keepAlive: true }, trust);
    await Promise.all([agents.load(), sdkAgents.load()]);
    const endpoint = new Endpoint(config).target();
    const lowSpeed = { bytesPerSecond: config.lowSpeedLimit, timeMs: config.lowSpeedTimeMs };
    const direct = agents.proxyFor(endpoint.https, endpoint.hostname, endpoint.port)
      ? undefined
      : new DirectGetter(config.connectTimeoutMs, config.requestTimeoutMs, trust, lowSpeed);
    return new Transport(trust, agents, sdkAgents, config.connectTimeoutMs, config.requestTimeoutMs, direct, lowSpeed);
  }

  /** How requests to `target` travel, for the verbose log: the proxy (never its password) or directly. */
  describeRoute(target: Target): string {
    const proxy = this.agents.proxyFor(target.https, target.hostname, target.port);
    const gets = this.direct ? 'GETs read straight into buffers' : 'GETs through node:http';
    return proxy ? `through the proxy ${describeProxy(proxy)}, ${gets}` : `no proxy, ${gets}`;
  }

  /** For the AWS SDK's clients (STS, SSO, web identity): the same proxy choice and the same trust. */
  sdkRequestHandler(): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
    this.sdkHandler ??= {
      httpAgent: routingAgent(this.sdkAgents, false, this.trust),
      httpsAgent: routingAgent(this.sdkAgents, true, this.trust) as HttpsAgent,
    };
    return this.sdkHandler;
  }

  async send(req: HttpRequest, queryString: string): Promise<IncomingMessage> {
    const { target, signal } = req;
    signal?.throwIfAborted();
    const { agent, proxy } = this.agents.agentFor(target.https, target.hostname, target.port);
    const options = {
      method: req.method,
      host: target.hostname,
      port: target.port,
      path: queryString ? `${target.path}?${queryString}` : target.path,
      headers: req.headers,
      agent,
      servername: target.https && !isIP(target.hostname) ? target.hostname : undefined,
      // Through a CONNECT tunnel, TLS takes the request's options, not the agent's.
      secureContext: target.https ? this.trust() : undefined,
    };
    const r: ClientRequest = (target.https ? httpsRequest : httpRequest)(options);
    const answer = answerOf(r, signal, err => describeNetworkError(err, target, proxy));
    r.setTimeout(this.requestTimeoutMs, () => r.destroy(requestTimedOut(target.host, this.requestTimeoutMs)));
    if (proxy) {
      // A tunnel's socket is handed over only once the proxy has connected it.
      const timer = setTimeout(() => r.destroy(connectTimedOut(target.host, this.connectTimeoutMs, proxy)), this.connectTimeoutMs);
      r.once('socket', () => clearTimeout(timer));
      r.once('close', () => clearTimeout(timer));
    }
    r.on('socket', socket => {
      if (!socket.connecting) return;
      const timer = setTimeout(
        () => r.destroy(connectTimedOut(target.host, this.connectTimeoutMs, proxy)),
        this.connectTimeoutMs,
      );
      socket.once(target.https ? 'secureConnect' : 'connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    this.watchSpeed(r, target);
    this.writeBody(r, req).catch(err => r.destroy(err as Error));
    return answer;
  }

  /**
   * The low-speed limit on a node:http exchange, from the socket's counters: bytes whose write
   * completed while the body goes out, bytes read from the answer's head to its end. Not while
   * the answer's reader holds bytes it has not taken (the slowness is then ours).
   */
  private watchSpeed(r: ClientRequest, target: Target): void {
    let socket: Socket | undefined;
    let answer: IncomingMessage | undefined;
    const moved = () => (socket ? socket.bytesRead + socket.bytesWritten - socket.writableLength : 0);
    const held = () => (answer?.readableLength ?? 0) > 0;
    // Cut mid-answer, the answer's reader gets this error itself (not node:http's "aborted").
    const slow = () => {
      const err = lowSpeedError(target.host, this.lowSpeed);
      if (answer) answer.destroy(err);
      else r.destroy(err);
    };
    const watch = new LowSpeedWatch(this.lowSpeed, moved, slow, held);
    if (!watch.enabled) return;
    let sent = false;
    const hasBody = Number(r.getHeader('content-length') ?? 0) > 0;
    r.on('socket', s => {
      socket = s;
      if (!hasBody) return;
      if (!s.connecting) watch.start();
      else s.once(target.https ? 'secureConnect' : 'connect', () => !sent && watch.start());
    });
    r.on('finish', () => {
      sent = true;
      watch.stop();
    });
    r.on('response', res => {
      answer = res;
      watch.start();
      res.on('close', () => watch.stop());
    });
    r.on('close', () => watch.stop());
  }

  private async writeBody(r: ClientRequest, req: HttpRequest): Promise<void> {
    const body = req.body;
    // Under the low-speed limit, a large body goes in slices, so that its progress shows.
    const sliced = req.throttle || (this.lowSpeed.bytesPerSecond > 0 && (body?.length ?? 0) > THROTTLE_SLICE);
    if (!body || body.length === 0 || !sliced) {
      r.end(body);
      return;
    }
    for (let offset = 0; offset < body.length; offset += THROTTLE_SLICE) {
      const slice = body.subarray(offset, offset + THROTTLE_SLICE);
      await req.throttle?.take(slice.length, req.signal);
      if (r.destroyed) return;
      if (!r.write(slice)) await drained(r);
    }
    r.end();
  }

  destroy(): void {
    this.agents.destroy();
    this.sdkAgents.destroy();
    this.direct?.destroy();
  }
}

