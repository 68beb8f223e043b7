import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import type { Router } from 'express';
import { DEFAULT_OPERATION, frontendContract, TaskIdSchema, type Operation } from '@pixelmill/contracts';
import { AppError, hangUpSignal, mountContract } from '@pixelmill/kit';
import type { MasterGateway } from '../data-access/master-gateway';
import { checkUpload, checkUploadStream, parseOperation, type ImageLimits } from '../domain/image-upload';
import { renderDocsPage } from '../views/docs-page';
import { renderUploadPage, type PageStatus } from '../views/upload-page';
import type { ClientAccess } from './client-access';
import { streamedUploadLength, uploadParser } from './upload-parser';

export interface FrontendRouteDeps {
  master: MasterGateway;
  access: ClientAccess;
  /** Whether the API needs keys: the page then asks for one. */
  apiKeys: boolean;
  maxUploadBytes: number;
  streamUploadsFromBytes: number;
  imageLimits: ImageLimits;
  refreshSeconds: number;
}

/**
 * The page loads its script and style from us only; nothing inline, nothing external. Images
 * may also be `blob:`: with API keys the script fetches the result with the key and shows it so.
 */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; " +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
};

/**
 * Swagger UI sets inline styles and draws its icons from data: URLs; its script and the document
 * come from us. Nothing from another host.
 */
const DOCS_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
};
const DOCS_PAGE = renderDocsPage();

const FILE_EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/bmp': 'bmp', 'image/gif': 'gif' };

/** What the page shows for `?id=`: the image's state, or a message instead of an error page. */
async function pageStatus(master: MasterGateway, rawId: string | undefined, apiKeys: boolean): Promise<PageStatus | undefined> {
  if (rawId === undefined || rawId === '') return undefined;
  const parsed = TaskIdSchema.safeParse(rawId);
  if (!parsed.success) return { kind: 'problem', message: `"${rawId.slice(0, 100)}" is not an image id.`, retry: false };
  const id = parsed.data;
  // A link cannot carry the key (and a key in the URL would end up in logs and histories).
  if (apiKeys) return { kind: 'locked', id };
  try {
    return { kind: 'task', status: await master.status(id) };
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.status === 404) return { kind: 'problem', id, message: `There is no image with id ${id}.`, retry: false };
    if (err.status === 503) return { kind: 'problem', id, message: 'pixelmill cannot be reached right now; trying again.', retry: true };
    throw err;
  }
}

export function mountFrontendRoutes(
  router: Router,
  { master, access, apiKeys, maxUploadBytes, streamUploadsFromBytes, imageLimits, refreshSeconds }: FrontendRouteDeps,
): void {
  // Before the contract's routes and their body parsers: who may upload is decided before the body is read.
  router.post(frontendContract.newImage.path, access.admitUpload);
  router.get(frontendContract.isReady.path, access.requireKey);
  router.get(frontendContract.get.path, access.requireKey);

  mountContract(
    router,
    frontendContract,
    {
      page: async ({ query }) => ({
        status: 200,
        body: renderUploadPage({ maxUploadBytes, refreshSeconds, apiKeys, status: await pageStatus(master, query.id, apiKeys) }),
        headers: PAGE_HEADERS,
      }),

      docs: () => ({ status: 200, body: DOCS_PAGE, headers: DOCS_HEADERS }),

      newImage: async ({ query, headers, body }, req, res) => {
        // A multipart form carries the image in req.file and its fields in req.body; a raw upload is `body`.
        const form = req.is('multipart/form-data') ? (req.body as Record<string, unknown>) : undefined;
        const client = access.clientOf(res);
        const op: Operation = form?.op !== undefined ? parseOperation(form.op) : (query.op ?? DEFAULT_OPERATION);
        // A large raw upload was left unread: it is checked by its head and streams on to master.
        const streamed = form ? undefined : streamedUploadLength(req);
        const upload =
          streamed === undefined
            ? checkUpload(form ? req.file?.buffer : body, op, imageLimits)
            : await checkUploadStream(req, streamed, op, imageLimits);
        // Every upload goes with a key, the client's or a new one, so master can be asked again safely.
        const idempotencyKey = headers['idempotency-key'] ?? randomUUID();
        const accepted = await master.submit(upload, { owner: client.owner, idempotencyKey });
        // A browser form without JavaScript asks for HTML: send it to the page that shows the image's state.
        if (req.accepts(['application/json', 'text/html']) === 'text/html') {
          const location = `/?id=${encodeURIComponent(accepted.id)}`;
          return {
            status: 303,
            body: `See ${location}\n`,
            headers: { location, 'content-type': 'text/plain; charset=utf-8' },
          };
        }
        return { status: 202, body: accepted };
      },

      isReady: async ({ query }, _req, res) => {
        // A client that hangs up ends its long poll here and at master.
        const owner = access.clientOf(res).owner;
        return { status: 200, body: await master.status(query.id, owner, query.waitMs, hangUpSignal(res)) };
      },

      get: async ({ query }, _req, res) => {
        const result = await master.result(query.id, access.clientOf(res).owner);
        const extension = FILE_EXTENSIONS[result.contentType] ?? 'bin';
        res.status(200).set({
          'content-type': result.contentType,
          'content-disposition': `inline; filename="pixelmill-${query.id}.${extension}"`,
          ...(result.size ? { 'content-length': result.size } : {}),
        });
        await pipeline(result.stream, res);
      },
    },
    {
      bodyParsers: {
        newImage: uploadParser({ maxBytes: maxUploadBytes, streamFromBytes: streamUploadsFromBytes }),
      },
    },
  );
}
