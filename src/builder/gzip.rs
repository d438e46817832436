//! One block of a layer as gzip members: [`gzip_block`], what every thread of the layer writer's
//! parallel gzip (src/builder/layer.rs) runs. Depends on `std` and `libdeflater` only, so that
//! bench/compress measures this very file (it includes it with `#[path]`).

use std::io;

/// The unit of the stored-or-deflated choice inside a block ([`gzip_block`]).
const SEGMENT: usize = 64 << 10;
/// How many samples of a segment [`incompressible`] deflates, and the bytes of each.
const PROBES: usize = 2;
const SAMPLE: usize = 1 << 10;

/// One block as gzip members (RFC 1952: header, deflate stream, CRC-32 and size), by libdeflate:
/// the block is cut into [`SEGMENT`]s, each judged by [`incompressible`]; every run of consecutive
/// segments judged alike becomes one member — deflated at `level` (1–9; gzip's levels and
/// libdeflate's mean the same fast … small scale, so they map one to one; libdeflate's slower 10–12
/// are not offered), or *stored* (libdeflate level 0: deflate's uncompressed blocks, a copy and a
/// CRC-32) when the run would not shrink. A block of one kind is one member. Random data (encrypted
/// or already compressed files) then costs a copy, not a deflate that finds nothing (libdeflate 1
/// is slower on random bytes than on text, 117 against 231 MiB/s here).
///
/// The same bytes on every machine: the choice is a function of the block's bytes alone (never of
/// time, cores or `--jobs`), and libdeflate picks code by CPU at run time only for checksums
/// (CRC-32, Adler-32) and for decompression; its match finders are chosen when it is compiled (the
/// release builds for baseline x86-64) and only their table setup is vectorised, which computes the
/// same values either way. `bench/compress.sh dispatch` checks the output with every run-time path
/// forced off and with an AVX2 build; a unit test pins the digests.
pub(super) fn gzip_block(block: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let compressor = |level: u32| {
        libdeflater::CompressionLvl::new(level as i32)
            .map(libdeflater::Compressor::new)
            .map_err(|e| io::Error::other(format!("gzip level {level}: {e:?}")))
    };
    let (mut deflate, mut store, mut probe) = (compressor(level)?, compressor(0)?, compressor(1)?);
    let mut out = Vec::with_capacity(deflate.gzip_compress_bound(block.len()));
    let mut member = |run: &[u8], stored: bool| -> io::Result<()> {
        let c = if stored { &mut store } else { &mut deflate };
        let (start, bound) = (out.len(), c.gzip_compress_bound(run.len()));
        out.reserve_exact(bound); // not doubled: a thread holds one block's output at a time (P4)
        out.resize(start + bound, 0);
        let n = c.gzip_compress(run, &mut out[start..]).map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
        out.truncate(start + n);
        Ok(())
    };
    let mut run = (0, incompressible(&block[..block.len().min(SEGMENT)], &mut probe));
    for start in (SEGMENT..block.len()).step_by(SEGMENT) {
        let stored = incompressible(&block[start..block.len().min(start + SEGMENT)], &mut probe);
        if stored != run.1 {
            member(&block[run.0..start], run.1)?;
            run = (start, stored);
        }
    }
    member(&block[run.0..], run.1)?;
    out.shrink_to_fit();
    Ok(out)
}

/// Whether deflating `segment` would not pay: [`PROBES`] samples of [`SAMPLE`] bytes, spread evenly
/// over it and put side by side, do not deflate (libdeflate level 1, whatever the layer's level) into
/// less than 31/32 of their size (libdeflate stops and says so when the output does not fit). One
/// deflate of 2 KiB per 64 KiB: about 8 GiB/s of input here. Noise in every sample is needed, so a
/// segment half text and half noise is deflated — a wrong "stored" costs bytes, a wrong "deflate"
/// only time. Segments shorter than the samples (and an empty block) are deflated.
fn incompressible(segment: &[u8], probe: &mut libdeflater::Compressor) -> bool {
    if segment.len() < PROBES * SAMPLE {
        return false;
    }
    let mut samples = [0u8; PROBES * SAMPLE];
    for (i, sample) in samples.chunks_exact_mut(SAMPLE).enumerate() {
        let at = segment.len() * (2 * i + 1) / (2 * PROBES) - SAMPLE / 2;
        sample.copy_from_slice(&segment[at..at + SAMPLE]);
    }
    let mut room = [0u8; PROBES * SAMPLE * 31 / 32];
    probe.deflate_compress(&samples, &mut room).is_err()
}
