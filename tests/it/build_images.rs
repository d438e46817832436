//! `hoist build` reading registry images' files: `COPY --from=<image>` through layers with
//! whiteouts and opaque directories, a stage that is only an image, `--chown` names resolved in the
//! base's `/etc/passwd` and `/etc/group`, and what the registry's access log must show — no GET of
//! a final-base layer, and a rebuild that downloads no layer at all.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::harness::images::{dir, file, flatten, layout_config, layout_layers, push_synthetic, Ent, FsNode};
use crate::harness::*;

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\napp:x:1000:50::/:\n";
const GROUP: &str = "root:x:0:\nstaff:x:50:\nnonroot:x:65532:\n";

/// The source image: three layers where the upper ones delete, hide (opaque) and replace.
fn source_layers() -> Vec<Vec<Ent>> {
    vec![
        vec![
            dir("opt"),
            dir("opt/app"),
            file("opt/app/a", "a1"),
            file("opt/app/b", "b"),
            dir("opt/app/sub"),
            file("opt/app/sub/c", "c"),
            file("opt/gone", "gone"),
            dir("etc"),
            dir("etc/conf.d"),
            file("etc/conf.d/old.conf", "old"),
            dir("usr"),
            dir("usr/bin"),
            Ent::File("usr/bin/tool", "#!tool".into(), 0o4755, 7, 8),
            Ent::Symlink("usr/bin/tool-link", "tool"),
            file("big-unrelated", &"x".repeat(100_000)),
        ],
        vec![
            Ent::Whiteout("opt/gone"),
            Ent::Opaque("etc/conf.d"),
            file("etc/conf.d/new.conf", "new"),
            Ent::Whiteout("opt/app/b"),
        ],
        vec![file("opt/app/a", "a2"), Ent::Hardlink("opt/app/hl", "opt/app/a")],
    ]
}

fn final_base_layers() -> Vec<Vec<Ent>> {
    vec![
        vec![
            dir("etc"),
            file("etc/passwd", PASSWD),
            file("etc/group", GROUP),
            Ent::Dir("home/nonroot", 0o700, 65532, 65532),
        ],
        vec![file("etc/os-release", "synthetic"), file("filler", &"y".repeat(50_000))],
    ]
}

fn node<'a>(fs: &'a BTreeMap<String, FsNode>, p: &str) -> &'a FsNode {
    fs.get(p).unwrap_or_else(|| panic!("{p} missing from {:?}", fs.keys().collect::<Vec<_>>()))
}

#[test]
fn copy_from_an_image_applies_whiteouts_and_downloads_only_that_image_once() {
    let reg = Registry::plain();
    let work = tmp();
    let src_ref = format!("{}/src/tools:1", reg.host());
    let base_ref = format!("{}/base/final:1", reg.host());
    let src = push_synthetic(&reg, work.path(), &src_ref, &source_layers(), json!({}));
    let base = push_synthetic(&reg, work.path(), &base_ref, &final_base_layers(), json!({"User": "65532"}));

    let ctx = work.path().join("ctx");
    write(
        &ctx.join("Dockerfile"),
        &format!(
            "FROM {src_ref} AS tools\nFROM {base_ref}\nCOPY --from={src_ref} /opt/app /app\nCOPY --from=tools /etc/conf.d /conf/\nCOPY --from={src_ref} --link /usr/bin/tool-link /bin/tool\nCOPY --chown=1000:1000 app.txt /app/\n"
        ),
    );
    write(&ctx.join("app.txt"), "app\n");
    let cache = work.path().join("cache");
    let build = |tag: &str| {
        let mut cmd = Hoist::cmd();
        cmd.env("HOIST_CACHE_DIR", &cache).args([
            "build",
            ctx.to_str().unwrap(),
            "-t",
            &format!("{}/out/x:{tag}", reg.host()),
        ]);
        Hoist::run_cmd(cmd, None)
    };
    let mark = reg.log_mark();
    build("1").assert_success();
    let gets = reg.blob_gets_since(mark);
    for l in &base.layer_digests {
        assert!(!gets.iter().any(|(_, d, _)| d == l), "final base layer {l} was downloaded: {gets:?}");
    }
    for l in &src.layer_digests {
        let n = gets.iter().filter(|(_, d, _)| d == l).count();
        assert_eq!(n, 1, "source layer {l} read once (two stages name the image): {gets:?}");
    }

    // What the pushed image holds, read by skopeo and the test's own layer reader.
    let layout = work.path().join("copy");
    Skopeo::new(&reg).copy_to_layout(&format!("{}/out/x:1", reg.host()), &layout);
    let fs = flatten(&layout_layers(&layout, "1"));
    let sha = |s: &str| sha256_digest(s.as_bytes());
    assert_eq!(node(&fs, "app/a").data, sha("a2"));
    assert_eq!(node(&fs, "app/hl").data, sha("a2"), "a hard link in the source copies as the file");
    assert_eq!(node(&fs, "app/sub/c").data, sha("c"));
    assert!(!fs.contains_key("app/b"), "whited out in layer 2");
    assert!(!fs.contains_key("gone") && !fs.contains_key("opt"));
    assert_eq!(node(&fs, "conf/new.conf").data, sha("new"));
    assert!(!fs.contains_key("conf/old.conf"), "hidden by the opaque directory");
    let tool = node(&fs, "bin/tool");
    assert_eq!(
        (tool.kind, tool.mode, tool.uid, tool.gid),
        ('f', 0o4755, 7, 8),
        "the symlink is followed, owner and mode kept"
    );
    assert!(!fs.contains_key("big-unrelated"));
    // Into a directory this build made (root-owned, as BuildKit's COPY makes it): nothing to ask the base.
    let app = node(&fs, "app/app.txt");
    assert_eq!((app.uid, app.gid), (1000, 1000), "numeric ids need no passwd");
    assert_eq!(node(&fs, "etc/passwd").data, sha(PASSWD), "base layers are the base's");
    let config = layout_config(&layout, "1");
    assert_eq!(config["config"]["User"], "65532");

    // A rebuild with the same cache downloads no layer at all.
    let mark = reg.log_mark();
    let out = build("2");
    out.assert_success();
    let gets: Vec<_> = reg
        .blob_gets_since(mark)
        .into_iter()
        .filter(|(_, d, _)| src.layer_digests.contains(d) || base.layer_digests.contains(d))
        .collect();
    assert!(gets.is_empty(), "a rebuild downloaded layers: {gets:?}");
    let a = reg.manifest_bytes("out/x", "1").unwrap();
    let b = reg.manifest_bytes("out/x", "2").unwrap();
    assert_eq!(a, b, "same image from the cache");
}

#[test]
fn chown_names_read_only_the_top_layers_holding_passwd_and_group() {
    let reg = Registry::plain();
    let work = tmp();
    let base_ref = format!("{}/base/names:1", reg.host());
    // passwd in the top layer, group below it; the bottom layer is never needed.
    let base = push_synthetic(
        &reg,
        work.path(),
        &base_ref,
        &[
            vec![file("bottom", &"z".repeat(30_000)), dir("etc"), file("etc/passwd", "old:x:1:1::/:\n")],
            vec![dir("etc"), file("etc/group", GROUP)],
            vec![dir("etc"), file("etc/passwd", PASSWD)],
        ],
        json!({}),
    );
    let ctx = work.path().join("ctx");
    write(
        &ctx.join("Dockerfile"),
        &format!(
            "FROM {base_ref}\nCOPY --chown=app:staff f /f\nCOPY --chown=nonroot:nonroot f /g\nCOPY --chown=app f /h\n"
        ),
    );
    write(&ctx.join("f"), "f\n");
    let mark = reg.log_mark();
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "-t", &format!("{}/out/names:1", reg.host())]);
    out.assert_success();
    let gets = reg.blob_gets_since(mark);
    let got = |i: usize| gets.iter().any(|(_, d, _)| *d == base.layer_digests[i]);
    assert!(got(2) && got(1) && !got(0), "top-down until both files are found: {gets:?}");
    let layout = work.path().join("copy");
    Skopeo::new(&reg).copy_to_layout(&format!("{}/out/names:1", reg.host()), &layout);
    let fs = flatten(&layout_layers(&layout, "1"));
    let ids = |p: &str| (node(&fs, p).uid, node(&fs, p).gid);
    assert_eq!(ids("f"), (1000, 50));
    assert_eq!(ids("g"), (65532, 65532), "nonroot:nonroot through the base's passwd and group");
    assert_eq!(ids("h"), (1000, 50), "a bare user name takes its primary group from passwd, as BuildKit does");

    // A name neither file has: the file, the line and the name.
    write(&ctx.join("Dockerfile"), &format!("FROM {base_ref}\n\nCOPY --chown=ghost f /f\n"));
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "-t", &format!("{}/out/names:2", reg.host())]);
    out.assert_code(2);
    out.assert_stderr_contains(&format!("Dockerfile:3: --chown=ghost: no user \"ghost\" in /etc/passwd of {base_ref}"));
}

#[test]
fn copy_from_image_errors_name_the_line() {
    let reg = Registry::plain();
    let work = tmp();
    let src_ref = format!("{}/src/tools:1", reg.host());
    push_synthetic(&reg, work.path(), &src_ref, &source_layers(), json!({}));
    let ctx = work.path().join("ctx");
    let out_ref = format!("{}/out/e:1", reg.host());
    // A path an upper layer deleted.
    write(&ctx.join("Dockerfile"), &format!("FROM scratch\nCOPY --from={src_ref} /opt/gone /x\n"));
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "-t", &out_ref]);
    out.assert_code(2);
    out.assert_stderr_contains(&format!("Dockerfile:2: COPY --from={src_ref}: \"/opt/gone\" not found"));
    // An image that does not exist.
    write(&ctx.join("Dockerfile"), &format!("FROM scratch\nCOPY --from={}/src/none:1 /a /a\n", reg.host()));
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "-t", &out_ref]);
    assert!(!out.success());
    out.assert_stderr_contains("src/none:1");
    // Variables in --from, as BuildKit refuses them.
    write(&ctx.join("Dockerfile"), &format!("ARG IMG={src_ref}\nFROM scratch\nCOPY --from=$IMG /a /a\n"));
    let out = Hoist::run(["build", ctx.to_str().unwrap(), "-t", &out_ref]);
    out.assert_code(2);
    out.assert_stderr_contains("Dockerfile:3: COPY --from=$IMG: variable expansion is not supported for --from");
}
