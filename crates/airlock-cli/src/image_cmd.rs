//! `airlock image ls|rm|prune`: manage the layer store.

use airlock::image::Store;
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// Manage the image layer store.
#[derive(Args)]
pub struct ImageArgs {
    /// The store (default /var/lib/airlock as root, ~/.local/share/airlock otherwise).
    #[arg(long, value_name = "DIR", global = true)]
    store: Option<String>,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List the images the store has run, with their layers' size.
    Ls,
    /// Forget images by name or id prefix (their layers go with `prune`).
    Rm { what: Vec<String> },
    /// Remove layers no image uses, and leftovers of interrupted unpacks.
    Prune,
}

pub fn main(a: ImageArgs) -> ExitCode {
    let root = a.store.map(Into::into).unwrap_or_else(Store::default_root);
    let store = match Store::open(root) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("airlock: error: image store: {e}");
            return ExitCode::from(125);
        }
    };
    match a.command {
        ImageCommand::Ls => {
            println!(
                "{:<14} {:<30} {:>6} {:>10}  SOURCE",
                "ID", "NAME", "LAYERS", "SIZE"
            );
            for r in store.images() {
                let size: u64 = r.layers.iter().map(|l| store.layer_size(l)).sum();
                let id = r.id.trim_start_matches("sha256:");
                println!(
                    "{:<14} {:<30} {:>6} {:>9}K  {}",
                    &id[..12.min(id.len())],
                    r.name,
                    r.layers.len(),
                    size / 1024,
                    r.source
                );
            }
            ExitCode::SUCCESS
        }
        ImageCommand::Rm { what } => {
            let mut code = ExitCode::SUCCESS;
            for w in what {
                match store.remove(&w) {
                    Ok(0) => {
                        eprintln!("airlock: error: no image {w:?} in the store");
                        code = ExitCode::from(1);
                    }
                    Ok(n) => println!("removed {n} image(s) matching {w}"),
                    Err(e) => {
                        eprintln!("airlock: error: {e}");
                        code = ExitCode::from(125);
                    }
                }
            }
            code
        }
        ImageCommand::Prune => match store.prune() {
            Ok(n) => {
                println!("pruned {n} layer(s)");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("airlock: error: {e}");
                ExitCode::from(125)
            }
        },
    }
}
