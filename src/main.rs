//! The `hoist` binary: parse the command line, run, print the error once, exit with its code.

use clap::Parser;

fn main() {
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
