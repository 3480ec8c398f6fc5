// Staff image management and the media files themselves. Uploads are multipart (`image` file,
// `alt_text`, `is_main`); a product image may instead be an external URL sent as JSON
// (`image_url`). The staff check runs in onRequest, before a byte of the body is read.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ctxOf } from '../../infra/http/context.ts';
import { AppError, fieldError, type FieldErrors } from '../../infra/http/errors.ts';
import { ErrorBody, IdParams, NoContent } from '../../infra/http/schema.ts';
import { unlimited } from '../../infra/limits/plugin.ts';
import { IMMUTABLE, PRIVATE_PREFIX } from '../../infra/media/storage.ts';
import { notModified } from '../../infra/cache/response-cache.ts';
import { staffOnly } from '../accounts/auth.ts';
import { Category, ProductImage } from '../catalog/catalog.schemas.ts';
import * as media from './media.service.ts';

const tags = ['media'];
const security = [{ bearerAuth: [] }];
const refused = { 401: ErrorBody, 403: ErrorBody };
const ImageParams = Type.Object({ id: IdParams.properties.id, imageId: IdParams.properties.id });
const ALT_MAX = 200;
const URL_MAX = 500;

const UPLOAD_DOC = 'multipart/form-data with an `image` file (JPEG, PNG, WebP, AVIF or GIF, checked from its bytes), optional `alt_text` and `is_main`';

interface UploadForm {
  bytes?: Buffer;
  fields: Record<string, unknown>;
}

/** The request's upload: the `image` file and the other fields, multipart or (without a file) JSON/form. */
async function readUpload(request: FastifyRequest): Promise<UploadForm> {
  if (!request.isMultipart()) {
    const body = request.body;
    if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) throw new AppError('bad_request');
    return { fields: (body ?? {}) as Record<string, unknown> };
  }
  const fields: Record<string, unknown> = {};
  let bytes: Buffer | undefined;
  const maxBytes = request.server.config.media.maxUploadBytes;
  try {
    for await (const part of request.parts({ limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 4096, parts: 11 } })) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') {
          part.file.resume();
          throw fieldError(part.fieldname, 'Unexpected file: send the image in the `image` field.');
        }
        bytes = await part.toBuffer();
      } else fields[part.fieldname] = part.value;
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new AppError('payload_too_large', { message: `The image is larger than ${(maxBytes / 1048576).toFixed(0)} MiB.` });
    if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') throw new AppError('payload_too_large', { message: 'Too many parts: send one `image` file and its fields.' });
    // Anything else the parser says (no boundary, a body cut short, a bad part) is the client's.
    throw new AppError('bad_request', { message: 'The multipart body is malformed.' });
  }
  return { bytes, fields };
}

function text(fields: Record<string, unknown>, name: string, max: number, errors: FieldErrors): string | undefined {
  const v = fields[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') errors[name] = ['Not a valid string.'];
  else if (v.length > max) errors[name] = [`Ensure this field has no more than ${max} characters.`];
  else return v.trim();
  return undefined;
}

function flag(fields: Record<string, unknown>, name: string, errors: FieldErrors): boolean | undefined {
  const v = fields[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (v === true || v === false) return v;
  const s = String(v).toLowerCase();
  if (['true', '1', 'on', 'yes'].includes(s)) return true;
  if (['false', '0', 'off', 'no'].includes(s)) return false;
  errors[name] = ['Must be a valid boolean.'];
  return undefined;
}

function throwIfAny(errors: FieldErrors): void {
  if (Object.keys(errors).length) throw new AppError('bad_request', { errors });
}

export const mediaRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/api/products/:id/images/', {
    schema: {
      tags,
      security,
      summary: 'Add an image to a product (staff)',
      description: `${UPLOAD_DOC}; or JSON \`{image_url, alt_text, is_main}\` for an image hosted elsewhere. WebP and JPEG variants are made at once, AVIF within seconds. The first image of a product becomes its main one.`,
      params: IdParams,
      response: { 201: ProductImage, 400: ErrorBody, ...refused, 404: ErrorBody, 413: ErrorBody },
    },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      const { bytes, fields } = await readUpload(request);
      const errors: FieldErrors = {};
      const altText = text(fields, 'alt_text', ALT_MAX, errors) ?? '';
      const isMain = flag(fields, 'is_main', errors);
      const imageUrl = bytes ? undefined : text(fields, 'image_url', URL_MAX, errors);
      if (!bytes && !errors.image_url) {
        if (!imageUrl) errors.image = ['No file was submitted.'];
        else if (!/^https?:\/\/[^\s/]+/i.test(imageUrl)) errors.image_url = ['Enter a valid URL.'];
      }
      throwIfAny(errors);
      const image = await media.addProductImage(ctxOf(request), media.mediaDeps(app), request.params.id, { bytes, imageUrl, altText, isMain });
      return reply.code(201).send(image);
    },
  });

  app.patch('/api/products/:id/images/:imageId/', {
    schema: {
      tags,
      security,
      summary: "Change an image's alt text or make it the main one (staff)",
      params: ImageParams,
      body: Type.Object({ alt_text: Type.Optional(Type.String({ maxLength: ALT_MAX })), is_main: Type.Optional(Type.Boolean()) }),
      response: { 200: ProductImage, 400: ErrorBody, ...refused, 404: ErrorBody },
    },
    onRequest: staffOnly,
    handler: async (request) =>
      media.updateProductImage(ctxOf(request), request.params.id, request.params.imageId, { altText: request.body.alt_text?.trim(), isMain: request.body.is_main }),
  });

  app.delete('/api/products/:id/images/:imageId/', {
    schema: { tags, security, summary: 'Remove an image; its files go in a background job (staff)', params: ImageParams, response: { 204: NoContent, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      await media.deleteProductImage(ctxOf(request), media.mediaDeps(app), request.params.id, request.params.imageId);
      return reply.code(204).send(null);
    },
  });

  app.put('/api/products/categories/:id/image/', {
    schema: { tags, security, summary: "Upload or replace a category's image (staff)", description: UPLOAD_DOC, params: IdParams, response: { 200: Category, 400: ErrorBody, ...refused, 404: ErrorBody, 413: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request) => {
      const { bytes } = await readUpload(request);
      if (!bytes) throw fieldError('image', 'No file was submitted.');
      return media.setCategoryImage(ctxOf(request), media.mediaDeps(app), request.params.id, bytes);
    },
  });

  app.delete('/api/products/categories/:id/image/', {
    schema: { tags, security, summary: "Remove a category's image (staff)", params: IdParams, response: { 204: NoContent, ...refused, 404: ErrorBody } },
    onRequest: staffOnly,
    handler: async (request, reply) => {
      await media.setCategoryImage(ctxOf(request), media.mediaDeps(app), request.params.id, null);
      return reply.code(204).send(null);
    },
  });

  // The files. Names carry their content's hash, so each is cached forever wherever it lands;
  // with USE_CDN the API hands out CDN URLs and this route is the CDN's origin.
  app.get('/media/*', {
    // Never limited; no per-origin CORS headers (cors.ts): any origin may read, set below.
    config: { ...unlimited, cors: false },
    schema: { hide: true },
    handler: async (request: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) => {
      const key = request.params['*'];
      // Uploads as they came (with their metadata) are kept, never served.
      if (key.startsWith(PRIVATE_PREFIX)) throw new AppError('not_found');
      // A key that could not be a file names nothing (both stores answer undefined).
      const object = await app.media.get(key);
      if (!object) throw new AppError('not_found');
      const etag = `"${key.slice(key.lastIndexOf('/') + 1)}"`;
      reply.header('cache-control', IMMUTABLE);
      reply.header('etag', etag);
      reply.header('last-modified', object.lastModified.toUTCString());
      // Images are shown by storefronts on other origins, and may be drawn on their canvases.
      reply.header('cross-origin-resource-policy', 'cross-origin');
      reply.header('access-control-allow-origin', '*');
      if (notModified(request.headers['if-none-match'], etag)) {
        object.body.destroy();
        return reply.code(304).send();
      }
      reply.type(object.contentType);
      reply.header('content-length', object.size);
      return reply.send(object.body);
    },
  });
};
