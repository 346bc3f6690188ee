// A repository's objects in a bucket of an S3-compatible server (AWS, Ceph radosgw, MinIO, ...):
// the name "data/ab/x.pack" is the key "<prefix>/data/ab/x.pack". One PUT is atomic on S3 (readers
// see the old object or the new one), so no write-aside is needed; objects over MULTIPART_THRESHOLD
// go up in parts, and become visible only when the upload is completed (an interrupted one stays in
// the bucket until aborted: strays() lists it). create() spools to a local temporary file and uploads
// on commit(). An object's version is its ETag. Tested against Ceph radosgw 16
// (test/unit/storage/conformance.test.ts, scripts/ceph.sh).
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FILE_MODE, readFully, writeFully } from '../core/fsutil';
import { describeS3, parseS3Location, S3Location } from './location';
import { checkName, checkPrefix, checkRange, isValidName, ObjectInfo, ObjectWriter, PutOptions, Storage, StorageError, Stray } from './storage';

const MiB = 1024 * 1024;

// The SDK warns on every run under Node 20 that its releases from January 2027 will need Node 22:
// devsnap pins its version (package.json), so the warning is ours to act on, not the user's.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface S3StorageOptions {
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1 (what radosgw and MinIO accept by default). */
  region?: string;
  /** Default: the SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws files, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Attempts per request, retries with the SDK's standard exponential backoff and jitter (default 6). */
  maxAttempts?: number;
  /** Objects larger than this are uploaded in parts (default 64 MiB). */
  multipartThreshold?: number;
  /** Size of each part but the last (default 16 MiB; S3 wants at least 5 MiB). */
  partSize?: number;
  /** A request that has not answered in this long is abandoned and retried (default 120 s). */
  requestTimeoutMs?: number;
  /** Where packs are spooled before their upload (default /dev/shm, else TMPDIR: see create()). */
  spoolDir?: string;
}

// Node's network failures that mean "the server did not answer", after the SDK's retries.
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);
const DENIED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden', 'AllAccessDisabled', 'InvalidToken', 'ExpiredToken']);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  cause?: unknown;
}

export class S3Storage implements Storage {
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;
  private readonly attempts: number;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly spoolDir: string;

  /** `location`: "s3:https://host[:port]/bucket[/prefix]" or one parsed by parseS3Location. */
  constructor(location: string | S3Location, opts: S3StorageOptions = {}) {
    const loc = typeof location === 'string' ? parseS3Location(location) : location;
    this.location = describeS3(loc);
    this.bucket = loc.bucket;
    this.keyPrefix = loc.prefix ? `${loc.prefix}/` : '';
    this.attempts = opts.maxAttempts ?? 6;
    this.threshold = opts.multipartThreshold ?? 64 * MiB;
    this.partSize = Math.max(opts.partSize ?? 16 * MiB, 5 * MiB);
    this.spoolDir = opts.spoolDir ?? (process.env.TMPDIR === undefined && fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
    this.client = new S3Client({
      endpoint: loc.endpoint,
      region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: true, // bucket in the path: works with any host name or IP, no wildcard DNS needed
      credentials: opts.credentials,
      // The SDK's default adds CRC32 trailers (aws-chunked bodies) that radosgw 16 and other servers refuse (411).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      retryMode: 'standard',
      maxAttempts: this.attempts,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: opts.requestTimeoutMs ?? 120_000 },
    });
  }

  /** Closes the client's idle connections (a process that is done with the storage can then exit). */
  close(): void {
    this.client.destroy();
  }

  private key(name: string): string {
    return this.keyPrefix + checkName(name);
  }

  /** The S3 error as a StorageError where it has a kind; other errors pass on with the location and the server's code. */
  private fail(err: unknown, what: string, ifAbsent = false): never {
    if (err instanceof StorageError) throw err;
    const e = (err ?? {}) as SdkError;
    const status = e.$metadata?.httpStatusCode;
    const name = e.name ?? '';
    const detail = `${name || e.code || 'error'}${status ? ` (HTTP ${status})` : ''}${e.message && e.message !== name ? `: ${e.message}` : ''}`;
    if (name === 'NoSuchBucket') throw new StorageError('not-found', `${this.location}: the bucket "${this.bucket}" does not exist (the first snapshot creates it).`);
    if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') throw new StorageError('not-found', `${this.location}: there is no object ${what}.`);
    if (ifAbsent && (status === 412 || status === 409 || name === 'PreconditionFailed')) throw new StorageError('exists', `${this.location}: ${what} exists already (it was written with ifAbsent).`);
    if (status === 401 || status === 403 || DENIED.has(name) || name === 'CredentialsProviderError') {
      throw new StorageError(
        'denied',
        `${this.location} refused ${what}: ${detail}. Check the access key and secret (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE and ~/.aws/credentials) and that they may use the bucket "${this.bucket}".`,
      );
    }
    const network = NETWORK.has(e.code ?? '') || NETWORK.has((e.cause as SdkError)?.code ?? '') || name === 'TimeoutError' || name === 'RequestTimeout';
    if (network || (status !== undefined && (status >= 500 || status === 408 || status === 429))) {
      const tries = e.$metadata?.attempts ?? this.attempts;
      throw new StorageError(
        'unavailable',
        `${this.location} did not serve ${what} (${tries} attempt${tries === 1 ? '' : 's'}, last: ${detail}). Check the server's address and that it is running; nothing was lost, try again later.`,
      );
    }
    throw Object.assign(new Error(`${this.location}: ${what} failed: ${detail}`), { cause: err });
  }

  async get(name: string): Promise<Buffer> {
    return this.read(this.key(name), name);
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    const key = this.key(name);
    checkRange(offset, length);
    if (length === 0) {
      if (!(await this.stat(name))) this.fail({ name: 'NotFound' }, name);
      return Buffer.alloc(0);
    }
    try {
      return await this.read(key, name, `bytes=${offset}-${offset + length - 1}`);
    } catch (err) {
      // 416: the range starts at or past the end; the contract's answer is the empty tail, if the object exists.
      if ((err as SdkError).$metadata?.httpStatusCode !== 416 && (err as SdkError).name !== 'InvalidRange') throw err;
      if (!(await this.stat(name))) this.fail({ name: 'NotFound' }, name);
      return Buffer.alloc(0);
    }
  }

  /** GET with the body read in full; the SDK retries until the headers, this also retries a body cut off mid-way. */
  private async read(key: string, name: string, range?: string): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }));
      } catch (err) {
        if ((err as SdkError).$metadata?.httpStatusCode === 416 || (err as SdkError).name === 'InvalidRange') throw err; // getRange answers it
        return this.fail(err, name);
      }
      try {
        const bytes = await res.Body!.transformToByteArray();
        const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        if (res.ContentLength !== undefined && body.length !== res.ContentLength) throw Object.assign(new Error(`got ${body.length} of ${res.ContentLength} bytes`), { code: 'ECONNRESET' });
        return body;
      } catch (err) {
        if (attempt >= this.attempts) return this.fail(err, name);
        await sleep(Math.min(20_000, 100 * 2 ** attempt * Math.random()));
      }
    }
  }

  async put(name: string, data: Buffer, opts: PutOptions = {}): Promise<{ size: number; version: string }> {
    const version = await this.upload(this.key(name), name, data.length, async (start, end) => data.subarray(start, end), opts.ifAbsent);
    // After the write: an object store has no step between "written" and "visible" to call it in.
    await opts.onVersion?.({ size: data.length, version });
    return { size: data.length, version };
  }

  /** The ETag, the object's version, without its quotes (servers do not all quote it alike in headers and in listings). */
  private version(etag: string | undefined, what: string): string {
    if (!etag) throw new Error(`${this.location} answered ${what} without an ETag, which devsnap needs as the object's version; use a server that gives one (every S3-compatible one should).`);
    return etag.replace(/^"(.*)"$/, '$1');
  }

  /** `size` bytes that `part` reads, uploaded under `key`: one PUT up to the threshold, else in parts. Returns the version. */
  private async upload(key: string, name: string, size: number, part: (start: number, end: number) => Promise<Buffer>, ifAbsent = false): Promise<string> {
    if (size > this.threshold) return this.putParts(key, name, size, part, ifAbsent);
    const data = await part(0, size);
    try {
      const res = await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: data, ContentLength: data.length, IfNoneMatch: ifAbsent ? '*' : undefined }));
      return this.version(res.ETag, `the PUT of ${name}`);
    } catch (err) {
      // An ifAbsent PUT whose answer was lost and that the SDK sent again meets its own object: 412 then is success.
      if (ifAbsent && (err as SdkError).$metadata?.httpStatusCode === 412 && ((err as SdkError).$metadata?.attempts ?? 1) > 1) {
        const own = await this.sameAs(name, data);
        if (own) return own.version;
      }
      return this.fail(err, name, ifAbsent);
    }
  }

  private async sameAs(name: string, data: Buffer): Promise<ObjectInfo | null> {
    const st = await this.stat(name);
    return st?.size === data.length && (await this.get(name)).equals(data) ? st : null;
  }

  /**
   * Multipart upload: parts of partSize, read by `part` 4 at a time, then one Complete (the object
   * appears whole, or not at all). On any failure the upload is aborted so its parts do not linger
   * (and cost) in the bucket. ifAbsent: If-None-Match on Complete (AWS honours it; radosgw 16
   * ignores it, so a HEAD checks first).
   */
  private async putParts(key: string, name: string, size: number, part: (start: number, end: number) => Promise<Buffer>, ifAbsent: boolean): Promise<string> {
    if (ifAbsent && (await this.stat(name))) this.fail({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } }, name, true);
    let uploadId: string | undefined;
    try {
      uploadId = (await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }))).UploadId;
      if (!uploadId) throw new Error('the server started a multipart upload without an UploadId');
      const count = Math.ceil(size / this.partSize);
      const etags: string[] = new Array(count);
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < count; i = next++) {
          const body = await part(i * this.partSize, Math.min(size, (i + 1) * this.partSize));
          const res = await this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: body, ContentLength: body.length }));
          if (!res.ETag) throw new Error(`the server accepted part ${i + 1} without an ETag`);
          etags[i] = res.ETag;
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, count) }, worker));
      const res = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
          IfNoneMatch: ifAbsent ? '*' : undefined,
        }),
      );
      if (res.ETag) return this.version(res.ETag, `the completion of ${name}`);
      // radosgw 16 answers Complete with an empty ETag: the object has one, a HEAD gives it.
      const st = await this.stat(name);
      return this.version(st?.version, `the completion of ${name}`);
    } catch (err) {
      if (uploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      return this.fail(err, name, ifAbsent);
    }
  }

  /**
   * Spools to a file, so that a pack is not held in memory while it is written, and uploads it on
   * commit() (in parts when it is over the threshold). The spool is in /dev/shm where there is one
   * (unless TMPDIR says otherwise): a snapshot of the running system writes packs while its
   * filesystems are frozen, and the temporary folder may be on one of them (a write there would wait
   * for the thaw, which waits for the write).
   */
  async create(name: string): Promise<ObjectWriter> {
    const key = this.key(name);
    const spoolDir = this.spoolDir;
    const spool = path.join(spoolDir, `devsnap-s3-${crypto.randomBytes(8).toString('hex')}.spool`);
    const spoolFailed = (err: unknown): never => {
      throw Object.assign(
        new Error(`${this.location}: cannot spool ${name} in ${spoolDir} before its upload: ${(err as Error)?.message ?? err}. Free space there, or point TMPDIR at a folder with room for a pack.`),
        { cause: err, code: code(err) },
      );
    };
    let fh: fs.promises.FileHandle | null = null;
    let leftFile: string | null = spool;
    try {
      fh = await fs.promises.open(spool, 'wx+', FILE_MODE);
      // Where the system allows it (not Windows), the name goes at once: the open handle keeps the data, and a crash leaves no file.
      if (process.platform !== 'win32') {
        await fs.promises.unlink(spool);
        leftFile = null;
      }
    } catch (err) {
      await fh?.close().catch(() => undefined);
      if (fh) await fs.promises.rm(spool, { force: true }).catch(() => undefined);
      return spoolFailed(err);
    }
    let written = 0;
    const open = (what: string): fs.promises.FileHandle => {
      if (!fh) throw new Error(`${this.location}: cannot ${what} ${name}: its writer was committed or aborted already.`);
      return fh;
    };
    const release = async (h: fs.promises.FileHandle) => {
      await h.close().catch(() => undefined);
      if (leftFile) await fs.promises.rm(leftFile, { force: true }).catch(() => undefined);
    };
    return {
      get size() {
        return written;
      },
      append: async (data: Buffer) => {
        await writeFully(open('append to'), data, written).catch(spoolFailed);
        written += data.length;
      },
      read: async (offset: number, length: number) => {
        checkRange(offset, length);
        return readFully(open('read'), offset, Math.max(0, Math.min(length, written - offset)));
      },
      commit: async () => {
        const h = open('commit');
        fh = null;
        try {
          await this.upload(key, name, written, (start, end) => readFully(h, start, end - start));
        } finally {
          // Also when the upload failed: the writer is done (abort() then has nothing to do), and the spool must not stay.
          await release(h);
        }
      },
      abort: async () => {
        const h = fh;
        fh = null;
        if (h) await release(h);
      },
    };
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const key = this.key(name);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { name, size: res.ContentLength ?? 0, modified: res.LastModified?.getTime() ?? 0, version: this.version(res.ETag, `the HEAD of ${name}`) };
    } catch (err) {
      if ((err as SdkError).$metadata?.httpStatusCode === 404) return null;
      return this.fail(err, name);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keyPrefix + prefix, ContinuationToken: token }));
      } catch (err) {
        return this.fail(err, `the list of ${prefix || 'all objects'}`);
      }
      for (const o of res.Contents ?? []) {
        const name = o.Key?.slice(this.keyPrefix.length);
        // Keys no repository writes (made by other tools: spaces, "//", ...) are not objects of it.
        if (name && isValidName(name)) yield { name, size: o.Size ?? 0, modified: o.LastModified?.getTime() ?? 0, version: this.version(o.ETag, `the listing of ${name}`) };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(name: string): Promise<void> {
    const key = this.key(name);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const e = err as SdkError;
      if (e.$metadata?.httpStatusCode === 404) return; // no such object, or no bucket: nothing to delete either way
      return this.fail(err, name);
    }
  }

  /**
   * Unfinished multipart uploads under the prefix (of interrupted puts and commits): they cost storage
   * until aborted. An upload in progress is listed too: remove strays only while no one writes, or by age.
   */
  async *strays(prefix: string): AsyncIterable<Stray> {
    checkPrefix(prefix);
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.keyPrefix + prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      } catch (err) {
        return this.fail(err, `the list of unfinished uploads under ${prefix || 'the repository'}`);
      }
      for (const u of res.Uploads ?? []) {
        const name = u.Key?.slice(this.keyPrefix.length);
        // Uploads of keys no repository writes are other tools' business.
        if (name && u.UploadId && isValidName(name)) yield { name, kind: 'leftover', what: 'an unfinished multipart upload', modified: u.Initiated?.getTime(), ref: u.UploadId };
      }
      keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
      uploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  async removeStray(stray: Stray): Promise<void> {
    if (stray.kind !== 'leftover' || !stray.ref) {
      throw new StorageError(
        'invalid',
        `${this.location}: ${stray.name} is not an unfinished multipart upload with its id (as strays() gives them), so there is nothing to abort; nothing was removed.`,
      );
    }
    const key = this.key(stray.name);
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: stray.ref }));
    } catch (err) {
      const e = err as SdkError;
      if (e.$metadata?.httpStatusCode === 404 || e.name === 'NoSuchUpload') return; // completed or aborted meanwhile
      return this.fail(err, `the unfinished upload of ${stray.name}`);
    }
  }

  async ensureContainer(): Promise<boolean> {
    if (await this.bucketExists()) return false;
    await this.createBucket();
    return true;
  }

  /** True when the bucket exists and these credentials may use it; false when there is none. */
  async bucketExists(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return true;
    } catch (err) {
      if ((err as SdkError).$metadata?.httpStatusCode === 404) return false;
      return this.fail(err, `access to the bucket "${this.bucket}"`);
    }
  }

  /** Creates the bucket (when the first snapshot is written to one that does not exist); no error when it is ours already. */
  async createBucket(): Promise<void> {
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const name = (err as SdkError).name;
      if (name === 'BucketAlreadyOwnedByYou') return;
      // Some servers answer BucketAlreadyExists for one's own bucket too: it is ours when we can use it.
      if (name === 'BucketAlreadyExists') {
        if (await this.bucketExists().catch(() => false)) return;
        throw new StorageError('exists', `${this.location}: the bucket name "${this.bucket}" is taken by another account; choose another bucket name.`);
      }
      return this.fail(err, `the creation of the bucket "${this.bucket}"`);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (err: unknown) => (err as NodeJS.ErrnoException)?.code;
