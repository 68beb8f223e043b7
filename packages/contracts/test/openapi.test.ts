import { readFileSync } from 'node:fs';
import path from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { OpenAPIV3_1 } from 'openapi-types';
import {
  ErrorBodySchema,
  IMAGE_TYPES,
  OPERATIONS,
  OPERATION_DESCRIPTIONS,
  SERVICE_CONTRACTS,
  SERVICE_NAMES,
  commonContract,
  createOpenApiDocument,
  defineRoute,
  isBinary,
  KvListQuerySchema,
  masterAdminContract,
  MAX_RESIZE_SIDE,
  openApiPath,
  serviceOpenApiDocument,
  type JsonObject,
  type OpenApiDocument,
  type Route,
} from '../src';
import { documentedRoutes } from '../src/testing';

const { version } = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };

/** The validator dereferences in place: it gets a copy. */
const validate = (document: OpenApiDocument) => SwaggerParser.validate(structuredClone(document) as unknown as OpenAPIV3_1.Document);

type Operation = { [key: string]: unknown; responses: Record<string, JsonObject>; parameters?: JsonObject[] };
const operationOf = (document: OpenApiDocument, route: Route): Operation =>
  document.paths[openApiPath(route.path)]![route.method.toLowerCase()] as Operation;

describe('OpenAPI documents', () => {
  describe.each(SERVICE_NAMES)('of %s', (service) => {
    const document = serviceOpenApiDocument(service, version);
    const routes: Record<string, Route> = { ...commonContract, ...SERVICE_CONTRACTS[service] };

    it('when validated as OpenAPI 3.1, then it passes', async () => {
      expect(document.openapi).toBe('3.1.0');
      await expect(validate(document)).resolves.toBeDefined();
    });

    it('when built, then the package ships the same document as openapi/<service>.json', () => {
      // Through the package's own export, as another project imports it.
      const shipped = JSON.parse(readFileSync(require.resolve(`@pixelmill/contracts/openapi/${service}.json`), 'utf8')) as unknown;
      expect(shipped).toEqual(document);
    });

    it('when read, then it has every route of the contract and the common ones, and no other', () => {
      const expected = Object.values(routes)
        .map((route) => `${route.method} ${route.path}`)
        .sort();
      expect(documentedRoutes(document)).toEqual(expected);
      expect(documentedRoutes(document)).toEqual(expect.arrayContaining(['GET /healthz', 'GET /readyz', 'GET /openapi.json']));
    });

    it('when read, then each operation has its summary and every answer of the contract by status', () => {
      for (const [name, route] of Object.entries(routes)) {
        const operation = operationOf(document, route);
        expect(operation.operationId).toBe(name);
        expect(operation.summary).toBe(route.summary);
        const statuses = Object.keys(route.responses);
        // The router itself answers 401 to a guarded route called without its token.
        if (route.auth === 'internal' || route.auth === 'worker') statuses.push('401');
        expect(Object.keys(operation.responses).sort()).toEqual([...new Set(statuses)].sort());
        for (const [status, spec] of Object.entries(route.responses)) {
          const content = operation.responses[status]!.content as Record<string, JsonObject> | undefined;
          if (spec === ErrorBodySchema) {
            expect(content).toEqual({ 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } });
          } else if (isBinary(spec)) {
            expect(Object.keys(content!)).toEqual([...IMAGE_TYPES]);
          }
        }
      }
    });

    it('when read, then every path parameter is declared, in OpenAPI form', () => {
      for (const route of Object.values(routes)) {
        const names = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => match[1]);
        const declared = (operationOf(document, route).parameters ?? []).filter((p) => p.in === 'path');
        expect(declared.map((p) => p.name)).toEqual(names);
        expect(declared.every((p) => p.required === true)).toBe(true);
      }
    });

    it('when a route needs a token, then the operation names its bearer scheme', () => {
      for (const route of Object.values(routes)) {
        const security = operationOf(document, route).security;
        if (route.auth === 'internal') expect(security).toEqual([{ internalToken: [] }]);
        else if (route.auth === 'worker') expect(security).toEqual([{ workerToken: [] }]);
        else if (route.auth === 'apiKey') expect(security).toEqual([{ apiKey: [] }, { apiKeyBearer: [] }]);
        else expect(security).toBeUndefined();
      }
      const referenced = new Set(
        Object.values(routes).flatMap((route) =>
          ((operationOf(document, route).security ?? []) as JsonObject[]).flatMap((entry) => Object.keys(entry)),
        ),
      );
      expect(Object.keys(document.components.securitySchemes).sort()).toEqual([...referenced].sort());
    });
  });

  it('when /metrics is described, then its answer is Prometheus text, not JSON, for the internal token', () => {
    for (const service of SERVICE_NAMES) {
      const operation = serviceOpenApiDocument(service, version).paths['/metrics']!.get!;
      const ok = (operation.responses as Record<string, JsonObject>)['200']!;
      expect(Object.keys(ok.content as JsonObject)).toEqual(['text/plain; version=0.0.4; charset=utf-8']);
      expect(operation.security).toEqual([{ internalToken: [] }]);
    }
  });

  it("when master's document is read, then it has the admin routes, each behind the internal token, and answering full task records", () => {
    const document = serviceOpenApiDocument('master', version);
    const admin = Object.values(masterAdminContract).map((route) => `${route.method} ${route.path}`);
    expect(admin.sort()).toEqual([
      'DELETE /admin/tasks/:id',
      'GET /admin/tasks',
      'POST /admin/tasks/:id/cancel',
      'POST /admin/tasks/:id/retry',
    ]);
    for (const route of Object.values(masterAdminContract)) {
      const operation = operationOf(document, route);
      expect(operation.security).toEqual([{ internalToken: [] }]);
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['400', '401']));
    }
    // Named schemas are components where they are a whole body; inside the page the tasks are inline.
    const page = document.components.schemas.AdminTaskPage as { properties: { tasks: { items: { required: string[] } } } };
    const fields = ['id', 'op', 'state', 'attempt', 'error', 'owner', 'createdAt', 'updatedAt', 'sourceBytes', 'resultBytes'];
    expect(page.properties.tasks.items.required).toEqual(expect.arrayContaining([...fields, 'sourceStored', 'expiredAt']));
    expect(operationOf(document, masterAdminContract.retryTask).responses['200']).toMatchObject({
      content: { 'application/json': { schema: { $ref: '#/components/schemas/TaskDetail' } } },
    });
    const limit = (operationOf(document, masterAdminContract.listTasks).parameters ?? []).find((p) => p.name === 'limit');
    expect(limit).toMatchObject({ in: 'query', schema: { maximum: 1000, default: 100 } });
  });

  it('when a document is broken, then the validator refuses it (so it does check)', async () => {
    const document = serviceOpenApiDocument('kv', version);
    const broken = structuredClone(document);
    // A path parameter must be required.
    (broken.paths['/keys/{key}']!.get as { parameters: JsonObject[] }).parameters[0]!.required = false;
    await expect(validate(broken)).rejects.toThrow();
    const dangling = structuredClone(document);
    delete dangling.components.schemas.ErrorBody;
    await expect(validate(dangling)).rejects.toThrow();
  });

  describe('of the frontend, the public API', () => {
    const document = serviceOpenApiDocument('frontend', version);
    const newImage = document.paths['/newImage']!.post!;

    it('when an upload is described, then it is raw image bytes or a multipart form, and op offers every operation', () => {
      const content = (newImage.requestBody as { content: Record<string, { schema: JsonObject }> }).content;
      expect(content['image/png']!.schema).toMatchObject({ type: 'string', format: 'binary' });
      const form = content['multipart/form-data']!.schema as { properties: Record<string, JsonObject>; required: string[] };
      expect(form.properties.image).toMatchObject({ type: 'string', format: 'binary' });
      expect(form.properties.op!.enum).toEqual([...OPERATIONS]);
      expect(form.required).toEqual(['image']);
      const op = (newImage.parameters as JsonObject[]).find((p) => p.name === 'op' && p.in === 'query');
      expect(op).toMatchObject({ required: false, schema: { enum: [...OPERATIONS], default: 'swap-red-blue' } });
      const key = (newImage.parameters as JsonObject[]).find((p) => p.in === 'header');
      expect(key).toMatchObject({ name: 'idempotency-key', required: false });
    });

    it('when op is described, then the document says what each operation does, in the form and in the query', () => {
      const content = (newImage.requestBody as { content: Record<string, { schema: { properties: Record<string, JsonObject> } }> }).content;
      const query = (newImage.parameters as JsonObject[]).find((p) => p.name === 'op' && p.in === 'query')!;
      for (const described of [content['multipart/form-data']!.schema.properties.op!, query]) {
        for (const op of OPERATIONS) expect(described.description).toContain(`\`${op}\`: ${OPERATION_DESCRIPTIONS[op]}`);
      }
      expect(content['multipart/form-data']!.schema.properties.op!['x-enumDescriptions']).toEqual(OPERATION_DESCRIPTIONS);
    });

    it("when resize's parameters are described, then width and height are bounded integers in the query and in the form, for resize", () => {
      const content = (newImage.requestBody as { content: Record<string, { schema: { properties: Record<string, JsonObject> } }> }).content;
      const form = content['multipart/form-data']!.schema.properties;
      const parameters = newImage.parameters as JsonObject[];
      for (const name of ['width', 'height']) {
        const inQuery = parameters.find((p) => p.name === name && p.in === 'query');
        expect(inQuery).toMatchObject({ required: false, schema: { type: 'integer', minimum: 1, maximum: MAX_RESIZE_SIDE } });
        expect(inQuery!.description).toMatch(/op=resize/);
        expect(form[name]).toMatchObject({ type: 'integer', minimum: 1, maximum: MAX_RESIZE_SIDE });
        expect(form[name]!.description).toMatch(/before the image/);
      }
      const work = serviceOpenApiDocument('master', version).components.schemas.Work as { properties: Record<string, JsonObject> };
      expect(work.properties.params).toMatchObject({ type: 'object', properties: { width: { maximum: MAX_RESIZE_SIDE } } });
    });

    it('when pages are described, then they are HTML, and the see-other answer plain text', () => {
      for (const path of ['/', '/docs']) {
        const ok = (document.paths[path]!.get!.responses as Record<string, JsonObject>)['200']!;
        expect(Object.keys(ok.content as JsonObject)).toEqual(['text/html']);
      }
      expect(Object.keys((newImage.responses as Record<string, JsonObject>)['303']!.content as JsonObject)).toEqual(['text/plain']);
    });

    it('when the API key is described, then it goes in X-API-Key or as a bearer token; the internal token guards the common /authz and /metrics only', () => {
      expect(document.components.securitySchemes).toEqual({
        apiKey: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'x-api-key' }),
        apiKeyBearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
        // Only for the common GET /authz and GET /metrics, which every server documents.
        internalToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      });
      const internal = Object.entries(document.paths).filter(([, item]) =>
        Object.values(item).some((operation) => JSON.stringify(operation.security ?? []).includes('internalToken')),
      );
      expect(internal.map(([path]) => path)).toEqual(['/authz', '/metrics']);
    });

    it('when the query of isReady is described, then waitMs is optional with its default and bounds', () => {
      const parameters = document.paths['/image/isReady']!.get!.parameters as JsonObject[];
      expect(parameters).toEqual([
        expect.objectContaining({ name: 'id', in: 'query', required: true }),
        expect.objectContaining({
          name: 'waitMs',
          in: 'query',
          required: false,
          schema: expect.objectContaining({ default: 0, maximum: 30_000 }),
        }),
      ]);
    });
  });

  it('when a named schema is both a request and an answer and reads differently as each, then the request form has its own name', async () => {
    // A default makes the field optional in a request and always there in an answer.
    const document = createOpenApiDocument({
      service: 'echo',
      version,
      contract: {
        echo: defineRoute({
          method: 'POST',
          path: '/echo',
          summary: 'Echo',
          body: KvListQuerySchema,
          responses: { 200: KvListQuerySchema },
        }),
      },
    });
    const operation = document.paths['/echo']!.post! as { requestBody: JsonObject; responses: Record<string, JsonObject> };
    expect(operation.requestBody).toEqual({
      required: true,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/KvListQueryInput' } } },
    });
    expect(document.components.schemas.KvListQueryInput).not.toHaveProperty('required');
    expect(document.components.schemas.KvListQuery).toHaveProperty('required', ['prefix', 'limit']);
    await expect(validate(document)).resolves.toBeDefined();
  });

  it("when /readyz is described, then each state of a check is listed with what it means, and /authz with the old servers' 404", () => {
    const document = serviceOpenApiDocument('master', version);
    const ready = document.components.schemas.Ready as { properties: { checks: { additionalProperties: JsonObject } } };
    const state = ready.properties.checks.additionalProperties;
    expect(state.enum).toEqual(['ok', 'failing', 'unauthorized']);
    for (const name of ['ok', 'failing', 'unauthorized']) expect(state.description).toContain(`\`${name}\`:`);
    const authz = operationOf(document, commonContract.authz);
    expect(authz.security).toEqual([{ internalToken: [] }]);
    expect(Object.keys(authz.responses)).toEqual(['204', '401', '404']);
    expect(String(authz.summary)).toMatch(/older than this route answers 404/);
  });

  it('when a path has parameters, then they become OpenAPI template segments', () => {
    expect(openApiPath('/objects/:state/:key')).toBe('/objects/{state}/{key}');
    expect(openApiPath('/keys')).toBe('/keys');
  });
});
