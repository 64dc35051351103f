//! `airlock image ls|rm|prune`: manage the layer store.

use crate::run::{fail, refuse, EXIT_REFUSED};
use airlock::image::{human_size, Store};
use airlock::Context;
use clap::{Args, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Manage the image layer store.
#[derive(Args)]
pub struct ImageArgs {
    /// The store (default /var/lib/airlock as root, ~/.local/share/airlock
    /// otherwise; or $AIRLOCK_STORE).
    #[arg(long, value_name = "DIR", global = true)]
    store: Option<String>,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List the images the store has run, with their layers' size.
    Ls {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Forget images by name or id prefix (their layers go with `prune`).
    Rm {
        #[arg(required = true, value_name = "NAME|ID")]
        what: Vec<String>,
    },
    /// Remove layers no image uses, and leftovers of interrupted unpacks.
    Prune,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

pub fn main(a: ImageArgs, ctx: &Context) -> ExitCode {
    let root = a.store.map_or_else(|| ctx.store.clone(), Into::into);
    // Absolute, so that what ls prints leads somewhere from any directory.
    let root = std::path::absolute(&root).unwrap_or(root);
    let missing = std::fs::symlink_metadata(&root);
    if missing.is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        // Looked at, not made: a mistyped --store leaves nothing behind.
        return without_store(&root, a.command);
    }
    let store = match Store::open(root) {
        Ok(s) => s,
        Err(e) => return refuse(format!("image store: {e}")),
    };
    match a.command {
        ImageCommand::Ls { format } => {
            ls(&store, format);
            ExitCode::SUCCESS
        }
        ImageCommand::Rm { what } => {
            let mut code = ExitCode::SUCCESS;
            for w in what {
                match store.remove(&w) {
                    Ok(0) => {
                        eprintln!("airlock: error: no image {w:?} in the store");
                        code = ExitCode::from(EXIT_REFUSED);
                    }
                    Ok(n) => println!("removed {n} image(s) matching {w}"),
                    Err(e) => code = fail(e.into()),
                }
            }
            code
        }
        ImageCommand::Prune => match store.prune() {
            Ok(n) => {
                println!("pruned {n} layer(s)");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e.into()),
        },
    }
}

/// What each verb says of a store that does not exist: it holds nothing.
fn without_store(root: &std::path::Path, command: ImageCommand) -> ExitCode {
    let root = root.display();
    match command {
        ImageCommand::Ls {
            format: Format::Json,
        } => println!("[]"),
        ImageCommand::Ls { .. } => {
            print_header();
            eprintln!("(store: {root}, not made yet)");
        }
        ImageCommand::Prune => println!("pruned 0 layer(s)"),
        ImageCommand::Rm { what } => {
            for w in what {
                eprintln!("airlock: error: no image {w:?} in the store ({root} does not exist)");
            }
            return ExitCode::from(EXIT_REFUSED);
        }
    }
    ExitCode::SUCCESS
}

fn print_header() {
    println!(
        "{:<14} {:<30} {:>6} {:>8}  SOURCE",
        "ID", "NAME", "LAYERS", "SIZE"
    );
}

fn ls(store: &Store, format: Format) {
    let images: Vec<_> = store
        .images()
        .into_iter()
        .map(|r| {
            let size: u64 = r.layers.iter().map(|l| store.layer_size(l)).sum();
            (r, size)
        })
        .collect();
    match format {
        Format::Json => {
            let out: Vec<_> = images
                .iter()
                .map(|(r, size)| {
                    serde_json::json!({
                        "id": r.id, "name": r.name, "source": r.source,
                        "layers": r.layers, "size_bytes": size,
                        "store": store.root,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("records serialize")
            );
        }
        Format::Table => {
            print_header();
            for (r, size) in &images {
                let id = r.id.trim_start_matches("sha256:");
                // Names and sources come from the images (an OCI
                // layout's annotations): no escape sequence of theirs
                // reaches the terminal.
                println!(
                    "{:<14} {:<30} {:>6} {:>8}  {}",
                    &id[..12.min(id.len())],
                    airlock::report::plain(&r.name),
                    r.layers.len(),
                    human_size(*size),
                    airlock::report::plain(&r.source)
                );
            }
            eprintln!("(store: {})", store.root.display());
        }
    }
}
