//! The judges can fail: an image whose config names a diff ID its layer does not have is refused by
//! [`check_remote`] (crane validate), and a pull that lost a file differs from `crane export`. Without these,
//! a judge that passes everything would look the same as one that works.

use crate::harness::*;

/// `oci_layout` with the config's first diff ID replaced: digests consistent (the registry accepts it), the
/// image wrong. Returns the layout's tag.
fn layout_with_a_wrong_diff_id(dir: &std::path::Path) -> String {
    let img = oci_layout(dir, &LayoutSpec::new(91).layer_sizes(&[2000]).tag("bad"));
    let blob = |d: &str| dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let mut config: serde_json::Value = serde_json::from_slice(&img.config_bytes).unwrap();
    config["rootfs"]["diff_ids"][0] = sha256_digest(b"not this layer").into();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = sha256_digest(&config_bytes);
    std::fs::write(blob(&config_digest), &config_bytes).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest_bytes).unwrap();
    manifest["config"]["digest"] = config_digest.into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = sha256_digest(&manifest_bytes);
    std::fs::write(blob(&manifest_digest), &manifest_bytes).unwrap();
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"] = manifest_digest.into();
    index["manifests"][0]["size"] = manifest_bytes.len().into();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    "bad".into()
}

#[test]
fn judges_refuse_an_image_whose_config_lies_about_its_layers() {
    let reg = Registry::plain();
    let work = tmp();
    let src = work.path().join("src");
    let tag = layout_with_a_wrong_diff_id(&src);
    let dest = format!("{}/judged/bad:1", reg.host());
    Hoist::run(["push", &format!("oci:{}:{tag}", src.display()), &dest]).assert_success();
    let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_remote(&reg, &dest)));
    let message = match verdict {
        Ok(()) => panic!("check_remote passed an image whose diff ID is wrong"),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(message.contains("crane validate"), "crane is the judge that refuses it: {message}");

    // And crane export vs a rootfs missing a file: the comparison names it.
    let good = work.path().join("good");
    oci_layout(&good, &LayoutSpec::new(92).layer_sizes(&[3000]).tag("ok"));
    let ok = format!("{}/judged/ok:1", reg.host());
    Hoist::run(["push", &format!("oci:{}:ok", good.display()), &ok]).assert_success();
    let rootfs = work.path().join("rootfs");
    Hoist::run(["pull", &ok, "--rootfs", rootfs.to_str().unwrap()]).assert_success();
    assert_export_matches_rootfs(&reg, &ok, None, &rootfs);
    let victim = walk_files(&rootfs).into_iter().next().expect("the image has a file");
    std::fs::remove_file(&victim).unwrap();
    let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_export_matches_rootfs(&reg, &ok, None, &rootfs)
    }));
    let message = match verdict {
        Ok(()) => panic!("a rootfs missing {} matched crane export", victim.display()),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(message.contains("only in crane export"), "{message}");
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk_files(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}
