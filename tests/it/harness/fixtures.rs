//! Deterministic image fixtures written with the tar, flate2 and sha2 crates (never with hoist): OCI image
//! layouts with a config and N gzip layers of seeded pseudo-random content inside real tar archives
//! ([`oci_layout`]), a two-platform image index sharing a layer ([`oci_index_layout`]), `docker save` style
//! archives ([`docker_archive`]), and readers for comparing layouts byte for byte ([`blobs_of_layout`],
//! [`layout_manifest`]). Same seed and sizes → same bytes, same digests (within one build: gzip output depends
//! on the compressor).

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Every fixture timestamp (tar mtimes, `created`): 2024-01-01T00:00:00Z.
pub const FIXED_MTIME: u64 = 1_704_067_200;
pub const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";

/// One layer: a tar with `layer-<seed>/data.bin` (`size` seeded bytes) and a small text file, gzipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    pub seed: u64,
    pub size: usize,
    /// Text-like content that gzip shrinks a lot, instead of incompressible noise.
    pub compressible: bool,
}

impl LayerSpec {
    pub fn new(seed: u64, size: usize) -> Self {
        LayerSpec { seed, size, compressible: false }
    }
}

/// What [`oci_layout`] writes.
#[derive(Debug, Clone)]
pub struct LayoutSpec {
    /// Seeds the config (and the layers made by [`LayoutSpec::layer_sizes`]).
    pub seed: u64,
    pub layers: Vec<LayerSpec>,
    /// `org.opencontainers.image.ref.name` in index.json; `None` leaves the entry untagged.
    pub tag: Option<String>,
    pub architecture: String,
    pub os: String,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

impl LayoutSpec {
    /// Two layers (4 KiB and 64 KiB of content), tag `latest`, linux/amd64.
    pub fn new(seed: u64) -> Self {
        LayoutSpec {
            seed,
            layers: vec![],
            tag: Some("latest".to_string()),
            architecture: "amd64".to_string(),
            os: "linux".to_string(),
            annotations: BTreeMap::new(),
        }
        .layer_sizes(&[4096, 65536])
    }

    /// Replaces the layers with ones of these content sizes, seeded from `seed` and the position.
    pub fn layer_sizes(mut self, sizes: &[usize]) -> Self {
        self.layers = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| LayerSpec::new(self.seed.wrapping_mul(1000).wrapping_add(i as u64 + 1), size))
            .collect();
        self
    }

    pub fn layers(mut self, layers: Vec<LayerSpec>) -> Self {
        self.layers = layers;
        self
    }

    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = Some(tag.to_string());
        self
    }

    pub fn untagged(mut self) -> Self {
        self.tag = None;
        self
    }

    pub fn platform(mut self, os: &str, architecture: &str) -> Self {
        self.os = os.to_string();
        self.architecture = architecture.to_string();
        self
    }

    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.annotations.insert(k.to_string(), v.to_string());
        self
    }
}

/// One image written into a layout.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest_media_type: String,
    pub config_digest: String,
    pub config_bytes: Vec<u8>,
    /// Compressed layer digests, in order.
    pub layer_digests: Vec<String>,
    /// Compressed layer sizes, in order.
    pub layer_sizes: Vec<u64>,
    /// sha256 of each uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_ids: Vec<String>,
    /// Config and layers (not the manifest).
    pub blob_digests: Vec<String>,
    pub tag: Option<String>,
}

impl ImageInfo {
    /// Manifest, config and layers.
    pub fn all_digests(&self) -> Vec<String> {
        let mut v = vec![self.manifest_digest.clone()];
        v.extend(self.blob_digests.iter().cloned());
        v
    }
}

/// An image index written by [`oci_index_layout`].
#[derive(Debug, Clone)]
pub struct IndexLayout {
    pub index_digest: String,
    pub index_bytes: Vec<u8>,
    /// (`linux/amd64`, image), (`linux/arm64`, image).
    pub images: Vec<(String, ImageInfo)>,
    /// The layer both platforms carry.
    pub shared_layer_digest: String,
    pub tag: String,
    /// Every blob (index, manifests, configs, layers), without duplicates.
    pub blob_digests: Vec<String>,
}

/// A `docker save` style archive written by [`docker_archive`].
#[derive(Debug, Clone)]
pub struct DockerArchive {
    pub path: PathBuf,
    pub repo_tag: String,
    pub config_digest: String,
    pub config_bytes: Vec<u8>,
    /// sha256 of each uncompressed layer tar, in order.
    pub diff_ids: Vec<String>,
    /// The `Layers` entries of manifest.json (`<id>/layer.tar`).
    pub layer_paths: Vec<String>,
    /// Whether each `layer.tar` is gzip-compressed.
    pub compressed: bool,
}

/// SplitMix64: tiny, seeded, stable forever (unlike `rand`'s StdRng).
pub struct SeededBytes {
    state: u64,
    buf: [u8; 8],
    pos: usize,
    word: &'static [u8],
    compressible: bool,
}

impl SeededBytes {
    pub fn new(seed: u64, compressible: bool) -> Self {
        SeededBytes { state: seed ^ 0x9E37_79B9_7F4A_7C15, buf: [0; 8], pos: 8, word: b"", compressible }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_byte(&mut self) -> u8 {
        if self.compressible {
            // Text made of words from a small list: gzip shrinks it to roughly a third.
            const WORDS: [&[u8]; 16] = [
                b"the ",
                b"quick ",
                b"brown ",
                b"fox ",
                b"jumps ",
                b"over ",
                b"a ",
                b"lazy ",
                b"dog\n",
                b"layer ",
                b"image ",
                b"registry ",
                b"blob ",
                b"digest ",
                b"push ",
                b"hoist\n",
            ];
            if self.pos >= self.word.len() {
                self.word = WORDS[(self.next_u64() % 16) as usize];
                self.pos = 0;
            }
            let b = self.word[self.pos];
            self.pos += 1;
            return b;
        }
        if self.pos == 8 {
            self.buf = self.next_u64().to_le_bytes();
            self.pos = 0;
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        b
    }
}

impl Read for SeededBytes {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        for b in out.iter_mut() {
            *b = self.next_byte();
        }
        Ok(out.len())
    }
}

/// `n` seeded bytes.
pub fn seeded_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    SeededBytes::new(seed, false).read_exact(&mut v).unwrap();
    v
}

/// A writer that hashes and counts what passes through.
struct HashWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    fn finish(self) -> (W, String, u64) {
        (self.inner, format!("sha256:{}", hex::encode(self.hasher.finalize())), self.len)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn tar_header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(FIXED_MTIME);
    h
}

/// Writes the uncompressed layer tar for `spec` into `w`.
pub fn write_layer_tar<W: Write>(w: W, spec: &LayerSpec) -> std::io::Result<W> {
    let mut b = tar::Builder::new(w);
    let dir = format!("layer-{}", spec.seed);
    let mut h = tar_header(tar::EntryType::Directory, 0, 0o755);
    b.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
    let readme = format!("hoist test layer seed={} size={}\n", spec.seed, spec.size);
    let mut h = tar_header(tar::EntryType::Regular, readme.len() as u64, 0o644);
    b.append_data(&mut h, format!("{dir}/README.txt"), readme.as_bytes())?;
    let mut h = tar_header(tar::EntryType::Regular, spec.size as u64, 0o644);
    let data = SeededBytes::new(spec.seed, spec.compressible).take(spec.size as u64);
    b.append_data(&mut h, format!("{dir}/data.bin"), data)?;
    b.into_inner()
}

/// The uncompressed layer tar for `spec`, in memory.
pub fn layer_tar_bytes(spec: &LayerSpec) -> Vec<u8> {
    write_layer_tar(Vec::new(), spec).expect("layer tar")
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    dir.join("blobs").join("sha256").join(hex)
}

/// Writes `bytes` as a blob of the layout at `dir`; returns its digest.
pub fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = super::sha256_digest(bytes);
    let path = blob_path(dir, &digest);
    std::fs::create_dir_all(path.parent().unwrap()).expect("create blobs dir");
    std::fs::write(&path, bytes).expect("write blob");
    digest
}

/// Streams a gzip layer for `spec` into the layout's blobs: (digest, compressed size, diff_id).
fn write_layer_blob(dir: &Path, spec: &LayerSpec) -> (String, u64, String) {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).expect("create blobs dir");
    let tmp = tempfile::NamedTempFile::new_in(&blobs).expect("temp blob");
    let file = std::io::BufWriter::new(tmp.reopen().expect("reopen temp blob"));
    let gz = GzEncoder::new(HashWriter::new(file), Compression::fast());
    let tar_hw = write_layer_tar(HashWriter::new(gz), spec).expect("write layer");
    let (gz, diff_id, _) = tar_hw.finish();
    let outer = gz.finish().expect("finish gzip");
    let (mut file, digest, size) = outer.finish();
    file.flush().expect("flush blob");
    drop(file);
    tmp.persist(blob_path(dir, &digest)).expect("persist blob");
    (digest, size, diff_id)
}

fn ensure_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs").join("sha256")).expect("create layout");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
}

/// Adds a descriptor to the layout's index.json (creating it), tagged with `tag` if given.
fn add_to_index_json(dir: &Path, media_type: &str, digest: &str, size: usize, tag: Option<&str>) {
    let path = dir.join("index.json");
    let mut index: serde_json::Value = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).expect("parse index.json"),
        Err(_) => serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let mut desc = serde_json::json!({"mediaType": media_type, "digest": digest, "size": size});
    if let Some(tag) = tag {
        desc["annotations"] = serde_json::json!({ REF_NAME: tag });
        // A tag names one manifest: drop an earlier entry with the same tag.
        index["manifests"].as_array_mut().unwrap().retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
    }
    index["manifests"].as_array_mut().unwrap().push(desc);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).expect("write index.json");
}

/// Writes config, layers and manifest blobs for `spec` (no index.json entry).
fn write_image_blobs(dir: &Path, spec: &LayoutSpec) -> ImageInfo {
    ensure_layout(dir);
    let mut layer_digests = Vec::new();
    let mut layer_sizes = Vec::new();
    let mut diff_ids = Vec::new();
    for l in &spec.layers {
        let (d, s, diff) = write_layer_blob(dir, l);
        layer_digests.push(d);
        layer_sizes.push(s);
        diff_ids.push(diff);
    }
    let config = serde_json::json!({
        "created": FIXED_CREATED,
        "architecture": spec.architecture,
        "os": spec.os,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    format!("HOIST_FIXTURE_SEED={}", spec.seed)],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": spec.layers.iter().map(|l| serde_json::json!({
            "created": FIXED_CREATED,
            "created_by": format!("hoist-fixture layer seed={} size={}", l.seed, l.size),
        })).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(dir, &config_bytes);
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
        "layers": layer_digests.iter().zip(&layer_sizes).map(|(d, s)| serde_json::json!({
            "mediaType": OCI_LAYER_GZIP, "digest": d, "size": s,
        })).collect::<Vec<_>>(),
    });
    if !spec.annotations.is_empty() {
        manifest["annotations"] = serde_json::to_value(&spec.annotations).unwrap();
    }
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = write_blob(dir, &manifest_bytes);
    let mut blob_digests = vec![config_digest.clone()];
    blob_digests.extend(layer_digests.iter().cloned());
    ImageInfo {
        manifest_digest,
        manifest_bytes,
        manifest_media_type: OCI_MANIFEST.to_string(),
        config_digest,
        config_bytes,
        layer_digests,
        layer_sizes,
        diff_ids,
        blob_digests,
        tag: spec.tag.clone(),
    }
}

/// Writes into the layout at `dir` a linux/amd64 image whose layers are these uncompressed tars
/// (gzipped here), tagged `tag`; returns the manifest digest. For layers whose entries matter
/// (whiteouts, hostile paths), which [`LayerSpec`]'s seeded content cannot express.
pub fn oci_layout_with_tars(dir: &Path, tars: &[Vec<u8>], tag: &str) -> String {
    ensure_layout(dir);
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in tars {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(tar).unwrap();
        let gz = gz.finish().unwrap();
        diff_ids.push(super::sha256_digest(tar));
        layers.push(serde_json::json!({"mediaType": OCI_LAYER_GZIP, "digest": write_blob(dir, &gz), "size": gz.len()}));
    }
    let config = serde_json::json!({
        "created": FIXED_CREATED, "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": write_blob(dir, &config_bytes), "size": config_bytes.len()},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = write_blob(dir, &bytes);
    add_to_index_json(dir, OCI_MANIFEST, &digest, bytes.len(), Some(tag));
    digest
}

/// Writes an OCI image layout at `dir` (adding to an existing one) holding the image of `spec`.
pub fn oci_layout(dir: &Path, spec: &LayoutSpec) -> ImageInfo {
    let info = write_image_blobs(dir, spec);
    add_to_index_json(dir, OCI_MANIFEST, &info.manifest_digest, info.manifest_bytes.len(), spec.tag.as_deref());
    info
}

/// Writes a layout whose index.json names (tag `latest`) an image index of two platform images,
/// linux/amd64 and linux/arm64, each with its own config and layers, both carrying one shared layer.
pub fn oci_index_layout(dir: &Path) -> IndexLayout {
    let shared = LayerSpec::new(7_000_001, 8192);
    let amd =
        LayoutSpec::new(71).platform("linux", "amd64").layers(vec![shared, LayerSpec::new(7_100_001, 4000)]).untagged();
    let arm =
        LayoutSpec::new(72).platform("linux", "arm64").layers(vec![shared, LayerSpec::new(7_200_001, 5000)]).untagged();
    let amd_info = write_image_blobs(dir, &amd);
    let arm_info = write_image_blobs(dir, &arm);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd_info.manifest_digest,
             "size": amd_info.manifest_bytes.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm_info.manifest_digest,
             "size": arm_info.manifest_bytes.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = write_blob(dir, &index_bytes);
    add_to_index_json(dir, OCI_INDEX, &index_digest, index_bytes.len(), Some("latest"));
    let shared_layer_digest = amd_info.layer_digests[0].clone();
    assert_eq!(shared_layer_digest, arm_info.layer_digests[0]);
    let mut all: Vec<String> = vec![index_digest.clone()];
    for info in [&amd_info, &arm_info] {
        for d in info.all_digests() {
            if !all.contains(&d) {
                all.push(d);
            }
        }
    }
    IndexLayout {
        index_digest,
        index_bytes,
        images: vec![("linux/amd64".to_string(), amd_info), ("linux/arm64".to_string(), arm_info)],
        shared_layer_digest,
        tag: "latest".to_string(),
        blob_digests: all,
    }
}

/// Writes a `docker save` style archive at `file` (repo tag `hoist-fixture/app:latest`, two layers), each
/// `<id>/layer.tar` a plain tar or (`compressed`) a gzip of it.
pub fn docker_archive(file: &Path, compressed: bool) -> DockerArchive {
    docker_archive_with(file, compressed, &LayoutSpec::new(31).layer_sizes(&[3000, 20000]), "hoist-fixture/app:latest")
}

/// [`docker_archive`] with chosen layers and repo tag.
pub fn docker_archive_with(file: &Path, compressed: bool, spec: &LayoutSpec, repo_tag: &str) -> DockerArchive {
    let mut diff_ids = Vec::new();
    let mut layer_files = Vec::new();
    let mut ids = Vec::new();
    let mut parent = String::new();
    for l in &spec.layers {
        let tar = layer_tar_bytes(l);
        let diff_id = super::sha256_digest(&tar);
        let id = hex::encode(Sha256::digest(format!("{parent}\n{diff_id}").as_bytes()));
        let content = if compressed {
            let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
            gz.write_all(&tar).unwrap();
            gz.finish().unwrap()
        } else {
            tar
        };
        diff_ids.push(diff_id);
        layer_files.push(content);
        parent = id.clone();
        ids.push(id);
    }
    let config = serde_json::json!({
        "created": FIXED_CREATED,
        "architecture": spec.architecture,
        "os": spec.os,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": spec.layers.iter().map(|l| serde_json::json!({
            "created": FIXED_CREATED,
            "created_by": format!("hoist-fixture layer seed={}", l.seed),
        })).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = super::sha256_digest(&config_bytes);
    let config_name = format!("{}.json", config_digest.strip_prefix("sha256:").unwrap());
    let layer_paths: Vec<String> = ids.iter().map(|id| format!("{id}/layer.tar")).collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": layer_paths,
    }]);
    let (repo, tag) = repo_tag.rsplit_once(':').expect("repo_tag has a tag");
    let repositories = serde_json::json!({ repo: { tag: ids.last().cloned().unwrap_or_default() } });

    let out = std::fs::File::create(file).expect("create docker archive");
    let mut b = tar::Builder::new(std::io::BufWriter::new(out));
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar_header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
        b.append_data(&mut h, name, bytes).expect("append to docker archive");
    };
    for (i, id) in ids.iter().enumerate() {
        add(&format!("{id}/VERSION"), b"1.0");
        let json = serde_json::json!({"id": id, "created": FIXED_CREATED});
        add(&format!("{id}/json"), json.to_string().as_bytes());
        add(&format!("{id}/layer.tar"), &layer_files[i]);
    }
    add(&config_name, &config_bytes);
    add("manifest.json", manifest.to_string().as_bytes());
    add("repositories", repositories.to_string().as_bytes());
    b.into_inner().expect("finish docker archive").flush().expect("flush docker archive");
    DockerArchive {
        path: file.to_path_buf(),
        repo_tag: repo_tag.to_string(),
        config_digest,
        config_bytes,
        diff_ids,
        layer_paths,
        compressed,
    }
}

/// Every blob of the layout at `dir`: digest → bytes.
pub fn blobs_of_layout(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let blobs = dir.join("blobs").join("sha256");
    for entry in std::fs::read_dir(&blobs).unwrap_or_else(|e| panic!("read {}: {e}", blobs.display())) {
        let entry = entry.expect("dir entry");
        if !entry.file_type().expect("file type").is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() != 64 || !name.bytes().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        out.insert(format!("sha256:{name}"), std::fs::read(entry.path()).expect("read blob"));
    }
    out
}

/// The layout's index.json.
pub fn layout_index(dir: &Path) -> serde_json::Value {
    let path = dir.join("index.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("parse index.json")
}

/// The top manifest named by index.json — the entry tagged `tag`, or the only entry when `tag` is `None`:
/// (digest, media type, bytes).
pub fn layout_manifest(dir: &Path, tag: Option<&str>) -> (String, String, Vec<u8>) {
    let index = layout_index(dir);
    let entries = index["manifests"].as_array().expect("index.json manifests");
    let entry = match tag {
        Some(tag) => entries
            .iter()
            .find(|m| m["annotations"][REF_NAME].as_str() == Some(tag))
            .unwrap_or_else(|| panic!("no entry tagged {tag:?} in {}", dir.display())),
        None => {
            assert_eq!(entries.len(), 1, "index.json of {} has several entries: name a tag", dir.display());
            &entries[0]
        }
    };
    let digest = entry["digest"].as_str().expect("digest").to_string();
    let media_type = entry["mediaType"].as_str().unwrap_or_default().to_string();
    let bytes = std::fs::read(blob_path(dir, &digest)).expect("read manifest blob");
    (digest, media_type, bytes)
}

/// Digests reachable from the manifest or index `digest` in the layout (itself included), depth first.
pub fn reachable_digests(dir: &Path, digest: &str) -> Vec<String> {
    let mut out = vec![digest.to_string()];
    let bytes = std::fs::read(blob_path(dir, digest))
        .unwrap_or_else(|e| panic!("blob {digest} missing from {}: {e}", dir.display()));
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest JSON");
    if let Some(ms) = v["manifests"].as_array() {
        for m in ms {
            let d = m["digest"].as_str().expect("digest");
            for x in reachable_digests(dir, d) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
    } else {
        if let Some(c) = v["config"]["digest"].as_str() {
            out.push(c.to_string());
        }
        for l in v["layers"].as_array().into_iter().flatten() {
            let d = l["digest"].as_str().expect("layer digest").to_string();
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}
