import type { Request, RequestHandler, Response } from 'express';
import { API_KEY_FIELD, API_KEY_HEADER } from '@pixelmill/contracts';
import { AppError, bearerToken } from '@pixelmill/kit';
import type { ApiKeys } from '../domain/api-keys';
import type { RateLimiter } from '../domain/rate-limiter';
import type { UploadQuota } from '../domain/upload-quota';
import { readFormKey } from './upload-form';

/** Who is asking. */
export interface Client {
  /** The owner id of the client's API key, when keys are on; master shows an owner only its own tasks. */
  owner?: string;
  /** The rate-limit bucket its uploads are counted in: its key, or its address without keys. */
  bucket: string;
}

export interface ClientAccess {
  /** Middleware of the routes that read a task: with keys on, a valid key is needed. */
  requireKey: RequestHandler;
  /**
   * Middleware that decides, once and before any body parser, who may upload: the key, the rate
   * limit and the quota. Nothing of the body is read, except for a form that sends its key as a
   * field: that one is read up to the field (at most FORM_KEY_BYTES).
   */
  admitUpload: RequestHandler;
  /** The client the middleware above admitted. */
  clientOf(res: Response): Client;
}

export interface ClientAccessDeps {
  apiKeys: ApiKeys;
  /** Counts uploads per client, in this process or in a store all frontends share; none: no limit. */
  uploadLimiter?: RateLimiter;
  /** The stored bytes per owner, known to master; none: not checked before master does. */
  uploadQuota?: UploadQuota;
}

const CLIENT_LOCAL = 'pixelmillClient';
const CHALLENGE = 'Bearer realm="pixelmill"';

function unauthorized(res: Response, message: string, invalid: boolean): AppError {
  res.setHeader('WWW-Authenticate', invalid ? `${CHALLENGE}, error="invalid_token"` : CHALLENGE);
  return new AppError('unauthorized', 401, message);
}

/** The key in `Authorization: Bearer <key>` or `X-API-Key: <key>`; never in the URL, where logs would keep it. */
function presentedKey(req: Request): string | undefined {
  return bearerToken(req) ?? (req.get(API_KEY_HEADER) || undefined);
}

/** The bytes a request says its body has; 0 when it does not say (chunked). */
function declaredLength(req: Request): number {
  const length = Number(req.headers['content-length']);
  return Number.isSafeInteger(length) && length > 0 ? length : 0;
}

export function createClientAccess({ apiKeys, uploadLimiter, uploadQuota }: ClientAccessDeps): ClientAccess {
  const identify = (req: Request, res: Response, formKey?: string): Client => {
    if (!apiKeys.enabled) return { bucket: `address:${req.ip ?? 'unknown'}` };
    const key = presentedKey(req) ?? (formKey === '' ? undefined : formKey);
    if (key === undefined) {
      throw unauthorized(
        res,
        `an API key is needed: send "Authorization: Bearer <key>" or "${API_KEY_HEADER}: <key>" ` +
          `(or, in a form, the field "${API_KEY_FIELD}" before the image)`,
        false,
      );
    }
    const owner = apiKeys.ownerOf(key);
    if (owner === undefined) throw unauthorized(res, 'the API key is not valid', true);
    return { owner, bucket: `key:${owner}` };
  };

  return {
    requireKey: (req, res, next) => {
      res.locals[CLIENT_LOCAL] = identify(req, res);
      // The answer is for this key alone: no shared cache may keep it (X-API-Key is not a header caches know).
      if (apiKeys.enabled) res.setHeader('Cache-Control', 'private, no-store');
      next();
    },
    admitUpload: async (req, res, next) => {
      const keyInForm = apiKeys.enabled && presentedKey(req) === undefined && Boolean(req.is('multipart/form-data'));
      const client = identify(req, res, keyInForm ? await readFormKey(req, API_KEY_FIELD) : undefined);
      const decision = await uploadLimiter?.take(client.bucket);
      if (decision && !decision.allowed) {
        res.setHeader('Retry-After', String(decision.retryAfterSeconds));
        throw new AppError('too_many_requests', 429, `too many uploads from this client; try again in ${decision.retryAfterSeconds} s`, {
          retryAfterSeconds: decision.retryAfterSeconds,
        });
      }
      await uploadQuota?.check(client.owner, declaredLength(req));
      res.locals[CLIENT_LOCAL] = client;
      next();
    },
    clientOf: (res) => {
      const client = res.locals[CLIENT_LOCAL] as Client | undefined;
      if (!client) throw new Error('no client admitted: the access middleware is not mounted before this route');
      return client;
    },
  };
}
