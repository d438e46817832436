//! `--output docker-archive:FILE`: writing a built image as a `docker load`-able tar — docker's
//! `manifest.json` (config, repo tags, layers) next to an OCI layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`), the shape `docker save` writes since Docker 25. Entries are sorted and
//! timestamped with the build epoch, so the archive is as reproducible as the image.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::oci::REF_NAME;
use crate::model::{media, Artifact, BlobSource, OciImageManifest};

/// Writes `artifact` (a single image, every blob local) to `file`, tagged `repo_tags`.
pub fn write_docker_archive(file: &Path, artifact: &Artifact, repo_tags: &[String], epoch: u64) -> Result<()> {
    let ctx = || format!("writing docker archive {}", file.display());
    let root = artifact.root();
    if !media::is_manifest(&root.media_type) {
        return Err(Error::usage("a docker archive holds one image, not an index").context(ctx()));
    }
    let manifest: OciImageManifest = serde_json::from_slice(&root.bytes).expect("built manifest parses");
    let path_of = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let docker_manifest = serde_json::json!([{
        "Config": path_of(&manifest.config.digest),
        "RepoTags": repo_tags,
        "Layers": manifest.layers.iter().map(|l| path_of(&l.digest)).collect::<Vec<_>>(),
    }]);
    let mut index_entry = serde_json::json!({
        "mediaType": root.media_type,
        "digest": root.digest,
        "size": root.bytes.len(),
    });
    if let Some(t) = repo_tags.first() {
        index_entry["annotations"] = serde_json::json!({ REF_NAME: t });
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [index_entry]});
    // Written beside `file` and renamed over it when complete: an interrupted build leaves no half archive.
    let out = crate::fsutil::AtomicFile::create(file)?;
    let mut tar = tar::Builder::new(BufWriter::new(out));
    let io_err = |e: io::Error| Error::io(ctx(), e);
    let add =
        |tar: &mut tar::Builder<BufWriter<crate::fsutil::AtomicFile>>, name: &str, size: u64, data: &mut dyn Read| {
            let mut h = tar::Header::new_ustar();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_mtime(epoch);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, data)
        };
    let small: Vec<(String, Vec<u8>)> = vec![
        ("index.json".into(), serde_json::to_vec(&index).expect("json")),
        ("manifest.json".into(), serde_json::to_vec(&docker_manifest).expect("json")),
        ("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        (path_of(root.digest.as_str()), root.bytes.to_vec()),
    ];
    for (name, bytes) in &small {
        add(&mut tar, name, bytes.len() as u64, &mut bytes.as_slice()).map_err(io_err)?;
    }
    let mut blobs: Vec<_> = artifact.blobs.iter().collect();
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    for blob in blobs {
        let name = path_of(blob.digest.as_str());
        match &blob.source {
            BlobSource::Bytes(b) => add(&mut tar, &name, b.len() as u64, &mut b.as_ref()).map_err(io_err)?,
            BlobSource::File { path, offset } => {
                let mut f = File::open(path).map_err(io_err)?;
                f.seek(SeekFrom::Start(*offset)).map_err(io_err)?;
                add(&mut tar, &name, blob.size, &mut f.take(blob.size)).map_err(io_err)?
            }
            BlobSource::Remote { registry, repository } => {
                return Err(Error::usage(format!(
                    "blob {} lives in {registry}/{repository}; an archive needs its bytes",
                    blob.digest
                ))
                .context(ctx()))
            }
        }
    }
    tar.into_inner().map_err(io_err)?.into_inner().map_err(|e| Error::io(ctx(), e.into_error()))?.commit()
}
