/**
 * Where request signatures get their keys. The common cases cost nothing at
 * start-up: a key pair in the config, or AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY in the environment. Everything else (profiles, SSO,
 * web identity, container and instance roles, role_arn) loads the AWS SDK's
 * credential providers on first use. Their calls (STS, SSO, web identity) go
 * through the plugin's own agents (Transport.sdkRequestHandler): the same
 * proxy and the same trusted CAs as S3. Instance and container metadata
 * (link-local and loopback addresses) are left to the SDK's own handler.
 */
import type { NodeHttpHandlerOptions } from '@smithy/node-http-handler';
import type { PluginConfig } from '../../config/types.js';
import { log } from '../../log/gplog.js';
import { PluginError } from '../../errors.js';
import type { Credentials } from './sigv4.js';
import { sharedAcrossProcesses } from './credential-cache.js';

export type CredentialSource = () => Promise<Credentials>;

/** What the SDK's clients send their requests with: NodeHttpHandler options (agents). */
export type SdkRequestHandler = () => NodeHttpHandlerOptions;

interface Expiring extends Credentials {
  expiration?: Date;
}

/** Temporary credentials are renewed this long before they expire. */
const REFRESH_MARGIN_MS = 5 * 60_000;

/** One resolution at a time; the result is kept until it is about to expire. */
function cached(resolve: () => Promise<Expiring>): CredentialSource {
  let current: Promise<Expiring> | undefined;
  return async () => {
    const creds = current && (await current.catch(() => undefined));
    if (creds && (!creds.expiration || creds.expiration.getTime() - Date.now() > REFRESH_MARGIN_MS)) return creds;
    current = resolve().then(fresh => {
      // Keys from a profile, a role or STS are secrets like those of the config: never printed.
      log.addSecret(fresh.secretAccessKey);
      log.addSecret(fresh.sessionToken);
      return fresh;
    });
    return current;
  };
}

function fromEnvironment(): Credentials | undefined {
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, sessionToken: process.env.AWS_SESSION_TOKEN || undefined };
}

async function fromDefaultChain(profile: string | undefined, handler?: SdkRequestHandler): Promise<Expiring> {
  const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
  try {
    // clientConfig reaches the STS (role chains, web identity) and SSO clients the chain creates.
    const clientConfig = handler ? { requestHandler: handler() } : undefined;
    // The SDK's default for the instance and container endpoints is one attempt of 1 s; as a host's
    // processes now share one answer (credential-cache.ts), that one fetch is given more patience.
    return await defaultProvider({ ...(profile ? { profile } : {}), ...(clientConfig ? { clientConfig } : {}), timeout: 2000, maxRetries: 2 })();
  } catch (err) {
    throw new PluginError(
      `no AWS credentials found${profile ? ` for profile "${profile}"` : ''}: set aws_access_key_id and aws_secret_access_key, ` +
        `or provide them through the environment, ~/.aws, or an instance or container role (${(err as Error).message})`,
    );
  }
}

async function assumeRole(roleArn: string, region: string, base: Credentials, handler?: SdkRequestHandler): Promise<Expiring> {
  const { getDefaultRoleAssumer } = await import('@aws-sdk/nested-clients/sts');
  try {
    return await getDefaultRoleAssumer({ region, requestHandler: handler?.() })(base, {
      RoleArn: roleArn,
      RoleSessionName: `gpbackup_s3_plugin-${process.pid}`,
    });
  } catch (err) {
    throw new PluginError(`assuming role ${roleArn}: ${(err as Error).message}`);
  }
}

export function credentialSource(config: PluginConfig, region: string, handler?: SdkRequestHandler): CredentialSource {
  let base: CredentialSource;
  if (config.accessKeyId && config.secretAccessKey) {
    const creds = { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, sessionToken: config.sessionToken };
    base = async () => creds;
  } else {
    const env = config.awsProfile ? undefined : fromEnvironment();
    // Temporary credentials (instance, container, web identity, SSO) are shared by the host's processes: credential-cache.ts.
    base = env
      ? async () => env
      : cached(sharedAcrossProcesses({ source: 'default-chain', profile: config.awsProfile }, () => fromDefaultChain(config.awsProfile, handler)));
  }
  const roleArn = config.roleArn;
  if (!roleArn) return base;
  const baseKey = config.accessKeyId ?? (config.awsProfile ? undefined : fromEnvironment()?.accessKeyId);
  return cached(
    sharedAcrossProcesses({ source: 'assume-role', roleArn, region, baseKey, profile: config.awsProfile }, async () => assumeRole(roleArn, region, await base(), handler)),
  );
}
