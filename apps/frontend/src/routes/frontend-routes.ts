import type { Router } from 'express';
import { DEFAULT_OPERATION, frontendContract, TaskIdSchema, type Operation } from '@pixelmill/contracts';
import { AppError, mountContract } from '@pixelmill/kit';
import type { MasterGateway } from '../data-access/master-gateway';
import { checkUpload, parseOperation } from '../domain/image-upload';
import { renderUploadPage, type PageStatus } from '../views/upload-page';
import { uploadParser } from './upload-parser';

export interface FrontendRouteDeps {
  master: MasterGateway;
  maxUploadBytes: number;
  refreshSeconds: number;
}

/** The page loads its script and style from us only; nothing inline, nothing external. */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const FILE_EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/bmp': 'bmp', 'image/gif': 'gif' };

/** What the page shows for `?id=`: the image's state, or a message instead of an error page. */
async function pageStatus(master: MasterGateway, rawId: string | undefined): Promise<PageStatus | undefined> {
  if (rawId === undefined || rawId === '') return undefined;
  const parsed = TaskIdSchema.safeParse(rawId);
  if (!parsed.success) return { kind: 'problem', message: `"${rawId.slice(0, 100)}" is not an image id.`, retry: false };
  const id = parsed.data;
  try {
    return { kind: 'task', status: await master.status(id) };
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.status === 404) return { kind: 'problem', id, message: `There is no image with id ${id}.`, retry: false };
    if (err.status === 503) return { kind: 'problem', id, message: 'pixelmill cannot be reached right now; trying again.', retry: true };
    throw err;
  }
}

export function mountFrontendRoutes(router: Router, { master, maxUploadBytes, refreshSeconds }: FrontendRouteDeps): void {
  mountContract(
    router,
    frontendContract,
    {
      page: async ({ query }) => ({
        status: 200,
        body: renderUploadPage({ maxUploadBytes, refreshSeconds, status: await pageStatus(master, query.id) }),
        headers: PAGE_HEADERS,
      }),

      newImage: async ({ query, body }, req) => {
        // A multipart form carries the image in req.file and its fields in req.body; a raw upload is `body`.
        const form = req.is('multipart/form-data') ? (req.body as Record<string, unknown>) : undefined;
        const op: Operation = form?.op !== undefined ? parseOperation(form.op) : (query.op ?? DEFAULT_OPERATION);
        const upload = checkUpload(form ? req.file?.buffer : body, op);
        const accepted = await master.submit(upload);
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

      isReady: async ({ query }) => ({ status: 200, body: await master.status(query.id) }),

      get: async ({ query }) => {
        const result = await master.result(query.id);
        const extension = FILE_EXTENSIONS[result.contentType] ?? 'bin';
        return {
          status: 200,
          body: result.bytes,
          headers: {
            'content-type': result.contentType,
            'content-disposition': `inline; filename="pixelmill-${query.id}.${extension}"`,
            'x-content-type-options': 'nosniff',
          },
        };
      },
    },
    { bodyParsers: { newImage: uploadParser(maxUploadBytes) } },
  );
}
