import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import { frontendContract, IdempotencyHeadersSchema, TaskIdSchema, type Accepted } from '@pixelmill/contracts';
import { AppError, hangUpSignal, invalidRequest, metered, mountContract, readStreamedBody } from '@pixelmill/kit';
import type { MasterGateway } from '../data-access/master-gateway';
import {
  checkUpload,
  checkUploadStream,
  parseOperationRequest,
  requestKnown,
  sameRequest,
  type CheckedUpload,
  type ImageLimits,
  type OperationFields,
  type OperationRequest,
} from '../domain/image-upload';
import { renderDocsPage } from '../views/docs-page';
import { renderUploadPage, type PageStatus } from '../views/upload-page';
import type { ClientAccess } from './client-access';
import { docsContentSecurityPolicy } from './security-headers';
import { formLimit, uploadParser, type FormImage, type PassOn } from './upload-parser';

export interface FrontendRouteDeps {
  master: MasterGateway;
  access: ClientAccess;
  /** Whether the API needs keys: the page then asks for one. */
  apiKeys: boolean;
  maxUploadBytes: number;
  /** Raw uploads declaring no more bytes than this are read whole, so that a lost answer from master can be asked for again. */
  streamUploadsFromBytes: number;
  imageLimits: ImageLimits;
  refreshSeconds: number;
}

/** The CSPs are helmet's (see security-headers.ts): the page's on every answer, the docs page's on /docs. */
const PAGE_HEADERS = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' };
const DOCS_HEADERS = { 'content-type': 'text/html; charset=utf-8' };
const DOCS_PAGE = renderDocsPage();

/** A form's op, width and height fields, each over the query's (see parseOperationRequest). */
const formRequest = (req: Request, query: OperationFields): OperationRequest => parseOperationRequest(req.body as OperationFields, query);

/** The request a form's image was passed on with, before the form's later fields were read (see passOn). */
const passedOnRequest = (res: Response): OperationRequest | undefined =>
  (res.locals as { passedOnRequest?: OperationRequest }).passedOnRequest;

const FILE_EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/bmp': 'bmp',
  'image/gif': 'gif',
  'image/tiff': 'tiff',
};

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
  /** Sends a checked upload to master, with the client's key or a new one, so master can be asked again safely. */
  const submit = (req: Request, res: Response, upload: CheckedUpload): Promise<Accepted> => {
    const headers = IdempotencyHeadersSchema.safeParse(req.headers);
    if (!headers.success) throw invalidRequest(headers.error, 'headers');
    const idempotencyKey = headers.data['idempotency-key'] ?? randomUUID();
    return master.submit(upload, { owner: access.clientOf(res).owner, idempotencyKey });
  };

  /**
   * A form's image goes on to master as it arrives when what it asks for is known by then: its op
   * field, and width and/or height for resize, came before the image (as the upload page sends
   * them); else it is held until the form ends, since they may still come after it. A field after
   * an image passed on may not change what it asks for (checked when the form ends).
   */
  const passOn: PassOn = async (req, image) => {
    const res = req.res!;
    const query = req.query as OperationFields;
    if (!requestKnown(req.body as OperationFields, query)) return undefined;
    const request = formRequest(req, query);
    const checked = await checkUploadStream(image, undefined, request, imageLimits);
    (res.locals as { passedOnRequest?: OperationRequest }).passedOnRequest = request;
    return (forward) => submit(req, res, { ...checked, stream: forward, length: undefined });
  };

  // Before the contract's routes and their body parsers: who may upload is decided before the body is read.
  router.post(frontendContract.newImage.path, access.admitUpload);
  router.get(frontendContract.isReady.path, access.requireKey);
  router.get(frontendContract.get.path, access.requireKey);
  // Swagger UI needs a looser policy than the one every answer got first.
  router.get(frontendContract.docs.path, docsContentSecurityPolicy());

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

      newImage: async ({ query, body }, req, res) => {
        // A form's image went on to master as it arrived (or was held, see passOn); a raw upload is `body`, unread.
        const image = req.is('multipart/form-data') ? (req.file as unknown as FormImage | undefined) : undefined;
        let accepted: Accepted;
        if (image && 'forward' in image) {
          // The whole form is read and valid (a second op field would not be), and asks for what
          // the image went on with: the image's end goes on, and master can answer. Else the upload
          // is called off (the forward stream is destroyed when the answer ends).
          const request = formRequest(req, query);
          const passed = passedOnRequest(res);
          if (passed && !sameRequest(request, passed)) {
            throw new AppError('bad_request', 400, 'the fields op, width and height must all come before the image in the form');
          }
          image.forward.end();
          accepted = (await image.answer) as Accepted;
        } else if (image) {
          accepted = await submit(req, res, checkUpload(image.buffer, formRequest(req, query), imageLimits));
        } else if (req.is('multipart/form-data')) {
          accepted = await submit(req, res, checkUpload(undefined, formRequest(req, query), imageLimits));
        } else {
          const request = parseOperationRequest({}, query);
          const { stream, length, limit } = body;
          // A small upload is held so that master can be asked again; any other streams on, checked
          // by its head (and counted, when it comes without a length).
          const upload =
            length !== undefined && length <= streamUploadsFromBytes
              ? checkUpload(await readStreamedBody(stream, length, limit), request, imageLimits)
              : await checkUploadStream(length === undefined ? metered(stream, limit) : stream, length, request, imageLimits);
          accepted = await submit(req, res, upload);
        }
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
      bodyParsers: { newImage: uploadParser({ maxBytes: maxUploadBytes, passOn }) },
      binaryLimit: maxUploadBytes,
      // A form may carry its fields besides the image.
      streamLimits: { newImage: (req) => (req.is('multipart/form-data') ? formLimit(maxUploadBytes) : maxUploadBytes) },
    },
  );
}
