//! The `hoist` binary: parse the command line, run, print the error once, exit with its code.

use clap::Parser;

fn main() {
    bound_malloc_arenas();
    let cli = hoist::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(cli.run()) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("hoist: error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            std::process::exit(e.kind().exit_code());
        }
    }
}

/// Memory: glibc's malloc gives threads their own arenas (up to 8 per core) and, once a large block
/// is freed, raises its mmap threshold so later large blocks come from those arenas, where freed
/// memory stays resident. The layer compressor hands every 4 MiB block to a new thread, so a build
/// of one 512 MiB file peaked at 80 MiB resident with the defaults and 53 MiB with two arenas, for
/// no measurable CPU (docs/build-cache.md, "Memory"). `MALLOC_ARENA_MAX` set by the user wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    /// glibc's `M_ARENA_MAX` (malloc.h).
    const M_ARENA_MAX: i32 = -8;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any thread exists.
        unsafe {
            mallopt(M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}
