//! Hand-written bindings to the Workers runtime: the `env` object, a KV
//! namespace and an R2 bucket. Only the calls the handler makes are bound;
//! option objects are built with [`obj`]. Every method that can throw is
//! `catch`, so a runtime error becomes an `Err`, never a trap.

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// The Worker's bindings (`wrangler.toml`).
    pub type Env;
    /// The KV namespace holding the published catalog.
    #[wasm_bindgen(method, getter, js_name = CATALOG)]
    pub fn catalog(this: &Env) -> Option<KvNamespace>;
    /// The R2 bucket holding the image files and the catalog pointer.
    #[wasm_bindgen(method, getter, js_name = IMAGES)]
    pub fn images(this: &Env) -> Option<R2Bucket>;
    /// The upload secret (`wrangler secret put UPLOAD_TOKEN`).
    #[wasm_bindgen(method, getter, js_name = UPLOAD_TOKEN)]
    pub fn upload_token(this: &Env) -> JsValue;
    /// Seconds a removed file stays downloadable (a `[vars]` string).
    #[wasm_bindgen(method, getter, js_name = GRACE_SECONDS)]
    pub fn grace_seconds(this: &Env) -> JsValue;
    /// A test hook of the publish step (see `publish::fault_point`).
    #[wasm_bindgen(method, getter, js_name = FAULT_POINT)]
    pub fn fault_point(this: &Env) -> JsValue;
    /// The read tokens of a private feed, one per line
    /// (`wrangler secret put READ_TOKENS`); unset for a public feed.
    #[wasm_bindgen(method, getter, js_name = READ_TOKENS)]
    pub fn read_tokens(this: &Env) -> JsValue;

    /// A Workers KV namespace.
    pub type KvNamespace;
    #[wasm_bindgen(method, catch)]
    fn get(this: &KvNamespace, key: &str, kind: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = getWithMetadata)]
    fn get_with_metadata(this: &KvNamespace, key: &str, kind: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn put(
        this: &KvNamespace,
        key: &str,
        value: &str,
        options: &Object,
    ) -> Result<Promise, JsValue>;

    /// A Workers R2 bucket.
    pub type R2Bucket;
    #[wasm_bindgen(method, catch, js_name = head)]
    fn head_(this: &R2Bucket, key: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_(this: &R2Bucket, key: &str, options: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_(
        this: &R2Bucket,
        key: &str,
        value: &JsValue,
        options: &Object,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_(this: &R2Bucket, key: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = list)]
    fn list_(this: &R2Bucket, options: &Object) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = createMultipartUpload)]
    fn create_multipart_(this: &R2Bucket, key: &str, options: &Object) -> Result<Promise, JsValue>;
    /// An upload started earlier (no request to R2 until it is used).
    #[wasm_bindgen(method, catch, js_name = resumeMultipartUpload)]
    pub fn resume_multipart(
        this: &R2Bucket,
        key: &str,
        upload_id: &str,
    ) -> Result<R2MultipartUpload, JsValue>;

    /// An R2 multipart upload.
    pub type R2MultipartUpload;
    /// Its id, for the later requests.
    #[wasm_bindgen(method, getter, js_name = uploadId)]
    pub fn upload_id(this: &R2MultipartUpload) -> String;
    #[wasm_bindgen(method, catch, js_name = uploadPart)]
    fn upload_part_(
        this: &R2MultipartUpload,
        part: u32,
        value: &JsValue,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = complete)]
    fn complete_(this: &R2MultipartUpload, parts: &js_sys::Array) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = abort)]
    fn abort_(this: &R2MultipartUpload) -> Result<Promise, JsValue>;

    /// workerd's native streaming SHA-256 (a WritableStream).
    #[wasm_bindgen(js_namespace = crypto, js_name = DigestStream)]
    type DigestStream;
    #[wasm_bindgen(constructor, catch, js_namespace = crypto, js_class = "DigestStream")]
    fn new(algorithm: &str) -> Result<DigestStream, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn digest(this: &DigestStream) -> Promise;

    /// A random v4 UUID from the runtime's CSPRNG.
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID)]
    pub fn random_uuid() -> String;

    /// A line on the Worker's log (`wrangler tail`, workerd's stderr).
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn log(line: &str);

    /// A ReadableStream, with the calls the handler makes on it.
    type Stream;
    #[wasm_bindgen(method, catch, js_name = pipeTo)]
    fn pipe_to(this: &Stream, dest: &JsValue, options: &Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn tee(this: &Stream) -> Result<js_sys::Array, JsValue>;
    #[wasm_bindgen(method, catch, js_name = getReader)]
    fn get_reader(this: &Stream) -> Result<StreamReader, JsValue>;

    /// A ReadableStream's default reader.
    type StreamReader;
    #[wasm_bindgen(method, catch)]
    fn read(this: &StreamReader) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = releaseLock)]
    fn release_lock(this: &StreamReader) -> Result<(), JsValue>;

    /// workerd's identity stream of a declared length, whose readable side
    /// R2 accepts as a body of known size.
    type FixedLengthStream;
    #[wasm_bindgen(constructor, catch)]
    fn new(length: f64) -> Result<FixedLengthStream, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &FixedLengthStream) -> web_sys::ReadableStream;
    #[wasm_bindgen(method, getter)]
    fn writable(this: &FixedLengthStream) -> Writable;

    /// A WritableStream.
    type Writable;
    #[wasm_bindgen(method, catch, js_name = getWriter)]
    fn get_writer(this: &Writable) -> Result<StreamWriter, JsValue>;

    /// A WritableStream's default writer.
    type StreamWriter;
    #[wasm_bindgen(method, js_name = write)]
    fn write(this: &StreamWriter, chunk: &JsValue) -> Promise;
    #[wasm_bindgen(method, catch, js_name = releaseLock)]
    fn release_writer(this: &StreamWriter) -> Result<(), JsValue>;

    /// An R2 object's metadata, with a `body` when it came from `get`.
    pub type R2Object;
    #[wasm_bindgen(method, getter)]
    pub fn key(this: &R2Object) -> String;
    #[wasm_bindgen(method, getter, js_name = size)]
    fn size_f64(this: &R2Object) -> f64;
    /// The etag R2 compares in `onlyIf` (no quotes).
    #[wasm_bindgen(method, getter)]
    pub fn etag(this: &R2Object) -> String;
    #[wasm_bindgen(method, getter, js_name = httpEtag)]
    pub fn http_etag(this: &R2Object) -> String;
    #[wasm_bindgen(method, getter)]
    fn uploaded(this: &R2Object) -> js_sys::Date;
    #[wasm_bindgen(method, getter, js_name = customMetadata)]
    fn custom_metadata(this: &R2Object) -> JsValue;
    /// The body stream (objects from `get` only).
    #[wasm_bindgen(method, getter)]
    pub fn body(this: &R2Object) -> Option<web_sys::ReadableStream>;
    #[wasm_bindgen(method, catch)]
    fn text(this: &R2Object) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = arrayBuffer)]
    fn array_buffer(this: &R2Object) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: i32);

    /// One page of an R2 listing.
    type R2Objects;
    #[wasm_bindgen(method, getter)]
    fn objects(this: &R2Objects) -> js_sys::Array;
    #[wasm_bindgen(method, getter)]
    fn truncated(this: &R2Objects) -> bool;
    #[wasm_bindgen(method, getter)]
    fn cursor(this: &R2Objects) -> Option<String>;
}

/// SHA-256 digests of `body`, one per entry of `prefixes`: a `None` entry
/// is the digest of `body` alone, a `Some(stream)` that of the stream's
/// bytes followed by `body`'s (a combined fingerprint). The runtime hashes
/// natively as the bytes flow; `body` is read once, whatever the number of
/// digests, and nothing is copied into wasm memory.
pub async fn sha256_streams(
    body: &web_sys::ReadableStream,
    prefixes: Vec<Option<web_sys::ReadableStream>>,
) -> Result<Vec<[u8; 32]>, JsValue> {
    let mut sinks = Vec::new();
    for prefix in prefixes {
        let ds = DigestStream::new("SHA-256")?;
        if let Some(p) = prefix {
            let keep_open = obj(&[("preventClose", JsValue::TRUE)])?;
            wait(p.unchecked_ref::<Stream>().pipe_to(&ds, &keep_open)).await?;
        }
        sinks.push(ds);
    }
    // One branch of `body` per digest (tee splits a stream in two).
    let mut branches: Vec<JsValue> = Vec::new();
    let mut rest: JsValue = body.clone().into();
    for _ in 1..sinks.len() {
        let pair = rest.unchecked_ref::<Stream>().tee()?;
        branches.push(pair.get(0));
        rest = pair.get(1);
    }
    branches.push(rest);
    let pipes = js_sys::Array::new();
    for (branch, ds) in branches.iter().zip(&sinks) {
        pipes.push(
            &branch
                .unchecked_ref::<Stream>()
                .pipe_to(ds, &Object::new())?
                .into(),
        );
    }
    JsFuture::from(Promise::all(&pipes)).await?;
    let mut out = Vec::new();
    for ds in &sinks {
        let digest = JsFuture::from(ds.digest()).await?;
        let bytes = js_sys::Uint8Array::new(&digest).to_vec();
        out.push(
            bytes
                .try_into()
                .map_err(|_| JsValue::from_str("DigestStream gave no SHA-256"))?,
        );
    }
    Ok(out)
}

/// Reads `stream` to its end, handing each chunk to `f` (copied into wasm
/// memory one chunk at a time, so a large body costs one chunk of it).
pub async fn each_chunk(
    stream: &web_sys::ReadableStream,
    mut f: impl FnMut(&[u8]),
) -> Result<(), JsValue> {
    let reader = stream.unchecked_ref::<Stream>().get_reader()?;
    loop {
        let step = wait(reader.read()).await?;
        if Reflect::get(&step, &JsValue::from_str("done"))?.is_truthy() {
            break;
        }
        let chunk: js_sys::Uint8Array =
            Reflect::get(&step, &JsValue::from_str("value"))?.unchecked_into();
        f(&chunk.to_vec());
    }
    reader.release_lock()
}

/// A request body whose first bytes were read, and the stream of the
/// whole body again, for R2.
pub struct Peeked {
    /// The first bytes (at least the number asked for, unless the body is
    /// shorter).
    pub head: Vec<u8>,
    /// Every byte of the body, the first ones included, as a stream of
    /// the declared length.
    pub body: web_sys::ReadableStream,
    /// Completes when the rest of the body has gone into `body`.
    pub pipe: Promise,
}

/// Reads the first `n` bytes of `stream` (a request body of `length`
/// bytes) and gives them back with a stream of all `length` bytes, so a
/// body can be checked by its first bytes before anything is stored.
pub async fn peek(
    stream: &web_sys::ReadableStream,
    n: usize,
    length: u64,
) -> Result<Peeked, JsValue> {
    let source = stream.unchecked_ref::<Stream>();
    let reader = source.get_reader()?;
    let mut chunks: Vec<JsValue> = Vec::new();
    let mut head = Vec::new();
    while head.len() < n {
        let step = wait(reader.read()).await?;
        if Reflect::get(&step, &JsValue::from_str("done"))?.is_truthy() {
            break;
        }
        let chunk = Reflect::get(&step, &JsValue::from_str("value"))?;
        let bytes: js_sys::Uint8Array = chunk.clone().unchecked_into();
        let want = (n - head.len()).min(bytes.length() as usize);
        #[expect(clippy::cast_possible_truncation, reason = "want <= HEAD_LEN")]
        head.extend(bytes.subarray(0, want as u32).to_vec());
        chunks.push(chunk);
    }
    reader.release_lock()?;
    #[expect(
        clippy::cast_precision_loss,
        reason = "a request body is far below 2^53 bytes"
    )]
    let fixed = FixedLengthStream::new(length as f64)?;
    let writable = fixed.writable();
    let writer = writable.get_writer()?;
    // Queued, not awaited: the writes complete as R2 reads the other end.
    for chunk in &chunks {
        drop(writer.write(chunk));
    }
    writer.release_writer()?;
    let pipe = source.pipe_to(&writable, &Object::new())?;
    Ok(Peeked {
        head,
        body: fixed.readable(),
        pipe,
    })
}

/// Waits `ms` milliseconds.
pub async fn sleep_ms(ms: i32) -> Result<(), JsValue> {
    let p = Promise::new(&mut |resolve, _| set_timeout(&resolve, ms));
    JsFuture::from(p).await.map(drop)
}

/// A plain object from key/value pairs.
pub fn obj(pairs: &[(&str, JsValue)]) -> Result<Object, JsValue> {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v)?;
    }
    Ok(o)
}

/// A string-valued plain object (R2 custom metadata).
pub fn str_obj<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Object, JsValue> {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), &JsValue::from_str(v))?;
    }
    Ok(o)
}

/// A property of a JS object as a string, when it is one.
pub fn get_str(value: &JsValue, key: &str) -> Option<String> {
    Reflect::get(value, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.as_string())
}

/// A numeric property of a JS object.
pub fn get_f64(value: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(value, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.as_f64())
}

async fn wait(p: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(p?).await
}

fn nullish(v: &JsValue) -> bool {
    v.is_null() || v.is_undefined()
}

impl KvNamespace {
    /// A text value, or `None` when the key is absent.
    pub async fn get_text(&self, key: &str) -> Result<Option<String>, JsValue> {
        Ok(wait(self.get(key, "text")).await?.as_string())
    }

    /// A value as an `ArrayBuffer` (kept on the JS side), with its
    /// metadata object.
    pub async fn get_buffer_meta(&self, key: &str) -> Result<Option<(JsValue, JsValue)>, JsValue> {
        let r = wait(self.get_with_metadata(key, "arrayBuffer")).await?;
        let value = Reflect::get(&r, &JsValue::from_str("value"))?;
        if nullish(&value) {
            return Ok(None);
        }
        let meta = Reflect::get(&r, &JsValue::from_str("metadata"))?;
        Ok(Some((value, meta)))
    }

    /// A value as an `ArrayBuffer` (kept on the JS side).
    pub async fn get_buffer(&self, key: &str) -> Result<Option<JsValue>, JsValue> {
        let v = wait(self.get(key, "arrayBuffer")).await?;
        Ok((!nullish(&v)).then_some(v))
    }

    /// Stores a text value, with optional metadata and expiry.
    pub async fn put_text(
        &self,
        key: &str,
        value: &str,
        metadata: Option<&JsValue>,
        expiration_ttl: Option<f64>,
    ) -> Result<(), JsValue> {
        let mut opts = Vec::new();
        if let Some(m) = metadata {
            opts.push(("metadata", m.clone()));
        }
        if let Some(ttl) = expiration_ttl {
            opts.push(("expirationTtl", JsValue::from_f64(ttl)));
        }
        wait(self.put(key, value, &obj(&opts)?)).await?;
        Ok(())
    }
}

impl R2Object {
    /// When R2 stored it, in milliseconds since the epoch.
    pub fn uploaded_ms(&self) -> f64 {
        self.uploaded().get_time()
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "R2 sizes are whole numbers far below 2^53"
        )]
        let n = self.size_f64() as u64;
        n
    }

    /// A custom metadata value.
    pub fn meta(&self, key: &str) -> Option<String> {
        get_str(&self.custom_metadata(), key)
    }

    /// Every custom metadata pair.
    pub fn meta_pairs(&self) -> Vec<(String, String)> {
        let m = self.custom_metadata();
        if nullish(&m) {
            return Vec::new();
        }
        Object::entries(m.unchecked_ref())
            .iter()
            .filter_map(|pair| {
                let pair: js_sys::Array = pair.unchecked_into();
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
            .collect()
    }

    /// The body as bytes (objects from `get`; small files only).
    pub async fn read_bytes(&self) -> Result<Vec<u8>, JsValue> {
        let buf = wait(self.array_buffer()).await?;
        Ok(js_sys::Uint8Array::new(&buf).to_vec())
    }

    /// The body as text (objects from `get`).
    pub async fn read_text(&self) -> Result<String, JsValue> {
        wait(self.text())
            .await?
            .as_string()
            .ok_or_else(|| JsValue::from_str("R2 body is not text"))
    }
}

impl R2MultipartUpload {
    /// Uploads part `part` (1-based); returns `{partNumber, etag}`.
    pub async fn upload_part(&self, part: u32, value: &JsValue) -> Result<JsValue, JsValue> {
        wait(self.upload_part_(part, value)).await
    }

    /// Joins the parts into the object.
    pub async fn complete(&self, parts: &js_sys::Array) -> Result<R2Object, JsValue> {
        Ok(wait(self.complete_(parts)).await?.unchecked_into())
    }

    /// Gives the upload up.
    pub async fn abort(&self) -> Result<(), JsValue> {
        wait(self.abort_()).await.map(drop)
    }
}

fn to_object(v: JsValue) -> Option<R2Object> {
    (!nullish(&v)).then(|| v.unchecked_into())
}

impl R2Bucket {
    /// Metadata of `key`, or `None`.
    pub async fn head(&self, key: &str) -> Result<Option<R2Object>, JsValue> {
        Ok(to_object(wait(self.head_(key)).await?))
    }

    /// `key` with its body (optionally one byte range), or `None`.
    pub async fn get(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<Option<R2Object>, JsValue> {
        let opts = match range {
            #[expect(
                clippy::cast_precision_loss,
                reason = "R2 objects are at most 5 TB, far below 2^53"
            )]
            Some((offset, length)) => obj(&[(
                "range",
                obj(&[
                    ("offset", JsValue::from_f64(offset as f64)),
                    ("length", JsValue::from_f64(length as f64)),
                ])?
                .into(),
            )])?,
            None => Object::new(),
        };
        Ok(to_object(wait(self.get_(key, &opts)).await?))
    }

    /// `key` with its body, for one `Range` in R2's terms; `Err` also when
    /// R2 finds the range outside the object.
    pub async fn get_spec(
        &self,
        key: &str,
        spec: ssgen_core::serve::http::RangeSpec,
    ) -> Result<Option<R2Object>, JsValue> {
        use ssgen_core::serve::http::RangeSpec;
        #[expect(
            clippy::cast_precision_loss,
            reason = "R2 objects are at most 5 TB, far below 2^53"
        )]
        let num = |n: u64| JsValue::from_f64(n as f64);
        let range = match spec {
            RangeSpec::Whole => None,
            RangeSpec::From { offset, length } => {
                let mut pairs = vec![("offset", num(offset))];
                if let Some(l) = length {
                    pairs.push(("length", num(l)));
                }
                Some(obj(&pairs)?)
            }
            RangeSpec::Suffix(n) => Some(obj(&[("suffix", num(n))])?),
        };
        let opts = match range {
            Some(r) => obj(&[("range", r.into())])?,
            None => Object::new(),
        };
        Ok(to_object(wait(self.get_(key, &opts)).await?))
    }

    /// Stores `value` (a string or a stream of known length). With
    /// `only_if`, the put is conditional and `None` means it did not happen.
    pub async fn put(
        &self,
        key: &str,
        value: &JsValue,
        options: &Object,
    ) -> Result<Option<R2Object>, JsValue> {
        Ok(to_object(wait(self.put_(key, value, options)).await?))
    }

    /// Starts a multipart upload of `key`.
    pub async fn create_multipart(
        &self,
        key: &str,
        options: &Object,
    ) -> Result<R2MultipartUpload, JsValue> {
        Ok(wait(self.create_multipart_(key, options))
            .await?
            .unchecked_into())
    }

    /// Deletes `key` (no error when absent).
    pub async fn delete(&self, key: &str) -> Result<(), JsValue> {
        wait(self.delete_(key)).await?;
        Ok(())
    }

    /// One page of the objects under `prefix`, with custom metadata, and
    /// the cursor of the next page if there is one.
    pub async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<R2Object>, Option<String>), JsValue> {
        let include = js_sys::Array::of1(&JsValue::from_str("customMetadata"));
        let mut opts = vec![
            ("prefix", JsValue::from_str(prefix)),
            ("include", include.into()),
        ];
        if let Some(c) = cursor {
            opts.push(("cursor", JsValue::from_str(c)));
        }
        let page: R2Objects = wait(self.list_(&obj(&opts)?)).await?.unchecked_into();
        let objects = page
            .objects()
            .iter()
            .map(JsCast::unchecked_into::<R2Object>)
            .collect();
        let next = if page.truncated() {
            page.cursor()
        } else {
            None
        };
        Ok((objects, next))
    }

    /// Every object under `prefix`, with custom metadata, all pages.
    pub async fn list_all(&self, prefix: &str) -> Result<Vec<R2Object>, JsValue> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (objects, next) = self.list_page(prefix, cursor.as_deref()).await?;
            out.extend(objects);
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}
