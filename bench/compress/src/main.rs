//! hoist's compression benchmark: the candidates for the layer writer's gzip members, over the data the
//! layer writer sees (files concatenated, cut into independent 4 MiB blocks, each block one gzip member).
//!
//!   hoist-compress-bench table [DIR] [MIB]   the table for docs/compression.md (markdown on stdout)
//!   hoist-compress-bench digests [DIR] [MIB] sha256 of libdeflate's and hoist's layer writer's output
//!                                            per level (dispatch check)
//!   hoist-compress-bench stored [DIR] [MIB]  zlib-rs 1 and libdeflate 1 against hoist's layer writer
//!                                            (src/builder/gzip.rs itself: incompressible runs stored)
//!
//! DIR defaults to /usr/lib/x86_64-linux-gnu, MIB to 100. Driven by bench/compress.sh.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

const BLOCK: usize = 4 << 20;

/// hoist's own block compressor, this very file: libdeflate with incompressible runs stored.
#[path = "../../../src/builder/gzip.rs"]
mod gzip;

/// This thread's CPU seconds so far (/proc/thread-self/schedstat: nanoseconds on a CPU). Speeds are
/// bytes over CPU time, so other work on a shared machine slows the wall clock but not the figures.
fn thread_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat");
    s.split_whitespace().next().unwrap().parse::<u64>().unwrap() as f64 / 1e9
}

/// Regular files under `dir` (sorted, symlinks not followed), concatenated up to `limit` bytes.
fn corpus(dir: &Path, limit: usize) -> Vec<u8> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
            if md.is_dir() {
                walk(&p, out);
            } else if md.is_file() {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    let mut data = Vec::with_capacity(limit);
    for f in files {
        if data.len() >= limit {
            break;
        }
        if let Ok(mut file) = std::fs::File::open(&f) {
            let _ = (&mut file).take((limit - data.len()) as u64).read_to_end(&mut data);
        }
    }
    assert!(data.len() == limit, "{} holds only {} bytes of files", dir.display(), data.len());
    data
}

/// The sha256 of members laid end to end, in hex.
fn sha256_of(members: &[Vec<u8>]) -> String {
    let mut h = Sha256::new();
    members.iter().for_each(|m| h.update(m));
    format!("{:x}", h.finalize())
}

/// One 4 MiB block of 64 KiB runs, alternately pseudo-random (a fixed xorshift sequence) and taken
/// from `text`.
fn mixed_block(text: &[u8]) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(BLOCK);
    for (i, run) in text.chunks(64 << 10).take(BLOCK / (64 << 10)).enumerate() {
        if i % 2 == 0 {
            for _ in 0..(64 << 10) / 8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                out.extend_from_slice(&x.to_le_bytes());
            }
        } else {
            out.extend_from_slice(run);
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Codec {
    Zlib(u32),
    Libdeflate(i32),
    /// hoist's layer writer: libdeflate at the level, incompressible 64 KiB runs stored.
    Hoist(u32),
    #[cfg(feature = "isal")]
    Isal(u8),
}

impl Codec {
    fn name(self) -> String {
        match self {
            Codec::Zlib(l) => format!("flate2/zlib-rs {l}"),
            Codec::Libdeflate(l) => format!("libdeflate {l}"),
            Codec::Hoist(l) => format!("hoist: libdeflate {l}, incompressible runs stored"),
            #[cfg(feature = "isal")]
            Codec::Isal(l) => format!("ISA-L igzip {l}"),
        }
    }

    /// One block → one complete gzip member.
    fn member(self, block: &[u8]) -> Vec<u8> {
        match self {
            Codec::Zlib(l) => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::with_capacity(block.len() / 2), flate2::Compression::new(l));
                std::io::Write::write_all(&mut e, block).unwrap();
                e.finish().unwrap()
            }
            Codec::Libdeflate(l) => {
                let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(l).unwrap());
                let mut out = vec![0; c.gzip_compress_bound(block.len())];
                let n = c.gzip_compress(block, &mut out).unwrap();
                out.truncate(n);
                out
            }
            Codec::Hoist(l) => gzip::gzip_block(block, l).unwrap(),
            #[cfg(feature = "isal")]
            Codec::Isal(l) => {
                let level = match l {
                    0 => isal::CompressionLevel::Zero,
                    1 => isal::CompressionLevel::One,
                    _ => isal::CompressionLevel::Three,
                };
                let mut out = vec![0; block.len() + block.len() / 10 + 4096];
                let n = isal::compress_into(block, &mut out, level, isal::Codec::Gzip).unwrap();
                out.truncate(n);
                out
            }
        }
    }
}

/// Compresses every block on `threads` threads (block i on thread i % threads): wall seconds, the
/// largest thread's CPU seconds, and the members in order.
fn compress(codec: Codec, blocks: &[&[u8]], threads: usize) -> (f64, f64, Vec<Vec<u8>>) {
    let start = Instant::now();
    let mut cpu = 0f64;
    let mut members: Vec<(usize, Vec<u8>)> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let c0 = thread_cpu();
                    let m: Vec<_> =
                        blocks.iter().enumerate().skip(t).step_by(threads).map(|(i, b)| (i, codec.member(b))).collect();
                    (thread_cpu() - c0, m)
                })
            })
            .collect();
        for h in handles {
            let (c, m) = h.join().unwrap();
            cpu = cpu.max(c);
            members.extend(m);
        }
    });
    let secs = start.elapsed().as_secs_f64();
    members.sort_by_key(|(i, _)| *i);
    (secs, cpu, members.into_iter().map(|(_, m)| m).collect())
}

/// Seconds to inflate the concatenated members as hoist reads layers: flate2/zlib-rs streaming through a
/// 64 KiB buffer (`MultiGzDecoder`), checking the output.
fn inflate_streaming(stream: &[u8], original: &[u8]) -> f64 {
    let start = thread_cpu();
    let mut d = flate2::read::MultiGzDecoder::new(stream);
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = 0;
    loop {
        let n = d.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n] == original[pos..pos + n], "inflate mismatch at {pos}");
        pos += n;
    }
    assert_eq!(pos, original.len());
    thread_cpu() - start
}

/// Seconds to inflate member by member into a preallocated block (whole-buffer decoders: they need the
/// member's bounds and size up front, which a streaming layer reader does not have).
fn inflate_whole(members: &[Vec<u8>], original: &[u8], which: &str) -> f64 {
    let mut out = vec![0u8; BLOCK];
    let mut d = libdeflater::Decompressor::new();
    let start = thread_cpu();
    for (i, m) in members.iter().enumerate() {
        let want = &original[i * BLOCK..((i + 1) * BLOCK).min(original.len())];
        let n = match which {
            "libdeflate" => d.gzip_decompress(m, &mut out).unwrap(),
            #[cfg(feature = "isal")]
            "isal" => isal::decompress_into(m, &mut out, isal::Codec::Gzip).unwrap(),
            _ => unreachable!(),
        };
        assert!(out[..n] == *want, "member {i} mismatch");
    }
    thread_cpu() - start
}

fn mibs(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("table", |s| s.as_str());
    let dir = PathBuf::from(args.get(2).map_or("/usr/lib/x86_64-linux-gnu", |s| s.as_str()));
    let mib: usize = args.get(3).map_or(100, |s| s.parse().expect("MIB: a number"));
    let data = corpus(&dir, mib << 20);
    let blocks: Vec<&[u8]> = data.chunks(BLOCK).collect();
    match mode {
        "digests" => {
            for l in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12] {
                let (_, _, members) = compress(Codec::Libdeflate(l), &blocks, 1);
                println!("libdeflate {l:2} {}", sha256_of(&members));
            }
            // hoist's layer writer itself, on the files plus a block where random and text runs
            // alternate, so that stored and deflated members (and the judgement between them) count.
            let mixed = mixed_block(&data);
            let mut hoist_blocks = blocks.clone();
            hoist_blocks.push(&mixed);
            for l in 1..=9 {
                let (_, _, members) = compress(Codec::Hoist(l), &hoist_blocks, 1);
                println!("hoist      {l:2} {}", sha256_of(&members));
            }
        }
        "table" => table(&data, &blocks, &table_codecs()),
        "stored" => table(&data, &blocks, &[Codec::Zlib(1), Codec::Libdeflate(1), Codec::Hoist(1)]),
        other => panic!("unknown mode {other:?}: table, stored or digests"),
    }
}

fn table_codecs() -> Vec<Codec> {
    let mut codecs: Vec<Codec> = [1, 2, 3, 4, 5, 6, 9].into_iter().map(Codec::Zlib).collect();
    codecs.extend([1, 2, 3, 4, 5, 6, 9, 12].into_iter().map(Codec::Libdeflate));
    codecs.push(Codec::Hoist(1));
    #[cfg(feature = "isal")]
    codecs.extend([0, 1, 3].into_iter().map(Codec::Isal));
    codecs
}

fn table(data: &[u8], blocks: &[&[u8]], codecs: &[Codec]) {
    let len = data.len();
    let mut zlib1_size = 0usize;
    println!("| compressor, level | 1 core MiB/s (CPU time) | 2 threads MiB/s (wall) | 2 threads MiB/s (CPU time of the busier) | compressed/original | size vs zlib-rs 1 | inflate MiB/s (zlib-rs streaming, CPU time) |");
    println!("|---|---|---|---|---|---|---|");
    let mut keep: Option<Vec<Vec<u8>>> = None;
    for &codec in codecs {
        let (_, one, members) = compress(codec, blocks, 1);
        let (two_wall, two, members2) = compress(codec, blocks, 2);
        assert!(members == members2, "{}: output depends on the thread count", codec.name());
        let size: usize = members.iter().map(Vec::len).sum();
        if matches!(codec, Codec::Zlib(1)) {
            zlib1_size = size;
        }
        let stream = members.concat();
        let inflate = inflate_streaming(&stream, data);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.3} | {:+.1}% | {:.0} |",
            codec.name(),
            mibs(len, one),
            mibs(len, two_wall),
            mibs(len, two),
            size as f64 / len as f64,
            (size as f64 / zlib1_size as f64 - 1.0) * 100.0,
            mibs(len, inflate)
        );
        if matches!(codec, Codec::Libdeflate(6)) {
            keep = Some(members);
        }
    }
    // The decoders, on libdeflate 6's members (in the full table).
    let Some(members) = keep else { return };
    let stream = members.concat();
    println!();
    println!("Inflate of libdeflate level 6's members ({} MiB out), one core, CPU time:", len >> 20);
    println!();
    println!("| decoder | MiB/s |");
    println!("|---|---|");
    println!(
        "| flate2/zlib-rs MultiGzDecoder, streaming (hoist's reader) | {:.0} |",
        mibs(len, inflate_streaming(&stream, data))
    );
    println!(
        "| libdeflate, whole member into a known-size buffer | {:.0} |",
        mibs(len, inflate_whole(&members, data, "libdeflate"))
    );
    #[cfg(feature = "isal")]
    println!(
        "| ISA-L, whole member into a known-size buffer | {:.0} |",
        mibs(len, inflate_whole(&members, data, "isal"))
    );
}
